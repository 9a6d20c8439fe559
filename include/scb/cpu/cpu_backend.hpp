#pragma once
// The CPU backend (src/cpu/cpu_backend.cpp): the reference every other backend is checked
// against. `threads` <= 0 uses up to every core, as many as make the steps fastest (fewer beside
// other busy processes); results never depend on the thread count.
#include <memory>

#include "scb/core/backend.hpp"

namespace scb {

std::unique_ptr<Backend> make_cpu_backend(int threads);

}  // namespace scb
