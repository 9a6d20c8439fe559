// See cpu_kernels.hpp. The clones differ only in vector width: the order of every operation is
// the same, and -ffp-contract=off (CMakeLists.txt) forbids fusing a * b + c, so every clone
// gives the same bits (tests/test_updates.cpp checks the clone this machine picks against a
// plain loop).
#include "scb/cpu/cpu_kernels.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "scb/cpu/token_draw.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SCB_TILE_SUM_X86 1
#endif

namespace scb {

#if defined(SCB_TILE_SUM_X86)
namespace {

__attribute__((target("avx2"))) double tile_sum_avx2(const float* a, uint32_t len, float limit, bool& bad) {
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();  // partial sums 0-3 and 4-7
  __m256 out = _mm256_setzero_ps();
  const __m256 lim = _mm256_set1_ps(limit);
  const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  uint32_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const __m256 v = _mm256_loadu_ps(a + i);
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    out = _mm256_or_ps(out, _mm256_cmp_ps(_mm256_and_ps(v, magnitude), lim, _CMP_NLE_UQ));  // !(|v| <= limit)
  }
  alignas(32) double part[8];
  _mm256_store_pd(part, lo);
  _mm256_store_pd(part + 4, hi);
  bool tail_out = false;
  for (uint32_t l = 0; i + l < len; ++l) {
    part[l] += static_cast<double>(a[i + l]);
    tail_out |= !(std::fabs(a[i + l]) <= limit);
  }
  bad |= tail_out || _mm256_movemask_ps(out) != 0;
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

}  // namespace

double tile_sum(const float* a, uint32_t len, float limit, bool& bad) {
  return avx2_loops() ? tile_sum_avx2(a, len, limit, bad) : tile_sum_scalar(a, len, limit, bad);
}

#else

double tile_sum(const float* a, uint32_t len, float limit, bool& bad) { return tile_sum_scalar(a, len, limit, bad); }

#endif

// A counting sort; column_begin[c] serves as column c's next slot, ending at column c + 1's start,
// so it is shifted back afterwards.
void list_samples_by_column(const uint32_t* query, uint32_t B, uint32_t N, uint32_t* column_begin,
                            uint32_t* by_column) {
  std::fill_n(column_begin, N + 1, 0u);
  for (uint32_t b = 0; b < B; ++b) ++column_begin[query[b] + 1];
  for (uint32_t c = 0; c < N; ++c) column_begin[c + 1] += column_begin[c];
  for (uint32_t b = 0; b < B; ++b) by_column[column_begin[query[b]]++] = b;
  for (uint32_t c = N; c > 0; --c) column_begin[c] = column_begin[c - 1];
  column_begin[0] = 0;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) bool shrink_column(float* a, uint32_t T, float c,
                                                                                 const AUpdateRule& rule, float limit,
                                                                                 double* col_sum, uint32_t stride,
                                                                                 uint8_t* zero_tiles) {
  const bool may_skip = zero_tiles && std::isfinite(c) && rule.mean == 0.0f;
  bool bad = false;
  for (uint32_t t0 = 0, tile = 0; t0 < T; t0 += kTileLength, ++tile) {
    const uint32_t len = std::min(T - t0, kTileLength);
    if (may_skip && zero_tiles[tile]) {
      if (col_sum) col_sum[size_t(tile) * stride] = 0.0;
      continue;
    }
    for (uint32_t i = t0; i < t0 + len; ++i) a[i] = update_attention(a[i] * c, 0.0f, rule);
    const double colsum = tile_sum(a + t0, len, limit, bad);
    if (col_sum) col_sum[size_t(tile) * stride] = colsum;
    if (zero_tiles) zero_tiles[tile] = tile_is_zero(a + t0, len);
  }
  return bad;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void sum_outer_rows(const double* R, const double* H,
                                                                                  uint32_t stride, uint32_t B,
                                                                                  uint32_t N, uint32_t i0, uint32_t i1,
                                                                                  double* dV) {
  constexpr uint32_t kCols = 16;  // a row's padding makes every chunk of sixteen readable
  assert(stride % kCols == 0 && stride >= N);
  for (uint32_t i = i0; i < i1; i += 2) {
    const bool pair = i + 1 < i1;
    for (uint32_t j0 = 0; j0 < N; j0 += kCols) {
      double acc0[kCols] = {}, acc1[kCols] = {};
      for (uint32_t b = 0; b < B; ++b) {
        const double* h = H + size_t(b) * stride + j0;
        const double r0 = R[size_t(b) * stride + i], r1 = pair ? R[size_t(b) * stride + i + 1] : 0.0;
        for (uint32_t j = 0; j < kCols; ++j) acc0[j] += r0 * h[j];
        for (uint32_t j = 0; j < kCols; ++j) acc1[j] += r1 * h[j];
      }
      const uint32_t n = std::min(kCols, N - j0);
      std::copy(acc0, acc0 + n, dV + size_t(i) * N + j0);
      if (pair) std::copy(acc1, acc1 + n, dV + size_t(i + 1) * N + j0);
    }
  }
}

namespace {

// sample_residual at a vocabulary small enough to unroll (the reference problem: N = 3): r, g and
// h stay in registers instead of making every addition wait on a store and a reload through
// memory. The same sums in the same order (from +0, ascending j for r_i, ascending i for g_j).
template <uint32_t N>
void small_residual(const float* V, const double* h, uint32_t x_o, double* r, double* g) {
  double rr[N], gg[N];
  for (uint32_t i = 0; i < N; ++i) {
    double s = 0;
    for (uint32_t j = 0; j < N; ++j) s += static_cast<double>(V[i * N + j]) * h[j];
    // s - (+0.0) == s for every s, NaN and -0.0 included; the one-hot as a converted bool, since
    // a branch on the random x_o mispredicted in about half the samples.
    rr[i] = s - static_cast<double>(i == x_o);
  }
  for (uint32_t j = 0; j < N; ++j) gg[j] = 0;
  for (uint32_t i = 0; i < N; ++i)
    for (uint32_t j = 0; j < N; ++j) gg[j] += static_cast<double>(V[i * N + j]) * rr[i];
  for (uint32_t i = 0; i < N; ++i) r[i] = rr[i], g[i] = gg[i];
}

// sum_j g_j counts_j in ascending j from +0.0: the sum a sample's mean A-gradient is made of.
template <typename G>
double count_weighted_sum(const G& g, const uint32_t* counts, uint32_t N) {
  double m = 0;
  for (uint32_t j = 0; j < N; ++j) m += g[j] * counts[j];
  return m;
}

#if defined(SCB_TILE_SUM_X86)
// small_residual in four double lanes: lane i of r sums V_ij h_j over j, lane j of g sums
// V_ij r_i over i, each from +0.0 in the scalar loop's order (the columns of V come from a
// 4 x 4 transpose of its rows; lanes at or past N hold zeros and are not stored). A quarter of
// the scalar form's instructions, which converted each entry of V twice.
template <uint32_t N>
__attribute__((target("avx2"))) double small_residual_avx2(const float* V, const double* h, uint32_t x_o, double* r,
                                                            double* g, const uint32_t* counts) {
  const __m256i lanes = _mm256_setr_epi64x(0, 1, 2, 3);
  const __m128i in_f = _mm_cmpgt_epi32(_mm_set1_epi32(int(N)), _mm_setr_epi32(0, 1, 2, 3));
  const __m256i in_d = _mm256_cmpgt_epi64(_mm256_set1_epi64x(N), lanes);
  __m256d row[4];
  for (uint32_t i = 0; i < 4; ++i)
    row[i] = i < N ? _mm256_cvtps_pd(_mm_maskload_ps(V + i * N, in_f)) : _mm256_setzero_pd();
  const __m256d t0 = _mm256_unpacklo_pd(row[0], row[1]), t1 = _mm256_unpackhi_pd(row[0], row[1]);
  const __m256d t2 = _mm256_unpacklo_pd(row[2], row[3]), t3 = _mm256_unpackhi_pd(row[2], row[3]);
  const __m256d col[4] = {_mm256_permute2f128_pd(t0, t2, 0x20), _mm256_permute2f128_pd(t1, t3, 0x20),
                          _mm256_permute2f128_pd(t0, t2, 0x31), _mm256_permute2f128_pd(t1, t3, 0x31)};
  __m256d rv = _mm256_setzero_pd();
  for (uint32_t j = 0; j < N; ++j) rv = _mm256_add_pd(rv, _mm256_mul_pd(col[j], _mm256_broadcast_sd(h + j)));
  const __m256d one_hot = _mm256_and_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(lanes, _mm256_set1_epi64x(x_o))),
                                        _mm256_set1_pd(1.0));
  rv = _mm256_sub_pd(rv, one_hot);  // s - (+0.0) == s in the other lanes
  __m256d gv = _mm256_setzero_pd();
  const __m256d ri[4] = {_mm256_permute4x64_pd(rv, 0x00), _mm256_permute4x64_pd(rv, 0x55),
                         _mm256_permute4x64_pd(rv, 0xAA), _mm256_permute4x64_pd(rv, 0xFF)};
  for (uint32_t i = 0; i < N; ++i) gv = _mm256_add_pd(gv, _mm256_mul_pd(row[i], ri[i]));
  _mm256_maskstore_pd(r, in_d, rv);
  _mm256_maskstore_pd(g, in_d, gv);
  // sum_j g_j counts_j from the register (a masked store does not forward to the loads that
  // would read g back), in ascending j from +0.0 as the scalar loop sums it.
  if (!counts) return 0.0;
  alignas(32) double gl[4];
  _mm256_store_pd(gl, gv);
  return count_weighted_sum(gl, counts, N);
}
#endif

// The residual at N <= 4 and, with counts, sum_j g_j counts_j (else 0).
template <uint32_t N>
double small_residual_widest(const float* V, const double* h, uint32_t x_o, double* r, double* g,
                             const uint32_t* counts) {
#if defined(SCB_TILE_SUM_X86)
  if (avx2_loops()) return small_residual_avx2<N>(V, h, x_o, r, g, counts);
#endif
  small_residual<N>(V, h, x_o, r, g);
  return counts ? count_weighted_sum(g, counts, N) : 0.0;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void large_residual(const float* V, const float* VT,
                                                                                 uint32_t N, const double* h,
                                                                                 uint32_t x_o, double* r, double* g);

}  // namespace

double sample_residual_mean(const float* V, const float* VT, uint32_t N, const double* h, uint32_t x_o,
                            const uint32_t* counts, double* r, double* g) {
  switch (N) {
    case 1: return small_residual_widest<1>(V, h, x_o, r, g, counts);
    case 2: return small_residual_widest<2>(V, h, x_o, r, g, counts);
    case 3: return small_residual_widest<3>(V, h, x_o, r, g, counts);
    case 4: return small_residual_widest<4>(V, h, x_o, r, g, counts);
    default: break;
  }
  large_residual(V, VT, N, h, x_o, r, g);
  return count_weighted_sum(g, counts, N);
}

void sample_residual(const float* V, const float* VT, uint32_t N, const double* h, uint32_t x_o, double* r,
                     double* g) {
  if (N > 4) return large_residual(V, VT, N, h, x_o, r, g);
  sample_residual_mean(V, VT, N, h, x_o, nullptr, r, g);
}

namespace {

__attribute__((target_clones("avx512f", "avx2", "default"))) void large_residual(const float* V, const float* VT,
                                                                                 uint32_t N, const double* h,
                                                                                 uint32_t x_o, double* r, double* g) {
  if (VT) {
    for (uint32_t i = 0; i < N; ++i) r[i] = 0;
    for (uint32_t j = 0; j < N; ++j) {
      const double hj = h[j];
      const float* col = VT + static_cast<uint64_t>(j) * N;
      for (uint32_t i = 0; i < N; ++i) r[i] += static_cast<double>(col[i]) * hj;
    }
    r[x_o] -= 1.0;
  } else {
    uint32_t row = 0;
    for (; row + 4 <= N; row += 4) {
      const float* v = V + static_cast<uint64_t>(row) * N;
      double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (uint32_t j = 0; j < N; ++j) {
        const double hj = h[j];
        s0 += static_cast<double>(v[j]) * hj;
        s1 += static_cast<double>(v[N + j]) * hj;
        s2 += static_cast<double>(v[2 * N + j]) * hj;
        s3 += static_cast<double>(v[3 * N + j]) * hj;
      }
      r[row] = s0, r[row + 1] = s1, r[row + 2] = s2, r[row + 3] = s3;
    }
    for (; row < N; ++row) {
      double s = 0;
      for (uint32_t j = 0; j < N; ++j) s += static_cast<double>(V[static_cast<uint64_t>(row) * N + j]) * h[j];
      r[row] = s;
    }
    r[x_o] -= 1.0;
  }
  for (uint32_t j = 0; j < N; ++j) g[j] = 0;
  for (uint32_t i = 0; i < N; ++i) {
    const double ri = r[i];  // a local: g and r are both double*, so r[i] could alias g[j]
    const float* v = V + static_cast<uint64_t>(i) * N;
    for (uint32_t j = 0; j < N; ++j) g[j] += static_cast<double>(v[j]) * ri;
  }
}

}  // namespace

}  // namespace scb
