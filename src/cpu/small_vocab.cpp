// The AVX2 (and AVX-512) loops of small_vocab.hpp. Four positions per iteration, one double lane each: the
// scatter compares the four tokens with every j < N (the accumulators stay in registers: N is a
// template parameter), the gather reads g from one register with a permute. Scalar loops finish
// lengths that are not multiples of four, with the same lane (i % 4) the vector loop would use.
#include "scb/cpu/small_vocab.hpp"

#include <algorithm>
#include <cstring>

#include "scb/cpu/cpu_kernels.hpp"
#include "scb/cpu/token_draw.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SCB_SMALL_VOCAB_X86 1
#endif

namespace scb {

namespace {

// The scalar loops (what the vector lanes reproduce); they also finish the vector loops.
void scatter_scalar(const uint16_t* x, const float* a, float scale, uint32_t i, uint32_t n, double* part,
                    uint64_t* count) {
  for (; i < n; ++i) {
    part[4 * x[i] + (i & 3u)] += static_cast<double>(a[i] * scale);
    ++count[4 * x[i] + (i & 3u)];
  }
}

void gather_scalar(const uint16_t* tok, const double* g, uint32_t i, uint32_t len, double* row) {
  for (; i < len; ++i) row[i] += g[tok[i]];
}

}  // namespace

#if defined(SCB_SMALL_VOCAB_X86)
namespace {

// S streams (samples) in one loop, four positions per iteration, one double lane each: each
// stream's token compares with every j < N, its accumulators and counts in registers. Two streams
// (N <= 3: theirs fit AVX2's sixteen registers, the compares' constants read from memory)
// interleave, where one stream's additions wait on each other's latency. The counts of token
// N - 1 are what the others leave of each lane's positions (integers: exactly). Wide: the streams
// read their values as doubles already (ScatterStream::wide), which saves the multiply and the
// conversion per four positions of every sample.
template <uint32_t N, uint32_t S, bool Wide>
__attribute__((target("avx2"))) void scatter_streams_avx2(const ScatterStream* st, uint32_t n, bool fresh) {
  __m256d acc[S][N];
  __m256i cnt[S][N];  // this call's counts
  __m128 s[S];
  #pragma GCC unroll 2
  for (uint32_t q = 0; q < S; ++q) {
    s[q] = _mm_set1_ps(st[q].scale);
    for (uint32_t j = 0; j < N; ++j) {
      acc[q][j] = fresh ? _mm256_setzero_pd() : _mm256_loadu_pd(st[q].part + 4 * j);
      cnt[q][j] = _mm256_setzero_si256();
    }
  }
  uint32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    #pragma GCC unroll 2
    for (uint32_t q = 0; q < S; ++q) {
      __m256d v;
      if constexpr (Wide)
        v = _mm256_loadu_pd(st[q].wide + i);
      else
        v = _mm256_cvtps_pd(_mm_mul_ps(_mm_loadu_ps(st[q].a + i), s[q]));
      const __m256i xt = _mm256_cvtepu16_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(st[q].x + i)));
      for (uint32_t j = 0; j < N; ++j) {
        const __m256i hit = _mm256_cmpeq_epi64(xt, _mm256_set1_epi64x(j));
        acc[q][j] = _mm256_add_pd(acc[q][j], _mm256_and_pd(_mm256_castsi256_pd(hit), v));
        if (j + 1 < N) cnt[q][j] = _mm256_sub_epi64(cnt[q][j], hit);
      }
    }
  }
  #pragma GCC unroll 2
  for (uint32_t q = 0; q < S; ++q) {
    cnt[q][N - 1] = _mm256_set1_epi64x(i / 4);  // positions per lane
    for (uint32_t j = 0; j + 1 < N; ++j) cnt[q][N - 1] = _mm256_sub_epi64(cnt[q][N - 1], cnt[q][j]);
    for (uint32_t j = 0; j < N; ++j) {
      __m256i* c = reinterpret_cast<__m256i*>(st[q].count + 4 * j);
      _mm256_storeu_pd(st[q].part + 4 * j, acc[q][j]);
      _mm256_storeu_si256(c, fresh ? cnt[q][j] : _mm256_add_epi64(_mm256_loadu_si256(c), cnt[q][j]));
    }
    scatter_scalar(st[q].x, st[q].a, st[q].scale, i, n, st[q].part, st[q].count);
  }
}

// One sample's scatter with AVX2.
template <uint32_t N>
void scatter_n(const uint16_t* x, const float* a, float scale, uint32_t n, double* part, uint64_t* count, bool fresh) {
  const ScatterStream one{x, a, scale, part, count};
  scatter_streams_avx2<N, 1, false>(&one, n, fresh);
}

// g[0..3] as a table of eight 32-bit halves, the low halves first (lanes 0..3), then the high
// ones (4..7): token x's double is the lane pair (x, x + 4), which lookup4 builds from the token
// with one shuffle and an or (x < 4), where the interleaved layout took two shifts and an add more.
__attribute__((target("avx2"))) inline __m256 split_table(const double* g) {
  return _mm256_permutevar8x32_ps(_mm256_castpd_ps(_mm256_loadu_pd(g)), _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
}

// g[x] of four tokens from a split_table.
__attribute__((target("avx2"))) inline __m256d lookup4(__m256 table, const uint16_t* tok) {
  const __m256i x = _mm256_cvtepu16_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(tok)));
  const __m256i idx = _mm256_or_si256(_mm256_shuffle_epi32(x, 0xA0), _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
  return _mm256_castps_pd(_mm256_permutevar8x32_ps(table, idx));
}

__attribute__((target("avx2"))) void gather_avx2(const uint16_t* tok, const double* g, uint32_t len, double* row) {
  const __m256 table = split_table(g);
  uint32_t i = 0;
  for (; i + 4 <= len; i += 4) _mm256_storeu_pd(row + i, _mm256_add_pd(_mm256_loadu_pd(row + i), lookup4(table, tok + i)));
  gather_scalar(tok, g, i, len, row);
}

// gather_column_small_vocab with AVX2: a chunk of 32 positions in eight registers (AVX2 has
// sixteen: a row of 64 does not fit with the table and the indices), each position's additions in
// sample order from +0.0 and one store per chunk; positions past the last whole four are summed
// one by one in the same order. At T = 100 the in-memory form (a load and a store of the row per
// sample and four positions) took a tenth of a reference step.
__attribute__((target("avx2"))) void gather_column_avx2(const uint16_t* tokens, uint32_t T, const double* g,
                                                        uint32_t g_stride, const uint32_t* samples, uint32_t count,
                                                        uint32_t len, double* row) {
  constexpr uint32_t kVectors = 8;
  const uint32_t whole = len / 4 * 4;
  for (uint32_t p0 = 0; p0 < whole; p0 += 4 * kVectors) {
    const uint32_t vectors = std::min(kVectors, (whole - p0) / 4);
    __m256d acc[kVectors];
    #pragma GCC unroll 8
    for (uint32_t c = 0; c < kVectors; ++c) acc[c] = _mm256_setzero_pd();
    for (uint32_t i = 0; i < count; ++i) {
      const uint16_t* tok = tokens + size_t(samples[i]) * T + p0;
      if (p0 == 0) __builtin_prefetch(tok + 8 * 64);  // the same sample's row of a later tile
      const __m256 table = split_table(g + size_t(samples[i]) * g_stride);
      #pragma GCC unroll 8
      for (uint32_t c = 0; c < kVectors; ++c) {
        if (c >= vectors) break;
        acc[c] = _mm256_add_pd(acc[c], lookup4(table, tok + 4 * c));
      }
    }
    #pragma GCC unroll 8
    for (uint32_t c = 0; c < kVectors; ++c)
      if (c < vectors) _mm256_storeu_pd(row + p0 + 4 * c, acc[c]);
  }
  gather_column(tokens + whole, T, g, g_stride, samples, count, len - whole, row + whole);
}

// The same loops with AVX-512: the compare yields a mask that the
// additions take directly, so a position whose token is not j leaves h_j's partial sum as it is
// instead of adding +0.0 to it (the same bits, see small_vocab.hpp), and the gather reads eight
// positions per permute. (GCC 12's AVX-512 headers trip -Wmaybe-uninitialized inside themselves, and
// -Wuninitialized where a cast is folded in.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// One sample, two tokens per register: accumulator p holds h_(2p)'s four partial sums in its low
// half and h_(2p+1)'s in its high half (part's layout, so the loads and stores are contiguous),
// and the four positions' a and tokens are loaded into both halves. The four 16-bit tokens are
// compared in both halves of an eight-word register, so the mask of p covers h_(2p)'s and
// h_(2p+1)'s lanes. Each partial sum is a chain of dependent additions, one per iteration, so one
// sample alone is bound by the addition's latency: pairs take scatter_pair_avx512 below.
template <uint32_t N>
__attribute__((target("avx512f,avx512vl,avx512bw"))) void scatter_one_avx512(const ScatterStream& st, uint32_t n,
                                                                            bool fresh) {
  constexpr uint32_t P = (N + 1) / 2;
  __m512d acc[P];
  __m512i cnt[P];
  __m128i lane_token[P];
  auto half_or_whole = [](uint32_t p) { return 2 * p + 1 < N ? __mmask8(0xFF) : __mmask8(0x0F); };  // odd N: half
  #pragma GCC unroll 4
  for (uint32_t p = 0; p < P; ++p) {
    lane_token[p] = _mm_setr_epi16(short(2 * p), short(2 * p), short(2 * p), short(2 * p), short(2 * p + 1),
                                   short(2 * p + 1), short(2 * p + 1), short(2 * p + 1));
    acc[p] = fresh ? _mm512_setzero_pd() : _mm512_maskz_loadu_pd(half_or_whole(p), st.part + 8 * p);
    cnt[p] = fresh ? _mm512_setzero_si512() : _mm512_maskz_loadu_epi64(half_or_whole(p), st.count + 8 * p);
  }
  const __m256 scale = _mm256_set1_ps(st.scale);
  const __m512i minus_one = _mm512_set1_epi64(-1);
  uint32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m512d v =
        _mm512_cvtps_pd(_mm256_mul_ps(_mm256_broadcast_ps(reinterpret_cast<const __m128*>(st.a + i)), scale));
    uint64_t four;  // tokens i .. i + 3
    std::memcpy(&four, st.x + i, sizeof four);
    const __m128i xt = _mm_set1_epi64x(static_cast<long long>(four));
    #pragma GCC unroll 4
    for (uint32_t p = 0; p < P; ++p) {
      const __mmask8 hit = _mm_cmpeq_epi16_mask(xt, lane_token[p]);
      acc[p] = _mm512_mask_add_pd(acc[p], hit, acc[p], v);
      cnt[p] = _mm512_mask_sub_epi64(cnt[p], hit, cnt[p], minus_one);
    }
  }
  #pragma GCC unroll 4
  for (uint32_t p = 0; p < P; ++p) {
    _mm512_mask_storeu_pd(st.part + 8 * p, half_or_whole(p), acc[p]);
    _mm512_mask_storeu_epi64(st.count + 8 * p, half_or_whole(p), cnt[p]);
  }
  scatter_scalar(st.x, st.a, st.scale, i, n, st.part, st.count);
}

// Four 64-bit entries at lo and four at hi in one register.
__attribute__((target("avx512f"))) inline __m512i both_halves(const void* lo, const void* hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i*>(lo))),
                            _mm256_loadu_si256(static_cast<const __m256i*>(hi)), 1);
}

// The pair form: accumulator j holds h_j's four partial sums of stream 0 in its low half and
// stream 1's in its high half (and likewise the counts), so one conversion, N compares and N
// masked additions serve both streams' four positions, where one stream per register spends
// (N + 1) / 2 compares and additions and a conversion on each. Every lane still adds its
// stream's values in position order: the same bits.
template <uint32_t N>
__attribute__((target("avx512f,avx512vl,avx512bw"))) void scatter_pair_avx512(const ScatterStream* st, uint32_t n,
                                                                             bool fresh) {
  // Token N - 1 is not counted in the loop: integers, so its counts are what the others leave of
  // each lane's positions (every lane takes one position per iteration), exactly.
  __m512d acc[N];
  __m512i cnt[N];
  __m128i token[N];
  __m512i all = _mm512_setzero_si512();  // per lane: the counts of every token before this call
  #pragma GCC unroll 4
  for (uint32_t j = 0; j < N; ++j) {
    token[j] = _mm_set1_epi16(short(j));
    acc[j] = fresh ? _mm512_setzero_pd() : _mm512_castsi512_pd(both_halves(st[0].part + 4 * j, st[1].part + 4 * j));
    cnt[j] = fresh ? _mm512_setzero_si512() : both_halves(st[0].count + 4 * j, st[1].count + 4 * j);
    all = _mm512_add_epi64(all, cnt[j]);
  }
  const __m256 scale = _mm256_setr_m128(_mm_set1_ps(st[0].scale), _mm_set1_ps(st[1].scale));
  const __m512i minus_one = _mm512_set1_epi64(-1);
  uint32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256 a = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(st[0].a + i)), _mm_loadu_ps(st[1].a + i), 1);
    const __m512d v = _mm512_cvtps_pd(_mm256_mul_ps(a, scale));
    uint64_t x0, x1;  // tokens i .. i + 3 of each stream
    std::memcpy(&x0, st[0].x + i, sizeof x0);
    std::memcpy(&x1, st[1].x + i, sizeof x1);
    const __m128i xt = _mm_set_epi64x(static_cast<long long>(x1), static_cast<long long>(x0));
    #pragma GCC unroll 4
    for (uint32_t j = 0; j < N; ++j) {
      const __mmask8 hit = _mm_cmpeq_epi16_mask(xt, token[j]);
      acc[j] = _mm512_mask_add_pd(acc[j], hit, acc[j], v);
      if (j + 1 < N) cnt[j] = _mm512_mask_sub_epi64(cnt[j], hit, cnt[j], minus_one);
    }
  }
  all = _mm512_add_epi64(all, _mm512_set1_epi64(i / 4));
  #pragma GCC unroll 4
  for (uint32_t j = 0; j + 1 < N; ++j) all = _mm512_sub_epi64(all, cnt[j]);
  cnt[N - 1] = all;
  #pragma GCC unroll 4
  for (uint32_t j = 0; j < N; ++j) {
    _mm256_storeu_pd(st[0].part + 4 * j, _mm512_castpd512_pd256(acc[j]));
    _mm256_storeu_pd(st[1].part + 4 * j, _mm512_extractf64x4_pd(acc[j], 1));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(st[0].count + 4 * j), _mm512_castsi512_si256(cnt[j]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(st[1].count + 4 * j), _mm512_extracti64x4_epi64(cnt[j], 1));
  }
  for (int q = 0; q < 2; ++q) scatter_scalar(st[q].x, st[q].a, st[q].scale, i, n, st[q].part, st[q].count);
}

__attribute__((target("avx512f"))) void gather_avx512(const uint16_t* tok, const double* g, uint32_t len,
                                                      double* row) {
  const __m512d table = _mm512_castpd256_pd512(_mm256_loadu_pd(g));  // g[0..3]; tokens are below 4
  uint32_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const __m512i idx = _mm512_cvtepu16_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tok + i)));
    _mm512_storeu_pd(row + i, _mm512_add_pd(_mm512_loadu_pd(row + i), _mm512_permutexvar_pd(idx, table)));
  }
  gather_avx2(tok + i, g, len - i, row + i);
}

// gather_column_small_vocab with AVX-512: eight registers of eight positions, each position's
// additions in sample order; the tokens of a partial row are read masked (the lanes past len add
// g[0] and are not stored). The token rows are T apart, one stream per sample: each is asked for
// eight rows of 64 positions ahead, as the caller's loop reaches them.
__attribute__((target("avx512f,avx512vl,avx512bw"))) void gather_column_avx512(
    const uint16_t* tokens, uint32_t T, const double* g, uint32_t g_stride, const uint32_t* samples, uint32_t count,
    uint32_t len, double* row) {
  constexpr uint32_t kVectors = 8;
  const uint32_t vectors = (len + 7) / 8;
  __mmask8 in[kVectors];
  __m512d acc[kVectors];
  #pragma GCC unroll 8
  for (uint32_t c = 0; c < kVectors; ++c) {
    const uint32_t left = len > 8 * c ? std::min(8u, len - 8 * c) : 0u;
    in[c] = __mmask8((1u << left) - 1u);
    acc[c] = _mm512_setzero_pd();
  }
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t b = samples[i];
    const uint16_t* tok = tokens + size_t(b) * T;
    const char* ahead = reinterpret_cast<const char*>(tok + 8 * 64);
    __builtin_prefetch(ahead), __builtin_prefetch(ahead + 64);
    const __m512d table = _mm512_castpd256_pd512(_mm256_loadu_pd(g + size_t(b) * g_stride));
    #pragma GCC unroll 8
    for (uint32_t c = 0; c < kVectors; ++c) {
      if (c >= vectors) break;
      const __m512i idx = _mm512_cvtepu16_epi64(_mm_maskz_loadu_epi16(in[c], tok + 8 * c));
      acc[c] = _mm512_add_pd(acc[c], _mm512_permutexvar_pd(idx, table));
    }
  }
  #pragma GCC unroll 8
  for (uint32_t c = 0; c < kVectors; ++c) _mm512_mask_storeu_pd(row + 8 * c, in[c], acc[c]);
}
#pragma GCC diagnostic pop

template <uint32_t N>
void scatter_n_widest(const uint16_t* x, const float* a, float scale, uint32_t n, double* part, uint64_t* count,
                      bool fresh) {
  if (avx512_loops()) {
    return scatter_one_avx512<N>(ScatterStream{x, a, scale, part, count}, n, fresh);
  }
  scatter_n<N>(x, a, scale, n, part, count, fresh);
}

// Two streams side by side where AVX-512 runs, and on AVX2 up to N = 3 (at N = 4 AVX2's sixteen
// registers do not hold two streams' accumulators), else one after the other.
template <uint32_t N>
void scatter_pair_widest(const ScatterStream pair[2], uint32_t n, bool fresh) {
  if (avx512_loops()) return scatter_pair_avx512<N>(pair, n, fresh);
  if constexpr (N <= 3) {
    if (pair[0].wide && pair[1].wide) return scatter_streams_avx2<N, 2, true>(pair, n, fresh);
    return scatter_streams_avx2<N, 2, false>(pair, n, fresh);
  }
  for (int q = 0; q < 2; ++q) scatter_n<N>(pair[q].x, pair[q].a, pair[q].scale, n, pair[q].part, pair[q].count, fresh);
}

}  // namespace

bool small_vocab_kernels(uint32_t N) { return avx2_loops() && N >= 1 && N <= kSmallVocabMaxN; }
bool scatter_reads_wide(uint32_t N) { return small_vocab_kernels(N) && !avx512_loops() && N <= 3; }

void scatter_small_vocab(const uint16_t* x, const float* a, float scale, uint32_t n, uint32_t N, double* part,
                         uint64_t* count, bool fresh) {
  if (!small_vocab_kernels(N)) {
    if (fresh) std::fill_n(part, 4 * N, 0.0), std::fill_n(count, 4 * N, uint64_t{0});
    return scatter_scalar(x, a, scale, 0, n, part, count);
  }
  switch (N) {
    case 1: return scatter_n_widest<1>(x, a, scale, n, part, count, fresh);
    case 2: return scatter_n_widest<2>(x, a, scale, n, part, count, fresh);
    case 3: return scatter_n_widest<3>(x, a, scale, n, part, count, fresh);
    default: return scatter_n_widest<4>(x, a, scale, n, part, count, fresh);
  }
}

void scatter_small_vocab_pair(const ScatterStream pair[2], uint32_t n, uint32_t N, bool fresh) {
  if (!small_vocab_kernels(N)) {
    for (int q = 0; q < 2; ++q) scatter_small_vocab(pair[q].x, pair[q].a, pair[q].scale, n, N, pair[q].part, pair[q].count, fresh);
    return;
  }
  switch (N) {
    case 1: return scatter_pair_widest<1>(pair, n, fresh);
    case 2: return scatter_pair_widest<2>(pair, n, fresh);
    case 3: return scatter_pair_widest<3>(pair, n, fresh);
    default: return scatter_pair_widest<4>(pair, n, fresh);
  }
}

void gather_small_vocab(const uint16_t* tok, const double* g, uint32_t len, double* row) {
  if (avx512_loops()) return gather_avx512(tok, g, len, row);
  gather_avx2(tok, g, len, row);
}

void gather_column_small_vocab(const uint16_t* tokens, uint32_t T, const double* g, uint32_t g_stride,
                               const uint32_t* samples, uint32_t count, uint32_t len, double* row) {
  if (avx512_loops() && len <= 64) return gather_column_avx512(tokens, T, g, g_stride, samples, count, len, row);
  if (avx2_loops()) return gather_column_avx2(tokens, T, g, g_stride, samples, count, len, row);
  gather_column(tokens, T, g, g_stride, samples, count, len, row);
}

#else

bool small_vocab_kernels(uint32_t) { return false; }
bool scatter_reads_wide(uint32_t) { return false; }
void scatter_small_vocab(const uint16_t* x, const float* a, float scale, uint32_t n, uint32_t N, double* part,
                         uint64_t* count, bool fresh) {
  if (fresh) std::fill_n(part, 4 * N, 0.0), std::fill_n(count, 4 * N, uint64_t{0});
  scatter_scalar(x, a, scale, 0, n, part, count);
}
void scatter_small_vocab_pair(const ScatterStream pair[2], uint32_t n, uint32_t N, bool fresh) {
  for (int q = 0; q < 2; ++q) scatter_small_vocab(pair[q].x, pair[q].a, pair[q].scale, n, N, pair[q].part, pair[q].count, fresh);
}
void gather_small_vocab(const uint16_t* tok, const double* g, uint32_t len, double* row) {
  gather_scalar(tok, g, 0, len, row);
}
void gather_column_small_vocab(const uint16_t* tokens, uint32_t T, const double* g, uint32_t g_stride,
                               const uint32_t* samples, uint32_t count, uint32_t len, double* row) {
  gather_column(tokens, T, g, g_stride, samples, count, len, row);
}

#endif

}  // namespace scb
