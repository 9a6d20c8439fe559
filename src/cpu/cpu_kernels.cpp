// See cpu_kernels.hpp. The clones differ only in vector width: the order of every operation is
// the same, and -ffp-contract=off (CMakeLists.txt) forbids fusing a * b + c, so every clone
// gives the same bits (tests/test_updates.cpp checks the clone this machine picks against a
// plain loop).
#include "scb/cpu/cpu_kernels.hpp"

#include <algorithm>
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

}  // namespace

__attribute__((target_clones("avx512f", "avx2", "default"))) void sample_residual(const float* V, const float* VT,
                                                                                  uint32_t N, const double* h,
                                                                                  uint32_t x_o, double* r, double* g) {
  switch (N) {
    case 1: return small_residual<1>(V, h, x_o, r, g);
    case 2: return small_residual<2>(V, h, x_o, r, g);
    case 3: return small_residual<3>(V, h, x_o, r, g);
    case 4: return small_residual<4>(V, h, x_o, r, g);
    default: break;
  }
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

}  // namespace scb
