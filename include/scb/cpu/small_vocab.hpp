#pragma once
// The two per-token loops of a sampled step, vectorised across positions for vocabularies of up
// to kSmallVocabMaxN tokens (the reference problem has N = 3), where the scalar loops spend
// several instructions per token on a handful of distinct addresses:
//   scatter: h_j = sum_t [x_t = j] a_t, kept as four partial sums (position mod 4) per token;
//   gather:  row_t += g[x_t] over one sample's block of positions.
// Each lane does exactly the additions the scalar loop does, in the same order: a position whose
// token is not j adds +0.0 to h_j's partial sum, which cannot change it (a partial sum that
// starts at +0.0 is never -0.0 under round-to-nearest). So the results are the same bits, and
// tests/test_small_vocab.cpp checks them against the scalar loops.
#include <cstdint>

namespace scb {

constexpr uint32_t kSmallVocabMaxN = 4;

// Whether the vectorised loops run here (AVX2 and not SCB_SIMD=off, N <= kSmallVocabMaxN);
// otherwise the callers use their scalar loops.
bool small_vocab_kernels(uint32_t N);
// Whether the pair scatter reads ScatterStream::wide at this N (the AVX2 loop, N <= 3): only
// then is widening the columns worth its pass.
bool scatter_reads_wide(uint32_t N);

// part[4 * j + m] += sum of (double)(a[i] * scale) over i in [0, n) with i % 4 == m and x[i] == j,
// in increasing i, and count[4 * j + m] likewise counts them (4 N entries each). 4-aligned chunks
// keep m = t % 4. fresh: start from +0.0 and 0 instead of what part and count hold (the first chunk).
// Any N: the vector lanes where small_vocab_kernels(N), the scalar loop they reproduce otherwise.
void scatter_small_vocab(const uint16_t* x, const float* a, float scale, uint32_t n, uint32_t N, double* part,
                         uint64_t* count, bool fresh = false);

// One sample's scatter: its tokens, attention column, pending scale and partial sums.
struct ScatterStream {
  const uint16_t* x;  // the tokens as the engine keeps them
  const float* a;
  float scale;
  double* part;
  uint64_t* count;
  const double* wide = nullptr;  // or the same values double(a[i] * scale), formed once per step for
                                 // every sample of the column (widen_columns in sample.hpp)
};

// scatter_small_vocab of two samples at once (the same n and N), the same bits as one after the
// other: each partial sum is a chain of dependent additions, and two samples' chains side by
// side fill the time one sample's spend waiting on them. With AVX-512 one register holds
// both samples' partial sums of a token (see small_vocab.cpp).
void scatter_small_vocab_pair(const ScatterStream pair[2], uint32_t n, uint32_t N, bool fresh = false);

// row[i] += g[tok[i]] for i in [0, len); g must hold kSmallVocabMaxN readable doubles.
void gather_small_vocab(const uint16_t* tok, const double* g, uint32_t len, double* row);

// One row of phase 3's gathered gradient, for len <= 64 positions: row[i] = the sum over the
// samples b = samples[0 .. count) (ascending), in that order from +0.0, of g_b[tok_b[i]], where
// tok_b = tokens + b * T and g_b = g + b * g_stride (g rows hold kSmallVocabMaxN readable doubles).
// The row stays in registers over the samples and is stored once (AVX-512: the whole row; AVX2:
// 32 positions at a time); without AVX2 each sample is added to it in memory. The same additions
// either way.
void gather_column_small_vocab(const uint16_t* tokens, uint32_t T, const double* g, uint32_t g_stride,
                               const uint32_t* samples, uint32_t count, uint32_t len, double* row);

}  // namespace scb
