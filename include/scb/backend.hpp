#pragma once
// A backend schedules the math of SPEC 3-5 for a whole RunPack: the CPU backend with
// threads over (run, sample) and (run, block of positions), the CUDA backend with kernels.
// Virtual calls happen once per step or evaluation, never per token.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "scb/population.hpp"
#include "scb/runpack.hpp"

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
  // Exact metrics (SPEC 6) of the listed runs at their current parameters.
  virtual std::vector<Metrics> evaluate(const std::vector<uint32_t>& runs) = 0;
  // Makes pack.V and pack.A current on the host.
  virtual void download() = 0;
};

std::unique_ptr<Backend> make_cpu_backend(int threads);
// Throws ConfigError("--device: ...") when CUDA is requested but unavailable.
std::unique_ptr<Backend> make_backend(Device device, int threads);
// Number of visible CUDA devices (0 in a build without CUDA).
int cuda_device_count();
// Free and total device memory of the current CUDA device (0, 0 without one).
void cuda_memory_info(uint64_t& free_bytes, uint64_t& total_bytes);
Device parse_device(const std::string& s);

#if defined(SCB_HAVE_CUDA)
std::unique_ptr<Backend> make_cuda_backend();
#endif

}  // namespace scb
