#pragma once
// A backend schedules the math of docs/model.md sections 3-5 for a whole RunPack: the CPU backend with
// threads over (run, sample) and (run, block of positions), the CUDA backend with kernels.
// Virtual calls happen once per step or evaluation, never per token.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "scb/core/population.hpp"
#include "scb/core/runpack.hpp"

namespace scb {

enum class Device { cpu, cuda, auto_select };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Binds the pack (and uploads it, for a device backend). The pack must outlive the backend.
  virtual void attach(RunPack& pack) = 0;
  // One step of every active run; runs that diverge get status diverged and their step.
  virtual void step() = 0;
  // Exact metrics (docs/model.md section 6) of the listed runs at their current parameters.
  virtual std::vector<Metrics> evaluate(const std::vector<uint32_t>& runs) = 0;
  // Makes pack.V and pack.A current on the host.
  virtual void download() = 0;
};

// "cpu", "cuda" or "auto"; ConfigError("--device: ...") otherwise. The backends themselves are
// made one layer up (scb/cpu/cpu_backend.hpp, scb/cuda/cuda_backend.hpp, scb/sweep/device.hpp).
Device parse_device(const std::string& s);

}  // namespace scb
