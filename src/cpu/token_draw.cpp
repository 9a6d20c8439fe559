// Token drawing for the CPU backend: draw_token_block's tokens in two schedules (see
// token_draw.hpp). The AVX2 one computes Philox4x32-10 for eight consecutive blocks of four
// positions at once (AVX-512: sixteen) (32 x 32 -> 64-bit products with vpmuludq on the even and the odd lanes),
// looks the 32 (64) words up in the alias table (from registers when it is small, else with
// loads or gathers), and transposes the result into position order. Every instruction is exact
// integer arithmetic, so the tokens equal the scalar ones bit for bit (tests/test_rng.cpp checks
// each against draw_token_block).
#include "scb/cpu/token_draw.hpp"

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
namespace {

// hi:lo = a * m per 32-bit lane (m the same in every lane). The odd lanes are moved to the even
// ones and back with shuffles, not 64-bit shifts: on AMD Zen 1 every vector shift takes the one
// shift pipe, which the shifts of Philox's twenty products per round kept busy (3-6% faster there).
__attribute__((target("avx2"))) inline void mulhilo8(__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_shuffle_epi32(a, 0xF5), m);  // lanes 1, 1, 3, 3: odd to even
  lo = _mm256_blend_epi32(even, _mm256_shuffle_epi32(odd, 0xA0), 0xAA);    // odd's low words up
  hi = _mm256_blend_epi32(_mm256_shuffle_epi32(even, 0xF5), odd, 0xAA);    // even's high words down
}

// philox4x32_10 of the counters (c0 + lane, c1, c2, c3), lanes 0..7, for one sample's tokens:
// only c0 differs between the blocks of a call (c1, c2, c3 are the sample, the step and the
// stream), so what depends on c1..c3 and the key alone is computed once per call: the whole
// first-round product of c2 (uniform across lanes), the second-round product of the then uniform
// word 0, and the round keys as vectors. 18 of the 20 vector multiplies remain per eight blocks.
// Exact integer arithmetic: the same words as philox() (tests/test_rng.cpp).
// The scalar words of that precomputation, shared by the AVX2 and AVX-512 forms.
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
    for (int round = 2; round < 10; ++round) {
      mulhilo8(v0, m0, hi0, lo0);
      mulhilo8(v2, m1, hi1, lo1);
      v0 = _mm256_xor_si256(_mm256_xor_si256(hi1, v1), key0_[round - 2]);
      v1 = lo1;
      v2 = _mm256_xor_si256(_mm256_xor_si256(hi0, v3), key1_[round - 2]);
      v3 = lo0;
    }
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

template <typename Lookup>
__attribute__((target("avx2"))) void draw_tokens_avx2_with(const Lookup& table, const ProblemView& pv,
                                                            uint64_t seed, uint32_t step, uint32_t sample,
                                                            uint32_t t0, uint32_t n, uint32_t* out) {
  const Philox8 philox(sample, step, kStreamTokens, seed);
  alignas(32) uint32_t last[32];  // a last partial round's tokens (those past n are not kept)
  for (uint32_t i = 0; i < n; i += 32) {
    uint32_t* dst_tokens = i + 32 <= n ? out + i : last;
    __m256i w[4];
    philox.blocks((t0 + i) / 4, w);
    __m256i x[4];
    for (int j = 0; j < 4; ++j) x[j] = alias8(table, pv.N, w[j]);
    // x[j] lane l is the token at position 4 l + j: a 4 x 4 transpose in each 128-bit half
    // gives blocks (0|4), (1|5), (2|6), (3|7), stored half by half (a cross-half permute costs
    // more than the extra stores on cores that split 256-bit operations).
    const __m256i a0 = _mm256_unpacklo_epi32(x[0], x[1]), a1 = _mm256_unpacklo_epi32(x[2], x[3]);
    const __m256i a2 = _mm256_unpackhi_epi32(x[0], x[1]), a3 = _mm256_unpackhi_epi32(x[2], x[3]);
    const __m256i b[4] = {_mm256_unpacklo_epi64(a0, a1), _mm256_unpackhi_epi64(a0, a1), _mm256_unpacklo_epi64(a2, a3),
                          _mm256_unpackhi_epi64(a2, a3)};
    __m128i* dst = reinterpret_cast<__m128i*>(dst_tokens);
    for (int c = 0; c < 4; ++c) {
      _mm_storeu_si128(dst + c, _mm256_castsi256_si128(b[c]));
      _mm_storeu_si128(dst + 4 + c, _mm256_extracti128_si256(b[c], 1));
    }
    if (dst_tokens == last) std::memcpy(out + i, last, (n - i) * sizeof(uint32_t));
  }
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
// whichever this CPU does faster (choose_table_reads).
__attribute__((target("avx2"))) void draw_tokens_avx2(const ProblemView& pv, uint64_t seed, uint32_t step,
                                                       uint32_t sample, uint32_t t0, uint32_t n, uint32_t* out,
                                                       bool gather) {
  if (n < 8) return draw_tokens_scalar(pv, seed, step, sample, t0, n, out);
  const uint32_t N = pv.N;
  const uint32_t *thr = pv.mu_threshold, *al = pv.mu_alias;
  if (N <= 8) return draw_tokens_avx2_with(RegisterTable<1>(thr, al, N), pv, seed, step, sample, t0, n, out);
  if (N <= 16) return draw_tokens_avx2_with(RegisterTable<2>(thr, al, N), pv, seed, step, sample, t0, n, out);
  if (gather) return draw_tokens_avx2_with(GatherTable{thr, al}, pv, seed, step, sample, t0, n, out);
  draw_tokens_avx2_with(LoadTable{thr, al}, pv, seed, step, sample, t0, n, out);
}

// The same for AVX-512F: 16 blocks, 64 tokens per round, the same shape as the AVX2 schedule
// (Philox's per-call constants once per call, tables of up to 64 entries in registers). (GCC 12's
// avx512fintrin.h initialises its "undefined" vectors from themselves, which -Wmaybe-uninitialized
// reports inside them.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define SCB_AVX512 __attribute__((target("avx512f")))
SCB_AVX512 inline void mulhilo16(__m512i a, __m512i m, __m512i& hi, __m512i& lo) {
  const __m512i even = _mm512_mul_epu32(a, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_shuffle_epi32(a, _MM_PERM_DDBB), m);  // odd lanes to even
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_shuffle_epi32(odd, _MM_PERM_CCAA));
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_shuffle_epi32(even, _MM_PERM_DDBB), odd);
}

// Philox8 on sixteen lanes (the same precomputation; see there).
class Philox16 {
 public:
  SCB_AVX512 Philox16(uint32_t c1, uint32_t c2, uint32_t c3, uint64_t seed) {
    const PhiloxCallConstants k(c1, c2, c3, seed);
    x2_0_ = _mm512_set1_epi32(int(k.x2_0));
    x0_1_ = _mm512_set1_epi32(int(k.x0_1));
    x2_1_ = _mm512_set1_epi32(int(k.x2_1));
    v3_1_ = _mm512_set1_epi32(int(k.v3_1));
    for (int r = 0; r < 8; ++r) key0_[r] = _mm512_set1_epi32(int(k.key0[r])), key1_[r] = _mm512_set1_epi32(int(k.key1[r]));
  }
  SCB_AVX512 void blocks(uint32_t c0, __m512i w[4]) const {
    const __m512i m0 = _mm512_set1_epi32(int(0xD2511F53u)), m1 = _mm512_set1_epi32(int(0xCD9E8D57u));
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512i hi0, lo0, hi1, lo1;
    mulhilo16(_mm512_add_epi32(_mm512_set1_epi32(int(c0)), lanes), m0, hi0, lo0);
    __m512i v2 = _mm512_xor_si512(hi0, x2_0_), v3 = lo0;
    mulhilo16(v2, m1, hi1, lo1);
    __m512i v0 = _mm512_xor_si512(hi1, x0_1_), v1 = lo1;
    v2 = _mm512_xor_si512(v3, x2_1_);
    v3 = v3_1_;
    for (int round = 2; round < 10; ++round) {
      mulhilo16(v0, m0, hi0, lo0);
      mulhilo16(v2, m1, hi1, lo1);
      v0 = _mm512_ternarylogic_epi32(hi1, v1, key0_[round - 2], 0x96);  // three-way xor
      v1 = lo1;
      v2 = _mm512_ternarylogic_epi32(hi0, v3, key1_[round - 2], 0x96);
      v3 = lo0;
    }
    w[0] = v0, w[1] = v1, w[2] = v2, w[3] = v3;
  }

 private:
  __m512i x2_0_, x0_1_, x2_1_, v3_1_;
  __m512i key0_[8], key1_[8];
};

struct GatherTable16 {
  const uint32_t* threshold;
  const uint32_t* alias;
  SCB_AVX512 void read(__m512i idx, __m512i& thr, __m512i& al) const {
    thr = _mm512_i32gather_epi32(idx, threshold, 4);
    al = _mm512_i32gather_epi32(idx, alias, 4);
  }
};

// Tables of up to 16 * Parts entries in registers: vpermd reads 16 entries, vpermt2d 32 (bit 4
// of idx picks the register of a pair), and bits 5 and 6 pick the pair (N <= 128).
template <int Parts>
struct RegisterTable16 {
  static_assert(Parts == 1 || Parts == 2 || Parts == 4 || Parts == 8);
  __m512i thr[Parts], al[Parts];
  SCB_AVX512 RegisterTable16(const uint32_t* threshold, const uint32_t* alias, uint32_t n) {
    for (int p = 0; p < Parts; ++p) {
      const uint32_t left = n > 16u * p ? std::min(16u, n - 16u * p) : 0u;
      const __mmask16 in = __mmask16((1u << left) - 1u);  // lanes at or past n read nothing
      thr[p] = _mm512_maskz_loadu_epi32(in, threshold + 16 * p);
      al[p] = _mm512_maskz_loadu_epi32(in, alias + 16 * p);
    }
  }
  SCB_AVX512 static __m512i lookup(const __m512i* part, __m512i idx) {
    if constexpr (Parts == 1) {
      return _mm512_permutexvar_epi32(idx, part[0]);
    } else {
      return lookup_pairs(part, idx);
    }
  }
  SCB_AVX512 static __m512i lookup_pairs(const __m512i* part, __m512i idx) {
    __m512i pair[Parts / 2];
    for (int p = 0; p < Parts / 2; ++p) pair[p] = _mm512_permutex2var_epi32(part[2 * p], idx, part[2 * p + 1]);
    if constexpr (Parts == 2) return pair[0];
    const __mmask16 bit5 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(32));
    const __m512i low = _mm512_mask_blend_epi32(bit5, pair[0], pair[1]);
    if constexpr (Parts == 4) return low;
    const __m512i high = _mm512_mask_blend_epi32(bit5, pair[2], pair[3]);
    return _mm512_mask_blend_epi32(_mm512_test_epi32_mask(idx, _mm512_set1_epi32(64)), low, high);
  }
  SCB_AVX512 void read(__m512i idx, __m512i& t, __m512i& a) const {
    t = lookup(thr, idx);
    a = lookup(al, idx);
  }
};

template <typename Lookup>
SCB_AVX512 void draw_tokens_avx512_with(const Lookup& table, const ProblemView& pv, uint64_t seed, uint32_t step,
                                        uint32_t sample, uint32_t t0, uint32_t n, uint32_t* out) {
  const Philox16 philox(sample, step, kStreamTokens, seed);
  const __m512i nn = _mm512_set1_epi32(int(pv.N));
  for (uint32_t i = 0; i < n; i += 64) {
    // A last partial round stores the positions before n (masked stores), the others are dropped.
    const uint64_t keep = n - i >= 64 ? ~uint64_t{0} : (uint64_t{1} << (n - i)) - 1u;
    __m512i w[4], x[4];
    philox.blocks((t0 + i) / 4, w);
    for (int j = 0; j < 4; ++j) {  // alias_sample, as alias8
      __m512i idx, frac, thr, al;
      mulhilo16(w[j], nn, idx, frac);
      table.read(idx, thr, al);
      x[j] = _mm512_mask_blend_epi32(_mm512_cmplt_epu32_mask(frac, thr), al, idx);
    }
    // x[j] lane l is the token at position 4 l + j. A 4 x 4 transpose in each 128-bit quarter
    // gives b[c] = blocks (c | c+4 | c+8 | c+12); a 4 x 4 transpose of the quarters orders them.
    const __m512i a0 = _mm512_unpacklo_epi32(x[0], x[1]), a1 = _mm512_unpacklo_epi32(x[2], x[3]);
    const __m512i a2 = _mm512_unpackhi_epi32(x[0], x[1]), a3 = _mm512_unpackhi_epi32(x[2], x[3]);
    const __m512i b0 = _mm512_unpacklo_epi64(a0, a1), b1 = _mm512_unpackhi_epi64(a0, a1);
    const __m512i b2 = _mm512_unpacklo_epi64(a2, a3), b3 = _mm512_unpackhi_epi64(a2, a3);
    const __m512i c0 = _mm512_shuffle_i32x4(b0, b1, 0x44), c1 = _mm512_shuffle_i32x4(b2, b3, 0x44);
    const __m512i c2 = _mm512_shuffle_i32x4(b0, b1, 0xEE), c3 = _mm512_shuffle_i32x4(b2, b3, 0xEE);
    _mm512_mask_storeu_epi32(out + i, __mmask16(keep), _mm512_shuffle_i32x4(c0, c1, 0x88));
    _mm512_mask_storeu_epi32(out + i + 16, __mmask16(keep >> 16), _mm512_shuffle_i32x4(c0, c1, 0xDD));
    _mm512_mask_storeu_epi32(out + i + 32, __mmask16(keep >> 32), _mm512_shuffle_i32x4(c2, c3, 0x88));
    _mm512_mask_storeu_epi32(out + i + 48, __mmask16(keep >> 48), _mm512_shuffle_i32x4(c2, c3, 0xDD));
  }
}

// Tables of up to 64 entries from registers, larger ones with gathers (AVX-512's gathers beat
// scalar loads wherever it has been measured).
SCB_AVX512 void draw_tokens_avx512(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample,
                                   uint32_t t0, uint32_t n, uint32_t* out) {
  if (n < 8) return draw_tokens_scalar(pv, seed, step, sample, t0, n, out);
  const uint32_t N = pv.N;
  const uint32_t *thr = pv.mu_threshold, *al = pv.mu_alias;
  if (N <= 16) return draw_tokens_avx512_with(RegisterTable16<1>(thr, al, N), pv, seed, step, sample, t0, n, out);
  if (N <= 32) return draw_tokens_avx512_with(RegisterTable16<2>(thr, al, N), pv, seed, step, sample, t0, n, out);
  if (N <= 64) return draw_tokens_avx512_with(RegisterTable16<4>(thr, al, N), pv, seed, step, sample, t0, n, out);
  if (N <= 128) return draw_tokens_avx512_with(RegisterTable16<8>(thr, al, N), pv, seed, step, sample, t0, n, out);
  draw_tokens_avx512_with(GatherTable16{thr, al}, pv, seed, step, sample, t0, n, out);
}
// vpmovdw: the low halves of sixteen tokens (each below 65,536) per instruction.
SCB_AVX512 void narrow_tokens_avx512(const uint32_t* x, uint32_t n, uint16_t* out) {
  uint32_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_cvtepi32_epi16(_mm512_loadu_si512(x + i)));
  for (; i < n; ++i) out[i] = static_cast<uint16_t>(x[i]);
}

#undef SCB_AVX512
#pragma GCC diagnostic pop

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

bool draw_isa_supported(DrawIsa isa) {
  switch (isa) {
    case DrawIsa::avx512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2");
    case DrawIsa::avx2:
    case DrawIsa::avx2_gather: return __builtin_cpu_supports("avx2");
    default: return true;
  }
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
