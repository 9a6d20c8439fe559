#pragma once
// The CPU backend (src/cpu/cpu_backend.cpp): the reference every other backend is checked
// against. `threads` <= 0 uses up to every core, as many as make the steps fastest (fewer beside
// other busy processes); results never depend on the thread count.
#include <cstdint>
#include <memory>

#include "scb/core/backend.hpp"
#include "scb/core/runpack.hpp"

namespace scb {

// kept_noise_max_bytes: a population run keeps its step's A-noise up to this many bytes
// (scb/core/runpack.hpp, keeps_noise; tests set 0 to draw it twice).
std::unique_ptr<Backend> make_cpu_backend(int threads, uint64_t kept_noise_max_bytes = kKeptNoiseMaxBytes);

}  // namespace scb
