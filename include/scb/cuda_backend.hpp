#pragma once
// The CUDA backend's extra entry points (beyond backend.hpp's make_cuda_backend): options for
// tests and benchmarks, and a debug hook that runs the real forward kernels of one step and
// returns what they drew, so tests can compare tokens bit for bit with the CPU path.
// Declared only in CUDA builds (SCB_HAVE_CUDA); the planning helpers live in cuda_plan.hpp.
#include <cstdint>
#include <memory>
#include <vector>

#include "scb/backend.hpp"
#include "scb/cuda_plan.hpp"

#if defined(SCB_HAVE_CUDA)
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
