#include "scb/backend.hpp"

#include <fmt/format.h>

namespace scb {

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::cpu;
  if (s == "cuda") return Device::cuda;
  if (s == "auto") return Device::auto_select;
  throw ConfigError(fmt::format("--device: expected cpu, cuda or auto, got \"{}\"", s));
}

#if !defined(SCB_HAVE_CUDA)
int cuda_device_count() { return 0; }
void cuda_memory_info(uint64_t& free_bytes, uint64_t& total_bytes) { free_bytes = total_bytes = 0; }
#endif

std::unique_ptr<Backend> make_backend(Device device, int threads) {
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
