#pragma once
// What the token-drawing schedules share, private to src/cpu: token_draw.cpp holds the scalar and
// AVX2 schedules and the dispatch, token_draw_avx512.cpp the AVX-512 schedule (one file would
// pass the length limit of a source file).
#include <cstdint>

#include "scb/core/model.hpp"

namespace scb {

void draw_tokens_scalar(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample, uint32_t t0,
                        uint32_t n, uint32_t* out);

namespace token_draw_detail {

// Fewer tokens than a vector round (n < 8) in the scalar schedule, in either width.
template <typename Out>
void draw_few_tokens(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample, uint32_t t0, uint32_t n,
                     Out* out) {
  uint32_t x[8];
  draw_tokens_scalar(pv, seed, step, sample, t0, n, x);
  for (uint32_t i = 0; i < n; ++i) out[i] = static_cast<Out>(x[i]);
}

// The scalar words of Philox8's per-call precomputation (token_draw.cpp), shared by the AVX2
// and AVX-512 forms.
struct PhiloxCallConstants {
  uint32_t x2_0, x0_1, x2_1, v3_1;  // word 2 after round 0; words 0, 2, 3 after round 1
  uint32_t key0[8], key1[8];        // the keys of rounds 2 .. 9
  PhiloxCallConstants(uint32_t c1, uint32_t c2, uint32_t c3, uint64_t seed) {
    uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
    const uint64_t p1 = uint64_t(c2) * 0xCD9E8D57u;                       // round 0, word 2 (uniform)
    const uint32_t w0 = uint32_t(p1 >> 32) ^ c1 ^ k0, w1 = uint32_t(p1);  // words 0, 1 after round 0
    x2_0 = c3 ^ k1;
    k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
    const uint64_t p0 = uint64_t(w0) * 0xD2511F53u;  // round 1, word 0 (uniform)
    x0_1 = w1 ^ k0;
    x2_1 = uint32_t(p0 >> 32) ^ k1;
    v3_1 = uint32_t(p0);
    for (int round = 2; round < 10; ++round) {
      k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
      key0[round - 2] = k0, key1[round - 2] = k1;
    }
  }
};

// The scalar words of the several-samples form (Philox8Samples, Philox16Samples): the lanes
// differ in c0 and c1, so only c2 and c3 are folded in once per call.
struct SamplesCallConstants {
  uint32_t x0_0, v1_0, x2_0;  // words 0 (but for ^ c1), 1 and 2's key part after round 0
  uint32_t key0[9], key1[9];  // the keys of rounds 1 .. 9
  SamplesCallConstants(uint32_t c2, uint32_t c3, uint64_t seed) {
    uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
    const uint64_t p1 = uint64_t(c2) * 0xCD9E8D57u;  // round 0, word 2 (uniform)
    x0_0 = uint32_t(p1 >> 32) ^ k0;
    v1_0 = uint32_t(p1);
    x2_0 = c3 ^ k1;
    for (int round = 1; round < 10; ++round) {
      k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
      key0[round - 1] = k0, key1[round - 1] = k1;
    }
  }
};

#if defined(__x86_64__) || defined(__i386__)
void draw_tokens_avx512(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample, uint32_t t0,
                        uint32_t n, uint32_t* out);
// Samples sample0 .. sample0 + count - 1 whole (T a multiple of 4), rounds across their boundaries.
void draw_sample_tokens_avx512(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0,
                               uint32_t count, uint32_t* out);
// The same tokens narrowed to 16 bits on their way to memory.
void draw_tokens_avx512(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample, uint32_t t0,
                        uint32_t n, uint16_t* out);
void draw_sample_tokens_avx512(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0,
                               uint32_t count, uint16_t* out);
void draw_sample_metas_avx512(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0,
                              uint32_t count, SampleMeta* out);
void narrow_tokens_avx512(const uint32_t* x, uint32_t n, uint16_t* out);
// The words of Philox blocks (c0 + lane, c1, c2, c3) for sixteen (eight) lanes: words[j][lane] is
// philox(seed, c0 + lane, c1, c2, c3).v[j] (the population noise's generator, noise_draw.cpp).
void philox_words16(uint64_t seed, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t words[4][16]);
void philox_words8(uint64_t seed, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t words[4][8]);
#endif

}  // namespace token_draw_detail
}  // namespace scb
