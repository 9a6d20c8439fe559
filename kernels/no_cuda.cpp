// The CUDA layer of a build without nvcc: it answers that there is no device, so the layers
// above ask one question whatever the build (kernels/cuda_backend.cu answers it otherwise).
#include "scb/cuda/cuda_backend.hpp"

namespace scb {

int cuda_device_count() { return 0; }
void cuda_memory_info(uint64_t& free_bytes, uint64_t& total_bytes) { free_bytes = total_bytes = 0; }

}  // namespace scb
