// Token drawing for the CPU backend: draw_token_block's tokens in two schedules (see
// token_draw.hpp). The AVX2 one computes Philox4x32-10 for eight consecutive blocks of four
// positions at once (AVX-512: sixteen) (32 x 32 -> 64-bit products with vpmuludq on the even and the odd lanes),
// looks the 32 (64) words up in the alias table (from registers when it is small, else with
// loads or gathers), and transposes the result into position order. Every instruction is exact
// integer arithmetic, so the tokens equal the scalar ones bit for bit (tests/test_rng.cpp checks
// each against draw_token_block).
#include "scb/cpu/token_draw.hpp"

#include "token_draw_schedules.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SCB_TOKEN_DRAW_X86 1
#endif

namespace scb {

void draw_tokens_scalar(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample, uint32_t t0,
                        uint32_t n, uint32_t* out) {
  uint32_t x[4];
  for (uint32_t i = 0; i < n; i += 4) {
    draw_token_block(pv, seed, step, sample, (t0 + i) / 4, x);
    const uint32_t m = std::min(4u, n - i);
    for (uint32_t l = 0; l < m; ++l) out[i + l] = x[l];
  }
}

#if defined(SCB_TOKEN_DRAW_X86)
using token_draw_detail::draw_sample_tokens_avx512;
using token_draw_detail::draw_tokens_avx512;
using token_draw_detail::narrow_tokens_avx512;
using token_draw_detail::PhiloxCallConstants;

namespace {

// hi:lo = a * m per 32-bit lane (m the same in every lane). The odd lanes are moved to the even
// ones and back with shuffles, not 64-bit shifts: on AMD Zen 1 every vector shift takes the one
// shift pipe, which the shifts of Philox's twenty products per round kept busy (3-6% faster there).
// (even, odd: the 64-bit products of the even lanes and of the odd lanes moved to even ones.)
__attribute__((target("avx2"))) inline void split_products8(__m256i even, __m256i odd, __m256i& hi, __m256i& lo) {
  lo = _mm256_blend_epi32(even, _mm256_shuffle_epi32(odd, 0xA0), 0xAA);  // odd's low words up
  hi = _mm256_blend_epi32(_mm256_shuffle_epi32(even, 0xF5), odd, 0xAA);  // even's high words down
}

__attribute__((target("avx2"))) inline void mulhilo8(__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
  const __m256i odd = _mm256_mul_epu32(_mm256_shuffle_epi32(a, 0xF5), m);  // lanes 1, 1, 3, 3: odd to even
  split_products8(_mm256_mul_epu32(a, m), odd, hi, lo);
}

// mulhilo8 with a multiplier of its own in every lane.
__attribute__((target("avx2"))) inline void mulhilo8_lanes(__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
  const __m256i odd = _mm256_mul_epu32(_mm256_shuffle_epi32(a, 0xF5), _mm256_shuffle_epi32(m, 0xF5));
  split_products8(_mm256_mul_epu32(a, m), odd, hi, lo);
}

// Philox rounds on eight lanes, from the round whose keys are key0[0], key1[0] to round 9.
__attribute__((target("avx2"))) inline void philox_rounds8(__m256i& v0, __m256i& v1, __m256i& v2, __m256i& v3,
                                                           const __m256i* key0, const __m256i* key1, int rounds) {
  const __m256i m0 = _mm256_set1_epi32(int(0xD2511F53u)), m1 = _mm256_set1_epi32(int(0xCD9E8D57u));
  for (int i = 0; i < rounds; ++i) {
    __m256i hi0, lo0, hi1, lo1;
    mulhilo8(v0, m0, hi0, lo0);
    mulhilo8(v2, m1, hi1, lo1);
    v0 = _mm256_xor_si256(_mm256_xor_si256(hi1, v1), key0[i]);
    v1 = lo1;
    v2 = _mm256_xor_si256(_mm256_xor_si256(hi0, v3), key1[i]);
    v3 = lo0;
  }
}

// philox4x32_10 of the counters (c0 + lane, c1, c2, c3), lanes 0..7, for one sample's tokens:
// only c0 differs between the blocks of a call (c1, c2, c3 are the sample, the step and the
// stream), so what depends on c1..c3 and the key alone is computed once per call: the whole
// first-round product of c2 (uniform across lanes), the second-round product of the then uniform
// word 0, and the round keys as vectors. 18 of the 20 vector multiplies remain per eight blocks.
// Exact integer arithmetic: the same words as philox() (tests/test_rng.cpp).

class Philox8 {
 public:
  __attribute__((target("avx2"))) Philox8(uint32_t c1, uint32_t c2, uint32_t c3, uint64_t seed) {
    const PhiloxCallConstants k(c1, c2, c3, seed);
    x2_0_ = _mm256_set1_epi32(int(k.x2_0));
    x0_1_ = _mm256_set1_epi32(int(k.x0_1));
    x2_1_ = _mm256_set1_epi32(int(k.x2_1));
    v3_1_ = _mm256_set1_epi32(int(k.v3_1));
    for (int r = 0; r < 8; ++r) key0_[r] = _mm256_set1_epi32(int(k.key0[r])), key1_[r] = _mm256_set1_epi32(int(k.key1[r]));
  }
  // Word j of block (c0 + lane) in w[j].
  __attribute__((target("avx2"))) void blocks(uint32_t c0, __m256i w[4]) const {
    const __m256i m0 = _mm256_set1_epi32(int(0xD2511F53u)), m1 = _mm256_set1_epi32(int(0xCD9E8D57u));
    __m256i hi0, lo0, hi1, lo1;
    // Round 0: only word 0 varies across lanes.
    mulhilo8(_mm256_add_epi32(_mm256_set1_epi32(int(c0)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)), m0, hi0, lo0);
    __m256i v2 = _mm256_xor_si256(hi0, x2_0_), v3 = lo0;
    // Round 1: word 0 is uniform (its product is in x2_1_ and v3_1_).
    mulhilo8(v2, m1, hi1, lo1);
    __m256i v0 = _mm256_xor_si256(hi1, x0_1_), v1 = lo1;
    v2 = _mm256_xor_si256(v3, x2_1_);
    v3 = v3_1_;
    philox_rounds8(v0, v1, v2, v3, key0_, key1_, 8);
    w[0] = v0, w[1] = v1, w[2] = v2, w[3] = v3;
  }

 private:
  __m256i x2_0_, x0_1_, x2_1_, v3_1_;
  __m256i key0_[8], key1_[8];
};

// alias_sample of model.hpp on eight words: idx = hi(u * n), accept idx when lo(u * n) < threshold.
// Lookup is how the two tables are read at idx: registers (N <= 16), scalar loads or gathers.
template <typename Lookup>
__attribute__((target("avx2"))) inline __m256i alias8(const Lookup& table, uint32_t n, __m256i u) {
  __m256i idx, frac;
  mulhilo8(u, _mm256_set1_epi32(int(n)), idx, frac);
  __m256i thr, al;
  table.read(idx, thr, al);
  const __m256i flip = _mm256_set1_epi32(int(0x80000000u));  // unsigned compare via signed
  const __m256i accept = _mm256_cmpgt_epi32(_mm256_xor_si256(thr, flip), _mm256_xor_si256(frac, flip));
  return _mm256_blendv_epi8(al, idx, accept);
}

struct GatherTable {
  const uint32_t* threshold;
  const uint32_t* alias;
  __attribute__((target("avx2"))) void read(__m256i idx, __m256i& thr, __m256i& al) const {
    thr = _mm256_i32gather_epi32(reinterpret_cast<const int*>(threshold), idx, 4);
    al = _mm256_i32gather_epi32(reinterpret_cast<const int*>(alias), idx, 4);
  }
};

// Eight scalar loads per table: on AMD Zen 1 some 1.25x the gathers' rate, on most Intel cores slower.
struct LoadTable {
  const uint32_t* threshold;
  const uint32_t* alias;
  __attribute__((target("avx2"))) void read(__m256i idx, __m256i& thr, __m256i& al) const {
    alignas(32) uint32_t i[8], t[8], a[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(i), idx);
    for (int l = 0; l < 8; ++l) t[l] = threshold[i[l]], a[l] = alias[i[l]];
    thr = _mm256_load_si256(reinterpret_cast<const __m256i*>(t));
    al = _mm256_load_si256(reinterpret_cast<const __m256i*>(a));
  }
};

// Tables of up to 8 * Parts entries kept in registers and read with vpermd (idx < n <= 8 Parts):
// a gather costs some twenty cycles on older cores (AMD Zen 1 above all) where a permute costs
// one or two, and at small N token drawing is most of a step (N = 3: 1.5x the gathers' rate on
// Zen 1; four registers, N <= 32, gained nothing there). Bit 3 of idx picks the register
// (blendv reads the sign bit, so idx is shifted left to put it there).
template <int Parts>
struct RegisterTable {
  __m256i thr[Parts], al[Parts];
  // Masked loads: the lanes at or past n are 0 and read nothing.
  __attribute__((target("avx2"))) RegisterTable(const uint32_t* threshold, const uint32_t* alias, uint32_t n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int p = 0; p < Parts; ++p) {
      const __m256i in = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n) - 8 * p), lane);
      thr[p] = _mm256_maskload_epi32(reinterpret_cast<const int*>(threshold + 8 * p), in);
      al[p] = _mm256_maskload_epi32(reinterpret_cast<const int*>(alias + 8 * p), in);
    }
  }
  __attribute__((target("avx2"))) static __m256i pick(__m256i lo, __m256i hi, __m256i sel) {
    return _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(lo), _mm256_castsi256_ps(hi), _mm256_castsi256_ps(sel)));
  }
  __attribute__((target("avx2"))) static __m256i lookup(const __m256i* part, __m256i idx) {
    static_assert(Parts == 1 || Parts == 2);
    const __m256i v = _mm256_permutevar8x32_epi32(part[0], idx);
    if constexpr (Parts == 1) return v;
    return pick(v, _mm256_permutevar8x32_epi32(part[1], idx), _mm256_slli_epi32(idx, 28));
  }
  __attribute__((target("avx2"))) void read(__m256i idx, __m256i& t, __m256i& a) const {
    t = lookup(thr, idx);
    a = lookup(al, idx);
  }
};

// x[j] lane l is the token at position 4 l + j: a 4 x 4 transpose in each 128-bit half gives
// b[c] = blocks (c | c + 4), in position order within each half.
__attribute__((target("avx2"))) inline void transpose_round8(const __m256i x[4], __m256i b[4]) {
  const __m256i a0 = _mm256_unpacklo_epi32(x[0], x[1]), a1 = _mm256_unpacklo_epi32(x[2], x[3]);
  const __m256i a2 = _mm256_unpackhi_epi32(x[0], x[1]), a3 = _mm256_unpackhi_epi32(x[2], x[3]);
  b[0] = _mm256_unpacklo_epi64(a0, a1), b[1] = _mm256_unpackhi_epi64(a0, a1);
  b[2] = _mm256_unpacklo_epi64(a2, a3), b[3] = _mm256_unpackhi_epi64(a2, a3);
}

// The round's 32 tokens in position order, stored half by half (a cross-half permute costs more
// than the extra stores on cores that split 256-bit operations).
__attribute__((target("avx2"))) inline void store_round8(const __m256i x[4], uint32_t* out) {
  __m256i b[4];
  transpose_round8(x, b);
  __m128i* dst = reinterpret_cast<__m128i*>(out);
  for (int c = 0; c < 4; ++c) {
    _mm_storeu_si128(dst + c, _mm256_castsi256_si128(b[c]));
    _mm_storeu_si128(dst + 4 + c, _mm256_extracti128_si256(b[c], 1));
  }
}

// The same 32 tokens narrowed to 16 bits on their way to memory: the transpose's rows hold blocks
// (c | c + 4), so packing rows 0, 1 and rows 2, 3 gives positions 0..7 | 16..23 and 8..15 | 24..31,
// whose halves are put in order by two cross-half permutes (tokens are below 65,536: packus keeps them).
__attribute__((target("avx2"))) inline void store_round8(const __m256i x[4], uint16_t* out) {
  __m256i b[4];
  transpose_round8(x, b);
  const __m256i p01 = _mm256_packus_epi32(b[0], b[1]), p23 = _mm256_packus_epi32(b[2], b[3]);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permute2x128_si256(p01, p23, 0x20));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16), _mm256_permute2x128_si256(p01, p23, 0x31));
}

template <typename Lookup, typename Out>
__attribute__((target("avx2"))) void draw_tokens_avx2_with(const Lookup& table, const ProblemView& pv,
                                                            uint64_t seed, uint32_t step, uint32_t sample,
                                                            uint32_t t0, uint32_t n, Out* out) {
  const Philox8 philox(sample, step, kStreamTokens, seed);
  alignas(32) Out last[32];  // a last partial round's tokens (those past n are not kept)
  for (uint32_t i = 0; i < n; i += 32) {
    Out* dst_tokens = i + 32 <= n ? out + i : last;
    __m256i w[4];
    philox.blocks((t0 + i) / 4, w);
    __m256i x[4];
    for (int j = 0; j < 4; ++j) x[j] = alias8(table, pv.N, w[j]);
    store_round8(x, dst_tokens);
    if (dst_tokens == last) std::memcpy(out + i, last, (n - i) * sizeof(Out));
  }
}

// Philox8 for the blocks of several samples in one register: the lanes differ in c0 (the block)
// and c1 (the sample), so only c2 and c3 (the step and the stream) are folded in once per call,
// and round 1's word-0 product, uniform in Philox8, is one more vector product per lane (19 of
// Philox8's 18). At T = 100 a sample is 25 blocks: eight samples fill 25 rounds exactly where
// sample by sample they took 32 (four rounds each, the last holding one block).
class Philox8Samples {
 public:
  __attribute__((target("avx2"))) Philox8Samples(uint32_t c2, uint32_t c3, uint64_t seed) {
    const token_draw_detail::SamplesCallConstants k(c2, c3, seed);
    x0_0_ = _mm256_set1_epi32(int(k.x0_0)), v1_0_ = _mm256_set1_epi32(int(k.v1_0)), x2_0_ = _mm256_set1_epi32(int(k.x2_0));
    for (int r = 0; r < 9; ++r) key0_[r] = _mm256_set1_epi32(int(k.key0[r])), key1_[r] = _mm256_set1_epi32(int(k.key1[r]));
  }
  // Word j of block (c0[lane], c1[lane]) in w[j].
  __attribute__((target("avx2"))) void blocks(__m256i c0, __m256i c1, __m256i w[4]) const {
    __m256i hi0, lo0;
    mulhilo8(c0, _mm256_set1_epi32(int(0xD2511F53u)), hi0, lo0);
    __m256i v0 = _mm256_xor_si256(x0_0_, c1), v1 = v1_0_, v2 = _mm256_xor_si256(hi0, x2_0_), v3 = lo0;
    philox_rounds8(v0, v1, v2, v3, key0_, key1_, 9);
    w[0] = v0, w[1] = v1, w[2] = v2, w[3] = v3;
  }

 private:
  __m256i x0_0_, v1_0_, x2_0_;
  __m256i key0_[9], key1_[9];
};

// Every token of samples sample0 .. sample0 + count - 1 (T a multiple of 4, so that block f of
// the run of samples is positions 4 f .. 4 f + 3 of out): rounds of eight blocks run across
// sample boundaries.
template <typename Lookup, typename Out>
__attribute__((target("avx2"))) void draw_sample_tokens_avx2_with(const Lookup& table, const ProblemView& pv,
                                                                   uint64_t seed, uint32_t step, uint32_t sample0,
                                                                   uint32_t count, Out* out) {
  const uint32_t blocks_per_sample = pv.T / 4, n = count * pv.T;
  const Philox8Samples philox(step, kStreamTokens, seed);
  alignas(32) uint32_t c0[8], c1[8];
  alignas(32) Out last[32];
  for (uint32_t l = 0; l < 8; ++l) c0[l] = l % blocks_per_sample, c1[l] = sample0 + l / blocks_per_sample;
  __m256i block = _mm256_load_si256(reinterpret_cast<const __m256i*>(c0));  // lane l's block and sample
  __m256i sample = _mm256_load_si256(reinterpret_cast<const __m256i*>(c1));
  const __m256i per_sample = _mm256_set1_epi32(int(blocks_per_sample)), last_block = _mm256_sub_epi32(per_sample, _mm256_set1_epi32(1));
  for (uint32_t i = 0; i < n; i += 32) {
    __m256i w[4];
    philox.blocks(block, sample, w);
    // Eight blocks on: a lane past its sample's last block wraps into the next sample (once, as
    // blocks_per_sample >= 8; shorter samples wrap lane by lane).
    if (blocks_per_sample >= 8) {
      block = _mm256_add_epi32(block, _mm256_set1_epi32(8));
      const __m256i wrap = _mm256_cmpgt_epi32(block, last_block);  // all ones where it wraps
      block = _mm256_sub_epi32(block, _mm256_and_si256(wrap, per_sample));
      sample = _mm256_sub_epi32(sample, wrap);
    } else {
      const uint32_t f = i / 4 + 8;  // the next round's first block, counted from sample0's block 0
      for (uint32_t l = 0; l < 8; ++l) c0[l] = (f + l) % blocks_per_sample, c1[l] = sample0 + (f + l) / blocks_per_sample;
      block = _mm256_load_si256(reinterpret_cast<const __m256i*>(c0));
      sample = _mm256_load_si256(reinterpret_cast<const __m256i*>(c1));
    }
    __m256i x[4];
    for (int j = 0; j < 4; ++j) x[j] = alias8(table, pv.N, w[j]);
    Out* dst_tokens = i + 32 <= n ? out + i : last;
    store_round8(x, dst_tokens);
    if (dst_tokens == last) std::memcpy(out + i, last, (n - i) * sizeof(Out));
  }
}

__attribute__((target("avx2"))) inline __m256i gather32(const uint32_t* base, __m256i at) {
  return _mm256_i32gather_epi32(reinterpret_cast<const int*>(base), at, 4);
}

// draw_sample_meta of model.hpp for the eight samples sample0 + lane (sample_metas16 of the
// AVX-512 schedule at half the width): each sample's meta block (c0 = 0, c1 the sample), its query
// from mu's table and its position from the query's q table, whose offset and size differ from
// lane to lane (gathers). The same integer steps as alias_sample, so the same query, position and
// output word bit for bit.
template <typename Lookup>
__attribute__((target("avx2"))) void sample_metas8(const Lookup& table, const ProblemView& pv,
                                                   const Philox8Samples& philox, uint32_t sample0, uint32_t* query,
                                                   uint32_t* position, uint32_t* output_word) {
  __m256i w[4];
  philox.blocks(_mm256_setzero_si256(), _mm256_add_epi32(_mm256_set1_epi32(int(sample0)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)), w);
  const __m256i k = alias8(table, pv.N, w[0]);
  const __m256i begin = gather32(pv.q_ptr, k), end = gather32(pv.q_ptr + 1, k);
  __m256i idx, frac;
  mulhilo8_lanes(w[1], _mm256_sub_epi32(end, begin), idx, frac);
  const __m256i at = _mm256_add_epi32(begin, idx);
  const __m256i flip = _mm256_set1_epi32(int(0x80000000u));  // unsigned compare via signed
  const __m256i accept = _mm256_cmpgt_epi32(_mm256_xor_si256(gather32(pv.q_threshold, at), flip), _mm256_xor_si256(frac, flip));
  const __m256i slot = _mm256_blendv_epi8(gather32(pv.q_alias, at), idx, accept);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(query), k);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(position), gather32(pv.q_pos, _mm256_add_epi32(begin, slot)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(output_word), w[2]);
}

__attribute__((target("avx2"))) void narrow_tokens_avx2(const uint32_t* x, uint32_t n, uint16_t* out) {
  uint32_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 8));
    // packus works within 128-bit halves: (lo0 hi0 | lo1 hi1), put back in order.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), packed);
  }
  for (; i < n; ++i) out[i] = static_cast<uint16_t>(x[i]);
}

// Tables of up to 16 entries are read from registers; larger ones with loads or gathers,
// whichever this CPU does faster (choose_table_reads). draw(table) runs with the one chosen.
template <typename Draw>
__attribute__((target("avx2"))) void with_avx2_table(const ProblemView& pv, bool gather, Draw&& draw) {
  const uint32_t N = pv.N;
  const uint32_t *thr = pv.mu_threshold, *al = pv.mu_alias;
  if (N <= 8) return draw(RegisterTable<1>(thr, al, N));
  if (N <= 16) return draw(RegisterTable<2>(thr, al, N));
  if (gather) return draw(GatherTable{thr, al});
  draw(LoadTable{thr, al});
}

// Out: uint32_t, or uint16_t for the tokens narrowed on their way to memory.
template <typename Out>
__attribute__((target("avx2"))) void draw_tokens_avx2(const ProblemView& pv, uint64_t seed, uint32_t step,
                                                       uint32_t sample, uint32_t t0, uint32_t n, Out* out,
                                                       bool gather) {
  if (n < 8) return token_draw_detail::draw_few_tokens(pv, seed, step, sample, t0, n, out);
  with_avx2_table(pv, gather, [&](const auto& table) {
    draw_tokens_avx2_with(table, pv, seed, step, sample, t0, n, out);
  });
}

template <typename Out>
__attribute__((target("avx2"))) void draw_sample_tokens_avx2(const ProblemView& pv, uint64_t seed, uint32_t step,
                                                              uint32_t sample0, uint32_t count, Out* out,
                                                              bool gather) {
  with_avx2_table(pv, gather, [&](const auto& table) {
    draw_sample_tokens_avx2_with(table, pv, seed, step, sample0, count, out);
  });
}

__attribute__((target("avx2"))) void draw_sample_metas_avx2(const ProblemView& pv, uint64_t seed, uint32_t step,
                                                             uint32_t sample0, uint32_t count, SampleMeta* out,
                                                             bool gather) {
  const Philox8Samples philox(step, kStreamSampleMeta, seed);
  with_avx2_table(pv, gather, [&](const auto& table) {
    for (uint32_t c = 0; c < count; c += 8) {
      alignas(32) uint32_t k[8], s[8], word[8];
      sample_metas8(table, pv, philox, sample0 + c, k, s, word);
      for (uint32_t l = 0; l < 8 && c + l < count; ++l) out[c + l] = SampleMeta{k[l], s[l], word[l]};
    }
  });
}

// Loads or gathers for AVX2 tables over 16 entries: the faster of the two on this CPU, timed once
// on 8 x 2,048 tokens each (under a millisecond; both give the same tokens).
DrawIsa choose_table_reads() {
  constexpr uint32_t N = 100, n = 2048;
  std::vector<uint32_t> threshold(N, 0x80000000u), alias(N), out(n);
  for (uint32_t i = 0; i < N; ++i) alias[i] = (i * 7) % N;
  ProblemView pv;
  pv.N = N;
  pv.T = n;
  pv.mu_threshold = threshold.data();
  pv.mu_alias = alias.data();
  double best[2] = {1e9, 1e9};
  for (int trial = 0; trial < 8; ++trial)
    for (int gather = 0; gather < 2; ++gather) {
      const auto t0 = std::chrono::steady_clock::now();
      draw_tokens_avx2(pv, 1, 0, uint32_t(trial), 0, n, out.data(), gather != 0);
      best[gather] = std::min(best[gather], std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  return best[1] < best[0] ? DrawIsa::avx2_gather : DrawIsa::avx2;
}

DrawIsa detect_isa() {
  const char* env = std::getenv("SCB_SIMD");
  std::string cap = env ? env : "";
  const bool known = cap == "off" || cap == "0" || cap == "scalar" || cap == "avx2" || cap == "avx512" ||
                     cap == "avx2-gather" || cap == "avx2-loads";
  if (!known) cap.clear();  // an unknown value caps nothing (as if unset)
  if (cap == "off" || cap == "0" || cap == "scalar") return DrawIsa::scalar;
  if (cap.empty() || cap == "avx512")
    if (draw_isa_supported(DrawIsa::avx512)) return DrawIsa::avx512;
  if (!draw_isa_supported(DrawIsa::avx2)) return DrawIsa::scalar;
  if (cap == "avx2-gather") return DrawIsa::avx2_gather;
  if (cap == "avx2-loads") return DrawIsa::avx2;
  return choose_table_reads();
}

}  // namespace

namespace token_draw_detail {
__attribute__((target("avx2"))) void philox_words8(uint64_t seed, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                                   uint32_t words[4][8]) {
  __m256i w[4];
  Philox8(c1, c2, c3, seed).blocks(c0, w);
  for (int j = 0; j < 4; ++j) _mm256_storeu_si256(reinterpret_cast<__m256i*>(words[j]), w[j]);
}
}  // namespace token_draw_detail

bool draw_isa_supported(DrawIsa isa) {
  switch (isa) {
    case DrawIsa::avx512:  // BW and VL: the 16-bit stores and compares of the loops around it
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2");
    case DrawIsa::avx2:
    case DrawIsa::avx2_gather: return __builtin_cpu_supports("avx2");
    default: return true;
  }
}

void draw_sample_tokens_with(DrawIsa isa, const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0,
                             uint32_t count, uint32_t* out) {
  if (pv.T % 4 == 0 && count > 1 && (isa == DrawIsa::avx2 || isa == DrawIsa::avx2_gather))
    return draw_sample_tokens_avx2(pv, seed, step, sample0, count, out, isa == DrawIsa::avx2_gather);
  if (pv.T % 4 == 0 && count > 1 && isa == DrawIsa::avx512)
    return draw_sample_tokens_avx512(pv, seed, step, sample0, count, out);
  for (uint32_t i = 0; i < count; ++i) draw_tokens_with(isa, pv, seed, step, sample0 + i, 0, pv.T, out + size_t(i) * pv.T);
}

void draw_tokens_with(DrawIsa isa, const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample,
                      uint32_t t0, uint32_t n, uint32_t* out) {
  switch (isa) {
    case DrawIsa::avx512: draw_tokens_avx512(pv, seed, step, sample, t0, n, out); break;
    case DrawIsa::avx2: draw_tokens_avx2(pv, seed, step, sample, t0, n, out, false); break;
    case DrawIsa::avx2_gather: draw_tokens_avx2(pv, seed, step, sample, t0, n, out, true); break;
    default: draw_tokens_scalar(pv, seed, step, sample, t0, n, out); break;
  }
}

#else

bool draw_isa_supported(DrawIsa isa) { return isa == DrawIsa::scalar; }

void draw_sample_tokens_with(DrawIsa, const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0,
                             uint32_t count, uint32_t* out) {
  for (uint32_t i = 0; i < count; ++i) draw_tokens_scalar(pv, seed, step, sample0 + i, 0, pv.T, out + size_t(i) * pv.T);
}

void draw_tokens_with(DrawIsa, const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample, uint32_t t0,
                      uint32_t n, uint32_t* out) {
  draw_tokens_scalar(pv, seed, step, sample, t0, n, out);
}

namespace {
DrawIsa detect_isa() { return DrawIsa::scalar; }
}  // namespace

#endif

void narrow_tokens(const uint32_t* x, uint32_t n, uint16_t* out) {
#if defined(SCB_TOKEN_DRAW_X86)
  if (avx512_loops()) return narrow_tokens_avx512(x, n, out);
  if (avx2_loops()) return narrow_tokens_avx2(x, n, out);
#endif
  for (uint32_t i = 0; i < n; ++i) out[i] = static_cast<uint16_t>(x[i]);
}

// The 16-bit forms: the AVX-512 and AVX2 schedules store the tokens narrowed; the scalar one draws
// 32-bit words a chunk at a time and narrows them (the same tokens either way).
void draw_tokens_with(DrawIsa isa, const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample,
                      uint32_t t0, uint32_t n, uint16_t* out) {
#if defined(SCB_TOKEN_DRAW_X86)
  if (isa == DrawIsa::avx512) return draw_tokens_avx512(pv, seed, step, sample, t0, n, out);
  if (isa == DrawIsa::avx2 || isa == DrawIsa::avx2_gather)
    return draw_tokens_avx2(pv, seed, step, sample, t0, n, out, isa == DrawIsa::avx2_gather);
#endif
  uint32_t chunk[kTokenChunk];
  for (uint32_t i = 0; i < n; i += kTokenChunk) {
    const uint32_t m = std::min(kTokenChunk, n - i);
    draw_tokens_with(isa, pv, seed, step, sample, t0 + i, m, chunk);
    narrow_tokens(chunk, m, out + i);
  }
}

void draw_sample_tokens_with(DrawIsa isa, const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0,
                             uint32_t count, uint16_t* out) {
#if defined(SCB_TOKEN_DRAW_X86)
  if (pv.T % 4 == 0 && count > 1 && isa == DrawIsa::avx512)
    return draw_sample_tokens_avx512(pv, seed, step, sample0, count, out);
  if (pv.T % 4 == 0 && count > 1 && (isa == DrawIsa::avx2 || isa == DrawIsa::avx2_gather))
    return draw_sample_tokens_avx2(pv, seed, step, sample0, count, out, isa == DrawIsa::avx2_gather);
#endif
  if (uint64_t(count) * pv.T <= kSamplesPerDraw * kTokenChunk) {
    uint32_t x[kSamplesPerDraw * kTokenChunk];
    draw_sample_tokens_with(isa, pv, seed, step, sample0, count, x);
    return narrow_tokens(x, count * pv.T, out);
  }
  for (uint32_t i = 0; i < count; ++i) draw_tokens_with(isa, pv, seed, step, sample0 + i, 0, pv.T, out + size_t(i) * pv.T);
}

void draw_sample_metas_with(DrawIsa isa, const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0,
                            uint32_t count, SampleMeta* out) {
#if defined(SCB_TOKEN_DRAW_X86)
  if (isa == DrawIsa::avx512) return token_draw_detail::draw_sample_metas_avx512(pv, seed, step, sample0, count, out);
  if (isa == DrawIsa::avx2 || isa == DrawIsa::avx2_gather)
    return draw_sample_metas_avx2(pv, seed, step, sample0, count, out, isa == DrawIsa::avx2_gather);
#endif
  for (uint32_t i = 0; i < count; ++i) out[i] = draw_sample_meta(pv, seed, step, sample0 + i);
}

void draw_sample_metas(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0, uint32_t count,
                       SampleMeta* out) {
  draw_sample_metas_with(token_draw_isa_used(), pv, seed, step, sample0, count, out);
}

bool avx2_loops() {
  static const bool on = token_draw_isa_used() != DrawIsa::scalar;
  return on;
}

bool avx512_loops() {
  static const bool on = token_draw_isa_used() == DrawIsa::avx512;
  return on;
}

DrawIsa token_draw_isa_used() {
  static const DrawIsa isa = detect_isa();
  return isa;
}

void draw_tokens(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample, uint32_t t0, uint32_t n,
                 uint32_t* out) {
  draw_tokens_with(token_draw_isa_used(), pv, seed, step, sample, t0, n, out);
}

void draw_sample_tokens(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0, uint32_t count,
                        uint32_t* out) {
  draw_sample_tokens_with(token_draw_isa_used(), pv, seed, step, sample0, count, out);
}

void draw_tokens(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample, uint32_t t0, uint32_t n,
                 uint16_t* out) {
  draw_tokens_with(token_draw_isa_used(), pv, seed, step, sample, t0, n, out);
}

void draw_sample_tokens(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0, uint32_t count,
                        uint16_t* out) {
  draw_sample_tokens_with(token_draw_isa_used(), pv, seed, step, sample0, count, out);
}

const char* draw_isa_name(DrawIsa isa) {
  switch (isa) {
    case DrawIsa::avx512: return "avx512";
    case DrawIsa::avx2: return "avx2";
    case DrawIsa::avx2_gather: return "avx2-gather";
    default: return "scalar";
  }
}

const char* token_draw_isa() { return draw_isa_name(token_draw_isa_used()); }

}  // namespace scb
