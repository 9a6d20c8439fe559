#pragma once
// The population noise of a run of coordinates, as the CPU draws it: the same normals as
// gradient_noise (model.hpp) one coordinate at a time, in vectorised groups of Philox blocks.
#include <cstdint>

#include "scb/cpu/token_draw.hpp"

namespace scb {

// out[i] = gradient_noise(seed, step, matrix, index0 + i) for i < count, in the widest form the
// CPU has (capped by SCB_SIMD like the token drawing; every form gives the same bits).
void draw_noise(uint64_t seed, uint32_t step, uint32_t matrix, uint64_t index0, uint32_t count, double* out);

// One form: scalar, avx2 (x86-64-v3: AVX2 and FMA) or avx512 (x86-64-v4), where supported.
bool noise_isa_supported(DrawIsa isa);
void draw_noise_with(DrawIsa isa, uint64_t seed, uint32_t step, uint32_t matrix, uint64_t index0, uint32_t count,
                     double* out);

}  // namespace scb
