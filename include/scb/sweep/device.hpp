#pragma once
// Which backend trains a pack: the one place that knows both the CPU and the CUDA layer, so it
// sits above them (the sweep runner and the CLI are its callers).
#include <memory>

#include "scb/core/backend.hpp"

namespace scb {

// More threads than this is a typo, not a machine: the OpenMP runtime fails to create
// thousands of threads (aborting or crashing), so the count is refused before any work.
inline constexpr int kMaxThreads = 1024;
// ConfigError (--threads ...) outside [0, kMaxThreads] (0 = all cores).
void check_thread_count(int threads);

// Device::auto_select takes CUDA when a device is visible. Throws ConfigError("--device: ...")
// when CUDA is requested but unavailable.
std::unique_ptr<Backend> make_backend(Device device, int threads);

}  // namespace scb
