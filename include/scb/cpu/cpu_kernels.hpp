#pragma once
// The CPU backend's inner loops over A that benchmarks and tests call directly. Both keep a
// fixed order of operations that depends on nothing but the data, so any thread, pack or
// instruction set gives the same bits.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "scb/core/model.hpp"

namespace scb {

// Positions per phase-3 tile of the CPU backend (N x 64 doubles of gathered gradient stay in
// cache); column sums are kept per tile and reduced in tile order.
constexpr uint32_t kTileLength = 64;

// Sum of a tile's entries in double, in a fixed order: eight interleaved partial sums (entry i
// goes to sum i % 8), combined pairwise. One running sum would chain every addition on the
// previous one. Sets `bad` when an entry is not within [-limit, limit] (NaN included).
// tile_sum_scalar is the definition; tile_sum runs the same additions in two AVX2 registers
// (lanes 0-3 and 4-7 are the partial sums) where the CPU has AVX2 and SCB_SIMD is not off:
// compilers leave the scalar loop scalar, and it was a third of the pass over A.
inline double tile_sum_scalar(const float* a, uint32_t len, float limit, bool& bad) {
  double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  uint32_t i = 0;
  for (; i + 8 <= len; i += 8)
    for (uint32_t l = 0; l < 8; ++l) part[l] += static_cast<double>(a[i + l]);
  for (uint32_t l = 0; i + l < len; ++l) part[l] += static_cast<double>(a[i + l]);
  int out = 0;  // a loop of its own: fused into the sums it keeps both loops scalar
  for (uint32_t j = 0; j < len; ++j) out |= !(std::fabs(a[j]) <= limit);
  bad |= out != 0;
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}
double tile_sum(const float* a, uint32_t len, float limit, bool& bad);

// One row of phase 3's gathered gradient, any N: row[i] = the sum over the samples b =
// samples[0 .. count) (ascending), in that order from +0.0, of g_b[tok_b[i]] for i < len, where
// tok_b = tokens + b * T and g_b = g + b * g_stride. gather_column_small_vocab (small_vocab.hpp)
// is the same row in vector lanes for N <= 4.
inline void gather_column(const uint16_t* tokens, uint32_t T, const double* g, uint32_t g_stride,
                          const uint32_t* samples, uint32_t count, uint32_t len, double* row) {
  for (uint32_t i = 0; i < len; ++i) row[i] = 0.0;
  for (uint32_t j = 0; j < count; ++j) {
    const uint16_t* tok = tokens + size_t(samples[j]) * T;
    const double* gb = g + size_t(samples[j]) * g_stride;
    for (uint32_t i = 0; i < len; ++i) row[i] += gb[tok[i]];
  }
}

// The B samples listed by their query column query[b] < N, stable: column c's samples, in sample
// order, are by_column[column_begin[c] .. column_begin[c + 1]) (column_begin holds N + 1 entries).
void list_samples_by_column(const uint32_t* query, uint32_t B, uint32_t N, uint32_t* column_begin,
                            uint32_t* by_column);

// Whether every entry of a tile is +0.0f (bit pattern 0).
inline bool tile_is_zero(const float* a, uint32_t len) {
  uint32_t bits = 0;
  for (uint32_t j = 0; j < len; ++j) {
    uint32_t b;
    std::memcpy(&b, a + j, sizeof b);
    bits |= b;
  }
  return bits == 0;
}

// The update of a column no sample queried (zero gradient): a = update_attention(a * c, 0, rule)
// for all T entries, c being a pending renormalisation (1 if none), streamed from start to end,
// with the tile sums written to col_sum[tile * stride] when col_sum is not null. Returns whether
// an entry left [-limit, limit]. Compiled for AVX-512, AVX2 and the baseline, picked at load time.
//
// zero_tiles (one flag per tile of this column, or null) marks tiles whose entries are all +0.
// Such a tile is skipped, which is exact: with no gradient and a zero projection mean,
// z = +0 * c - lr * ((0 - 0) * inv_mu) = +0 and S_tau(+0) = +0, so the update would rewrite the
// same bits and sum to +0 (checked for finite c and mean 0 only). Once the l1 threshold has made
// the attention sparse, most of A is such tiles and the pass costs next to nothing. The flags
// of the tiles it updates are refreshed.
bool shrink_column(float* a, uint32_t T, float c, const AUpdateRule& rule, float limit, double* col_sum,
                   uint32_t stride, uint8_t* zero_tiles = nullptr);

// Per-sample residual and back-projected residual of docs/model.md section 3: r = V h - e_{x_o}, g = V^T r
// (V row-major N x N, work 2 N^2). Every r_i is summed over j in ascending order and every g_j
// over i in ascending order, whichever way the loops run: with VT (V transposed, by columns)
// both are axpy loops over contiguous memory that vectorise (AVX-512/AVX2 clones); without it
// r is formed row by row, four rows at a time; up to N = 4 both loops are unrolled in registers.
// All give the same bits.
void sample_residual(const float* V, const float* VT, uint32_t N, const double* h, uint32_t x_o, double* r,
                     double* g);
// sample_residual, and sum_j g_j counts_j (ascending j, from +0.0) as its return value: at N <= 4
// from the registers that hold g.
double sample_residual_mean(const float* V, const float* VT, uint32_t N, const double* h, uint32_t x_o,
                            const uint32_t* counts, double* r, double* g);

// Rows i0 .. i1 - 1 of dV = R H^T over B samples: dV[i N + j] = sum_b R[b][i] H[b][j], each entry
// from +0.0 in ascending b (the sample order every backend keeps), R and H rows `stride` apart
// with stride a multiple of 16 at least N (the per-sample rows of the CPU phases, padded: the
// padding is read, never stored). Two rows by sixteen columns stay in registers over the whole batch, where the
// row-by-row form streamed dV (4 KB a row at N = 500) through the cache once per sample.
void sum_outer_rows(const double* R, const double* H, uint32_t stride, uint32_t B, uint32_t N, uint32_t i0,
                    uint32_t i1, double* dV);

}  // namespace scb
