// See cpu_kernels.hpp. The clones differ only in vector width: the order of every operation is
// the same, and -ffp-contract=off (CMakeLists.txt) forbids fusing a * b + c, so every clone
// gives the same bits (tests/test_updates.cpp checks the clone this machine picks against a
// plain loop).
#include "scb/cpu_kernels.hpp"

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

}  // namespace scb
