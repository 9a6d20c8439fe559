// The population noise in groups of sixteen Philox blocks (64 normals, one tile): the words of
// the group from the token drawing's Philox lanes (exact integers), then the normals, a loop over
// the blocks that the compiler vectorises in the x86-64-v4 and -v3 forms (the Box-Muller of
// gaussian.hpp uses only correctly rounded operations, so every form and the scalar
// gradient_noise give the same bits, tests/test_gaussian.cpp). A population step at N = 100,
// T = 100,000 draws 10^7 normals (the projection needs each column's noise sum before the update:
// the backend keeps them between the two uses, or draws them twice beyond kKeptNoiseMaxBytes); with
// libm's log and sincos that was nine tenths of the step.
#include "scb/cpu/noise_draw.hpp"

#include <algorithm>

#include "scb/core/model.hpp"
#include "token_draw_schedules.hpp"

namespace scb {

namespace {

constexpr uint32_t kGroup = 16;
using Words = uint32_t[4][kGroup];

// out[i] = noise of index0 + i: group by group, `words` filling a group's Philox words.
template <typename WordsOf>
[[gnu::always_inline]] inline void noise_groups(const WordsOf& words_of, uint64_t seed, uint32_t step,
                                                uint32_t matrix, uint64_t index0, uint32_t count, double* out) {
  const uint64_t end = index0 + count;
  for (uint64_t block = index0 >> 2; block * 4 < end; block += kGroup) {
    alignas(64) Words w;
    words_of(seed, static_cast<uint32_t>(block), matrix, step, w);
    alignas(64) double z[4][kGroup];
    for (uint32_t j = 0; j < kGroup; ++j) {
      normal_pair(w[0][j], w[1][j], z[0][j], z[1][j]);
      normal_pair(w[2][j], w[3][j], z[2][j], z[3][j]);
    }
    if (block * 4 >= index0 && (block + kGroup) * 4 <= end) {  // the whole group: a vectorised interleave
      double* o = out + (block * 4 - index0);
      for (uint32_t j = 0; j < kGroup; ++j)
        for (uint32_t l = 0; l < 4; ++l) o[4 * j + l] = z[l][j];
      continue;
    }
    const uint64_t first = std::max(index0, block * 4), last = std::min(end, (block + kGroup) * 4);
    for (uint64_t i = first; i < last; ++i) out[i - index0] = z[i & 3u][(i >> 2) - block];
  }
}

void scalar_words(uint64_t seed, uint32_t c0, uint32_t matrix, uint32_t step, Words& w) {
  for (uint32_t j = 0; j < kGroup; ++j) {
    const Philox4 p = philox(seed, c0 + j, matrix, step, kStreamNoise);
    for (int l = 0; l < 4; ++l) w[l][j] = p.v[l];
  }
}

void draw_noise_scalar(uint64_t seed, uint32_t step, uint32_t matrix, uint64_t index0, uint32_t count, double* out) {
  noise_groups(scalar_words, seed, step, matrix, index0, count, out);
}

#if defined(__x86_64__) || defined(__i386__)
[[gnu::target("arch=x86-64-v4")]] void draw_noise_v4(uint64_t seed, uint32_t step, uint32_t matrix, uint64_t index0,
                                                     uint32_t count, double* out) {
  auto words = [](uint64_t s, uint32_t c0, uint32_t m, uint32_t st, Words& w) {
    token_draw_detail::philox_words16(s, c0, m, st, kStreamNoise, w);
  };
  noise_groups(words, seed, step, matrix, index0, count, out);
}

[[gnu::target("arch=x86-64-v3")]] void draw_noise_v3(uint64_t seed, uint32_t step, uint32_t matrix, uint64_t index0,
                                                     uint32_t count, double* out) {
  auto words = [](uint64_t s, uint32_t c0, uint32_t m, uint32_t st, Words& w) {
    uint32_t half[4][8];
    for (uint32_t h = 0; h < 2; ++h) {
      token_draw_detail::philox_words8(s, c0 + 8 * h, m, st, kStreamNoise, half);
      for (int l = 0; l < 4; ++l) std::copy(half[l], half[l] + 8, w[l] + 8 * h);
    }
  };
  noise_groups(words, seed, step, matrix, index0, count, out);
}
#endif

// The token drawing's instruction set (SCB_SIMD included), where the CPU also has the rest of
// the level that the form is compiled for.
DrawIsa choose_noise_isa() {
  const DrawIsa tokens = token_draw_isa_used();
  if (tokens == DrawIsa::avx512 && noise_isa_supported(DrawIsa::avx512)) return DrawIsa::avx512;
  if (tokens != DrawIsa::scalar && noise_isa_supported(DrawIsa::avx2)) return DrawIsa::avx2;
  return DrawIsa::scalar;
}

}  // namespace

bool noise_isa_supported(DrawIsa isa) {
#if defined(__x86_64__) || defined(__i386__)
  if (isa == DrawIsa::avx512) return draw_isa_supported(isa) && __builtin_cpu_supports("x86-64-v4");
  if (isa == DrawIsa::avx2 || isa == DrawIsa::avx2_gather)  // one AVX2 form: the noise reads no tables
    return draw_isa_supported(isa) && __builtin_cpu_supports("x86-64-v3");
#endif
  return isa == DrawIsa::scalar;
}

void draw_noise_with(DrawIsa isa, uint64_t seed, uint32_t step, uint32_t matrix, uint64_t index0, uint32_t count,
                     double* out) {
#if defined(__x86_64__) || defined(__i386__)
  if (isa == DrawIsa::avx512) return draw_noise_v4(seed, step, matrix, index0, count, out);
  if (isa == DrawIsa::avx2 || isa == DrawIsa::avx2_gather) return draw_noise_v3(seed, step, matrix, index0, count, out);
#endif
  draw_noise_scalar(seed, step, matrix, index0, count, out);
}

void draw_noise(uint64_t seed, uint32_t step, uint32_t matrix, uint64_t index0, uint32_t count, double* out) {
  static const DrawIsa isa = choose_noise_isa();
  draw_noise_with(isa, seed, step, matrix, index0, count, out);
}

}  // namespace scb
