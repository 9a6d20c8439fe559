// make_backend (see device.hpp).
#include "scb/sweep/device.hpp"

#include <fmt/format.h>

#include "scb/core/config.hpp"
#include "scb/cpu/cpu_backend.hpp"
#include "scb/cuda/cuda_backend.hpp"

namespace scb {

void check_thread_count(int threads) {
  if (threads < 0 || threads > kMaxThreads)
    throw ConfigError(fmt::format("--threads: expected an integer in [0, {}] (0 = all cores), got {}", kMaxThreads, threads));
}

std::unique_ptr<Backend> make_backend(Device device, int threads) {
  check_thread_count(threads);
  if (device == Device::cpu) return make_cpu_backend(threads);
  const int n = cuda_device_count();
  if (device == Device::cuda && n == 0) {
#if defined(SCB_HAVE_CUDA)
    throw ConfigError("--device cuda: no CUDA device is visible; use --device cpu (or auto)");
#else
    throw ConfigError("--device cuda: this build has no CUDA backend (built without nvcc); use --device cpu (or auto)");
#endif
  }
#if defined(SCB_HAVE_CUDA)
  if (n > 0) return make_cuda_backend();
#endif
  return make_cpu_backend(threads);
}

}  // namespace scb
