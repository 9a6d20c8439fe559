// The AVX-512 schedule of token drawing (see token_draw.hpp and the AVX2 schedule in
// token_draw.cpp): sixteen Philox blocks per register, 64 tokens per round. Exact integer
// arithmetic, the same tokens as draw_token_block (tests/test_rng.cpp).
#include "token_draw_schedules.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

namespace scb::token_draw_detail {

// 16 blocks, 64 tokens per round, the same shape as the AVX2 schedule
// (Philox's per-call constants once per call, tables of up to 64 entries in registers). (GCC 12's
// avx512fintrin.h initialises its "undefined" vectors from themselves, which -Wmaybe-uninitialized
// reports inside them, and -Wuninitialized where a constant operand is folded in.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#define SCB_AVX512 __attribute__((target("avx512f")))
SCB_AVX512 inline void mulhilo16(__m512i a, __m512i m, __m512i& hi, __m512i& lo) {
  const __m512i even = _mm512_mul_epu32(a, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_shuffle_epi32(a, _MM_PERM_DDBB), m);  // odd lanes to even
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_shuffle_epi32(odd, _MM_PERM_CCAA));
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_shuffle_epi32(even, _MM_PERM_DDBB), odd);
}

// Philox rounds on sixteen lanes, from the round whose keys are key0[0], key1[0] to round 9.
SCB_AVX512 inline void philox_rounds16(__m512i& v0, __m512i& v1, __m512i& v2, __m512i& v3, const __m512i* key0,
                                       const __m512i* key1, int rounds) {
  const __m512i m0 = _mm512_set1_epi32(int(0xD2511F53u)), m1 = _mm512_set1_epi32(int(0xCD9E8D57u));
  for (int i = 0; i < rounds; ++i) {
    __m512i hi0, lo0, hi1, lo1;
    mulhilo16(v0, m0, hi0, lo0);
    mulhilo16(v2, m1, hi1, lo1);
    v0 = _mm512_ternarylogic_epi32(hi1, v1, key0[i], 0x96);  // three-way xor
    v1 = lo1;
    v2 = _mm512_ternarylogic_epi32(hi0, v3, key1[i], 0x96);
    v3 = lo0;
  }
}

// Philox8 of token_draw.cpp on sixteen lanes (the same precomputation; see there).
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
    philox_rounds16(v0, v1, v2, v3, key0_, key1_, 8);
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

// Sixteen tokens to out, the lanes in keep: as 32-bit words, or narrowed to the 16 bits the
// engine keeps (vpmovdw on the way to memory: no second pass over the tokens).
SCB_AVX512 inline void store_lanes(uint32_t* out, __mmask16 keep, __m512i v) { _mm512_mask_storeu_epi32(out, keep, v); }
SCB_AVX512 inline void store_lanes(uint16_t* out, __mmask16 keep, __m512i v) {
  _mm512_mask_cvtepi32_storeu_epi16(out, keep, v);
}

// x[j] lane l is the token at position 4 l + j. A 4 x 4 transpose in each 128-bit quarter gives
// b[c] = blocks (c | c+4 | c+8 | c+12); a 4 x 4 transpose of the quarters orders them. keep: the
// positions stored (a last partial round stores those before its end, masked).
template <typename Out>
SCB_AVX512 inline void store_round16(const __m512i x[4], uint64_t keep, Out* out) {
  const __m512i a0 = _mm512_unpacklo_epi32(x[0], x[1]), a1 = _mm512_unpacklo_epi32(x[2], x[3]);
  const __m512i a2 = _mm512_unpackhi_epi32(x[0], x[1]), a3 = _mm512_unpackhi_epi32(x[2], x[3]);
  const __m512i b0 = _mm512_unpacklo_epi64(a0, a1), b1 = _mm512_unpackhi_epi64(a0, a1);
  const __m512i b2 = _mm512_unpacklo_epi64(a2, a3), b3 = _mm512_unpackhi_epi64(a2, a3);
  const __m512i c0 = _mm512_shuffle_i32x4(b0, b1, 0x44), c1 = _mm512_shuffle_i32x4(b2, b3, 0x44);
  const __m512i c2 = _mm512_shuffle_i32x4(b0, b1, 0xEE), c3 = _mm512_shuffle_i32x4(b2, b3, 0xEE);
  store_lanes(out, __mmask16(keep), _mm512_shuffle_i32x4(c0, c1, 0x88));
  store_lanes(out + 16, __mmask16(keep >> 16), _mm512_shuffle_i32x4(c0, c1, 0xDD));
  store_lanes(out + 32, __mmask16(keep >> 32), _mm512_shuffle_i32x4(c2, c3, 0x88));
  store_lanes(out + 48, __mmask16(keep >> 48), _mm512_shuffle_i32x4(c2, c3, 0xDD));
}

// alias_sample of the sixteen words of each w[j], as alias8.
template <typename Lookup>
SCB_AVX512 inline void alias16(const Lookup& table, __m512i nn, const __m512i w[4], __m512i x[4]) {
  for (int j = 0; j < 4; ++j) {
    __m512i idx, frac, thr, al;
    mulhilo16(w[j], nn, idx, frac);
    table.read(idx, thr, al);
    x[j] = _mm512_mask_blend_epi32(_mm512_cmplt_epu32_mask(frac, thr), al, idx);
  }
}

SCB_AVX512 inline uint64_t keep_before(uint32_t left) {
  return left >= 64 ? ~uint64_t{0} : (uint64_t{1} << left) - 1u;
}

template <typename Lookup, typename Out>
SCB_AVX512 void draw_tokens_avx512_with(const Lookup& table, const ProblemView& pv, uint64_t seed, uint32_t step,
                                        uint32_t sample, uint32_t t0, uint32_t n, Out* out) {
  const Philox16 philox(sample, step, kStreamTokens, seed);
  const __m512i nn = _mm512_set1_epi32(int(pv.N));
  for (uint32_t i = 0; i < n; i += 64) {
    __m512i w[4], x[4];
    philox.blocks((t0 + i) / 4, w);
    alias16(table, nn, w, x);
    store_round16(x, keep_before(n - i), out + i);
  }
}

// Philox16 for the blocks of several samples in one register, as Philox8Samples of
// token_draw.cpp: the lanes differ in c0 (the block) and c1 (the sample), so only c2 and c3 (the
// step and the stream) are folded in once per call.
class Philox16Samples {
 public:
  SCB_AVX512 Philox16Samples(uint32_t c2, uint32_t c3, uint64_t seed) {
    const SamplesCallConstants k(c2, c3, seed);
    x0_0_ = _mm512_set1_epi32(int(k.x0_0)), v1_0_ = _mm512_set1_epi32(int(k.v1_0)), x2_0_ = _mm512_set1_epi32(int(k.x2_0));
    for (int r = 0; r < 9; ++r) key0_[r] = _mm512_set1_epi32(int(k.key0[r])), key1_[r] = _mm512_set1_epi32(int(k.key1[r]));
  }
  // Word j of block (c0[lane], c1[lane]) in w[j].
  SCB_AVX512 void blocks(__m512i c0, __m512i c1, __m512i w[4]) const {
    __m512i hi0, lo0;
    mulhilo16(c0, _mm512_set1_epi32(int(0xD2511F53u)), hi0, lo0);
    __m512i v0 = _mm512_xor_si512(x0_0_, c1), v1 = v1_0_, v2 = _mm512_xor_si512(hi0, x2_0_), v3 = lo0;
    philox_rounds16(v0, v1, v2, v3, key0_, key1_, 9);
    w[0] = v0, w[1] = v1, w[2] = v2, w[3] = v3;
  }

 private:
  __m512i x0_0_, v1_0_, x2_0_;
  __m512i key0_[9], key1_[9];
};

// Every token of samples sample0 .. sample0 + count - 1 (T a multiple of 4: block f of the run
// of samples is positions 4 f .. 4 f + 3 of out), rounds of sixteen blocks across sample
// boundaries: at T = 100, 8 samples take 13 rounds where sample by sample they took 16.
template <typename Lookup, typename Out>
SCB_AVX512 void draw_sample_tokens_avx512_with(const Lookup& table, const ProblemView& pv, uint64_t seed,
                                               uint32_t step, uint32_t sample0, uint32_t count, Out* out) {
  const uint32_t blocks_per_sample = pv.T / 4, n = count * pv.T;
  const Philox16Samples philox(step, kStreamTokens, seed);
  const __m512i nn = _mm512_set1_epi32(int(pv.N));
  alignas(64) uint32_t c0[16], c1[16];
  auto lanes_from = [&](uint32_t f) {  // lane l: block f + l counted from sample0's block 0
    for (uint32_t l = 0; l < 16; ++l) c0[l] = (f + l) % blocks_per_sample, c1[l] = sample0 + (f + l) / blocks_per_sample;
  };
  lanes_from(0);
  __m512i block = _mm512_load_si512(c0), sample = _mm512_load_si512(c1);
  const __m512i per_sample = _mm512_set1_epi32(int(blocks_per_sample));
  for (uint32_t i = 0; i < n; i += 64) {
    __m512i w[4], x[4];
    philox.blocks(block, sample, w);
    if (blocks_per_sample >= 16) {  // a lane past its sample's last block wraps into the next, once
      block = _mm512_add_epi32(block, _mm512_set1_epi32(16));
      const __mmask16 wrap = _mm512_cmpge_epu32_mask(block, per_sample);
      block = _mm512_mask_sub_epi32(block, wrap, block, per_sample);
      sample = _mm512_mask_add_epi32(sample, wrap, sample, _mm512_set1_epi32(1));
    } else {  // shorter samples wrap lane by lane
      lanes_from(i / 4 + 16);
      block = _mm512_load_si512(c0), sample = _mm512_load_si512(c1);
    }
    alias16(table, nn, w, x);
    store_round16(x, keep_before(n - i), out + i);
  }
}

// hi:lo = a * m per 32-bit lane, m differing from lane to lane.
SCB_AVX512 inline void mulhilo16_lanes(__m512i a, __m512i m, __m512i& hi, __m512i& lo) {
  const __m512i even = _mm512_mul_epu32(a, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_shuffle_epi32(a, _MM_PERM_DDBB), _mm512_shuffle_epi32(m, _MM_PERM_DDBB));
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_shuffle_epi32(odd, _MM_PERM_CCAA));
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_shuffle_epi32(even, _MM_PERM_DDBB), odd);
}

// draw_sample_meta of model.hpp for the sixteen samples sample0 + lane: each sample's meta block
// (c0 = 0, c1 the sample), its query from mu's table and its position from the query's q table,
// whose offset and size differ from lane to lane (gathers). The same integer steps as
// alias_sample, so the same query, position and output word bit for bit.
template <typename Lookup>
SCB_AVX512 void sample_metas16(const Lookup& table, const ProblemView& pv, const Philox16Samples& philox,
                               uint32_t sample0, uint32_t* query, uint32_t* position, uint32_t* output_word) {
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i w[4], idx, frac, thr, al;
  philox.blocks(_mm512_setzero_si512(), _mm512_add_epi32(_mm512_set1_epi32(int(sample0)), lanes), w);
  mulhilo16(w[0], _mm512_set1_epi32(int(pv.N)), idx, frac);
  table.read(idx, thr, al);
  const __m512i k = _mm512_mask_blend_epi32(_mm512_cmplt_epu32_mask(frac, thr), al, idx);
  const __m512i begin = _mm512_i32gather_epi32(k, pv.q_ptr, 4);
  const __m512i end = _mm512_i32gather_epi32(_mm512_add_epi32(k, _mm512_set1_epi32(1)), pv.q_ptr, 4);
  mulhilo16_lanes(w[1], _mm512_sub_epi32(end, begin), idx, frac);
  const __m512i at = _mm512_add_epi32(begin, idx);
  thr = _mm512_i32gather_epi32(at, pv.q_threshold, 4);
  al = _mm512_i32gather_epi32(at, pv.q_alias, 4);
  const __m512i slot = _mm512_mask_blend_epi32(_mm512_cmplt_epu32_mask(frac, thr), al, idx);
  _mm512_storeu_si512(query, k);
  _mm512_storeu_si512(position, _mm512_i32gather_epi32(_mm512_add_epi32(begin, slot), pv.q_pos, 4));
  _mm512_storeu_si512(output_word, w[2]);
}

// Tables of up to 64 entries from registers, larger ones with gathers (AVX-512's gathers beat
// scalar loads wherever it has been measured). draw(table) runs with the one chosen.
template <typename Draw>
SCB_AVX512 void with_avx512_table(const ProblemView& pv, Draw&& draw) {
  const uint32_t N = pv.N;
  const uint32_t *thr = pv.mu_threshold, *al = pv.mu_alias;
  if (N <= 16) return draw(RegisterTable16<1>(thr, al, N));
  if (N <= 32) return draw(RegisterTable16<2>(thr, al, N));
  if (N <= 64) return draw(RegisterTable16<4>(thr, al, N));
  if (N <= 128) return draw(RegisterTable16<8>(thr, al, N));
  draw(GatherTable16{thr, al});
}

SCB_AVX512 void draw_tokens_avx512(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample,
                                   uint32_t t0, uint32_t n, uint32_t* out) {
  if (n < 8) return draw_tokens_scalar(pv, seed, step, sample, t0, n, out);
  with_avx512_table(pv, [&](const auto& table) { draw_tokens_avx512_with(table, pv, seed, step, sample, t0, n, out); });
}

SCB_AVX512 void draw_tokens_avx512(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample,
                                   uint32_t t0, uint32_t n, uint16_t* out) {
  if (n < 8) return draw_few_tokens(pv, seed, step, sample, t0, n, out);
  with_avx512_table(pv, [&](const auto& table) { draw_tokens_avx512_with(table, pv, seed, step, sample, t0, n, out); });
}

SCB_AVX512 void draw_sample_tokens_avx512(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0,
                                          uint32_t count, uint32_t* out) {
  with_avx512_table(pv, [&](const auto& table) {
    draw_sample_tokens_avx512_with(table, pv, seed, step, sample0, count, out);
  });
}

SCB_AVX512 void draw_sample_tokens_avx512(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0,
                                          uint32_t count, uint16_t* out) {
  with_avx512_table(pv, [&](const auto& table) {
    draw_sample_tokens_avx512_with(table, pv, seed, step, sample0, count, out);
  });
}

SCB_AVX512 void draw_sample_metas_avx512(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample0,
                                         uint32_t count, SampleMeta* out) {
  const Philox16Samples philox(step, kStreamSampleMeta, seed);
  with_avx512_table(pv, [&](const auto& table) {
    for (uint32_t c = 0; c < count; c += 16) {
      alignas(64) uint32_t k[16], s[16], word[16];
      sample_metas16(table, pv, philox, sample0 + c, k, s, word);
      for (uint32_t l = 0; l < 16 && c + l < count; ++l) out[c + l] = SampleMeta{k[l], s[l], word[l]};
    }
  });
}

// vpmovdw: the low halves of sixteen tokens (each below 65,536) per instruction.
SCB_AVX512 void narrow_tokens_avx512(const uint32_t* x, uint32_t n, uint16_t* out) {
  uint32_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_cvtepi32_epi16(_mm512_loadu_si512(x + i)));
  for (; i < n; ++i) out[i] = static_cast<uint16_t>(x[i]);
}

SCB_AVX512 void philox_words16(uint64_t seed, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                               uint32_t words[4][16]) {
  __m512i w[4];
  Philox16(c1, c2, c3, seed).blocks(c0, w);
  for (int j = 0; j < 4; ++j) _mm512_storeu_si512(words[j], w[j]);
}

#undef SCB_AVX512
#pragma GCC diagnostic pop

}  // namespace scb::token_draw_detail
#endif
