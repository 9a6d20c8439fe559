#pragma once
// The CUDA backend's entry points: what devices there are (in every build: 0 without CUDA),
// and in CUDA builds (SCB_HAVE_CUDA) the backend itself, options for tests and benchmarks, and a
// debug hook that runs the real forward kernels of one step and returns what they drew, so tests
// can compare tokens bit for bit with the CPU path. The planning helpers live in cuda_plan.hpp.
#include <cstdint>
#include <memory>
#include <vector>

#include "scb/core/backend.hpp"
#include "scb/cuda/cuda_plan.hpp"

namespace scb {
// Number of visible CUDA devices (0 in a build without CUDA).
int cuda_device_count();
// Free and total device memory of the current CUDA device (0, 0 without one).
void cuda_memory_info(uint64_t& free_bytes, uint64_t& total_bytes);
}  // namespace scb

#if defined(SCB_HAVE_CUDA)
namespace scb {
std::unique_ptr<Backend> make_cuda_backend();
}  // namespace scb

namespace scb::cuda {

struct Options {
  GemmMode gemm = GemmMode::automatic;  // cuBLAS for the per-run dense products
};

std::unique_ptr<Backend> make_backend(const Options& options);

// What the forward kernels produced for every sample of the next step of run 0 of `pack`
// (the pack is attached to a fresh backend; nothing is updated).
struct ForwardDebug {
  std::vector<uint16_t> tokens;   // B x T
  std::vector<uint32_t> k, x_o;   // B
  std::vector<double> h, g;       // B x N
  std::vector<uint32_t> counts;   // B x N
  std::vector<double> m;          // B: projection mean of each sample
};
ForwardDebug debug_forward(RunPack& pack, const Options& options = {});

}  // namespace scb::cuda
#endif
