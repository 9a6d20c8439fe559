#pragma once
// Which backend trains a pack: the one place that knows both the CPU and the CUDA layer, so it
// sits above them (the sweep runner and the CLI are its callers).
#include <memory>

#include "scb/core/backend.hpp"

namespace scb {

// Device::auto_select takes CUDA when a device is visible. Throws ConfigError("--device: ...")
// when CUDA is requested but unavailable.
std::unique_ptr<Backend> make_backend(Device device, int threads);

}  // namespace scb
