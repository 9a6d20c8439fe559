// See cpu_kernels.hpp. The clones differ only in vector width: the order of every operation is
// the same, and -ffp-contract=off (CMakeLists.txt) forbids fusing a * b + c, so every clone
// gives the same bits (tests/test_updates.cpp checks the clone this machine picks against a
// plain loop).
#include "scb/cpu/cpu_kernels.hpp"

#include <algorithm>
#include <cmath>

namespace scb {

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

__attribute__((target_clones("avx512f", "avx2", "default"))) void sample_residual(const float* V, const float* VT,
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

}  // namespace scb
