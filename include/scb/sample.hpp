#pragma once
// One sample of SPEC 1-3 end to end, as the CPU backend computes it: draw its tokens, query,
// position and output from the randomness contract, scatter h = X a^(k) and the token counts,
// and form r = V h - e_{x_o}, g = V^T r. The per-sample gradients follow without a second pass:
//   dl/dV = r h^T,  dl/da^(k)_t = g[x_t],  mean_t dl/da^(k)_t = (1/T) sum_j g_j c_j.
// Tests build exact per-sample gradients from it; the CUDA kernels draw the same tokens
// through the same draw_* functions of model.hpp.
#include <algorithm>
#include <cstdint>

#include "scb/model.hpp"

namespace scb {

struct SampleResult {
  uint32_t k;       // query token (the column of A this sample trains)
  uint32_t x_o;     // output token
  double a_mean;    // (1/T) sum_j g_j c_j: mean over positions of the A-gradient
};

// tokens: T entries (any integer type wide enough for N); h, r, g: N doubles; counts: N.
// A is by columns (a^(k) = A + k*T), V row-major.
template <typename Token>
SampleResult forward_sample(const ProblemView& pv, const float* V, const float* A, uint64_t seed,
                            uint32_t step, uint32_t sample, Token* tokens, double* h, uint32_t* counts,
                            double* r, double* g) {
  const uint32_t N = pv.N, T = pv.T;
  const SampleMeta meta = draw_sample_meta(pv, seed, step, sample);
  const float* a = A + static_cast<uint64_t>(meta.k) * T;
  std::fill(h, h + N, 0.0);
  std::fill(counts, counts + N, 0u);
  uint32_t x[4];
  const uint32_t full = T / 4;
  for (uint32_t blk = 0; blk < full; ++blk) {
    draw_token_block(pv, seed, step, sample, blk, x);
    for (uint32_t l = 0; l < 4; ++l) {
      const uint32_t t = 4 * blk + l;
      tokens[t] = static_cast<Token>(x[l]);
      h[x[l]] += static_cast<double>(a[t]);
      ++counts[x[l]];
    }
  }
  if (T % 4) {
    draw_token_block(pv, seed, step, sample, full, x);
    for (uint32_t t = 4 * full; t < T; ++t) {
      const uint32_t xt = x[t - 4 * full];
      tokens[t] = static_cast<Token>(xt);
      h[xt] += static_cast<double>(a[t]);
      ++counts[xt];
    }
  }
  SampleResult res;
  res.k = meta.k;
  res.x_o = draw_output(pv, static_cast<uint32_t>(tokens[meta.s]), meta.output_word);
  sample_residual(V, N, h, res.x_o, r, g);
  double m = 0;
  for (uint32_t j = 0; j < N; ++j) m += g[j] * counts[j];
  res.a_mean = m / T;
  return res;
}

}  // namespace scb
