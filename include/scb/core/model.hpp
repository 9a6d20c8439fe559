#pragma once
// The per-element math of docs/model.md sections 1-3 and 5 that both backends execute: drawing one sample's
// tokens, query, position and output from the randomness contract, and the scalar update
// rules (soft-thresholding, final normalisation). Everything here is __host__ __device__
// and works on plain pointers (ProblemView), so the CUDA kernels call exactly this code.
#include <cmath>
#include <cstdint>

#include "scb/core/alias.hpp"
#include "scb/core/gaussian.hpp"
#include "scb/core/hd.hpp"
#include "scb/core/philox.hpp"

namespace scb {

// Read-only view of a problem's sampling tables, valid on the host or on the device
// depending on where the pointers live.
struct ProblemView {
  uint32_t N = 0;
  uint32_t T = 0;
  const uint32_t* mu_threshold = nullptr;  // N: alias table of mu (tokens and queries)
  const uint32_t* mu_alias = nullptr;
  const uint32_t* P_threshold = nullptr;   // N x N: row j is the alias table of column P[:, j]
  const uint32_t* P_alias = nullptr;
  const uint32_t* q_ptr = nullptr;         // N + 1: CSR offsets of the supports of q^(k)
  const uint32_t* q_pos = nullptr;         // support positions (0-based, ascending)
  const uint32_t* q_threshold = nullptr;   // alias tables of the weights, same CSR offsets
  const uint32_t* q_alias = nullptr;
};

// Tokens x_t for t = 4*block .. 4*block+3 of one sample (0-based positions), i.i.d. from mu.
SCB_HD void draw_token_block(const ProblemView& pv, uint64_t seed, uint32_t step,
                             uint32_t sample, uint32_t block, uint32_t out[4]) {
  const Philox4 w = philox(seed, block, sample, step, kStreamTokens);
  for (int lane = 0; lane < 4; ++lane)
    out[lane] = alias_sample(pv.mu_threshold, pv.mu_alias, pv.N, w.v[lane]);
}

SCB_HD uint32_t draw_token(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample,
                           uint32_t t) {
  const Philox4 w = philox(seed, t >> 2, sample, step, kStreamTokens);
  return alias_sample(pv.mu_threshold, pv.mu_alias, pv.N, w.v[t & 3u]);
}

// What a sample needs besides its tokens: the query token k = x_{T+1}, the attended
// position s ~ q^(k), and the word that draws the output x_o ~ P[:, x_s] once x_s is known.
struct SampleMeta {
  uint32_t k;
  uint32_t s;
  uint32_t output_word;
};

SCB_HD SampleMeta draw_sample_meta(const ProblemView& pv, uint64_t seed, uint32_t step,
                                   uint32_t sample) {
  const Philox4 w = philox(seed, 0, sample, step, kStreamSampleMeta);
  SampleMeta m;
  m.k = alias_sample(pv.mu_threshold, pv.mu_alias, pv.N, w.v[0]);
  const uint32_t begin = pv.q_ptr[m.k];
  const uint32_t count = pv.q_ptr[m.k + 1] - begin;
  const uint32_t slot = alias_sample(pv.q_threshold + begin, pv.q_alias + begin, count, w.v[1]);
  m.s = pv.q_pos[begin + slot];
  m.output_word = w.v[2];
  return m;
}

SCB_HD uint32_t draw_output(const ProblemView& pv, uint32_t x_s, uint32_t output_word) {
  return alias_sample(pv.P_threshold + static_cast<uint64_t>(x_s) * pv.N,
                      pv.P_alias + static_cast<uint64_t>(x_s) * pv.N, pv.N, output_word);
}

// S_tau(z) = sign(z) max(|z| - tau, 0): the proximal map of tau * ||.||_1. Written without
// branches so the CPU's update loops vectorise (the proximal stage keeps many entries near the
// threshold, where a branch mispredicts); for tau >= 0 it equals the branchy
// z > tau ? z - tau : (z < -tau ? z + tau : 0) for every z, NaN (-> 0) included, because
// z - tau > 0 exactly when z > tau in IEEE arithmetic, and at most one of the two terms is non-zero.
template <typename Real>
SCB_HD Real soft_threshold(Real z, Real tau) {
  const Real above = z - tau, below = z + tau;
  return (above > Real(0) ? above : Real(0)) + (below < Real(0) ? below : Real(0));
}

// One coordinate of the A update of docs/model.md section 5, given the raw gradient g of a^(k)_t, the
// column's gradient mean (subtracted when projecting), 1/mu_k (when preconditioning) and tau
// (0 in stage 1 / sgd: then the threshold is skipped, not applied with 0).
struct AUpdateRule {
  float lr;            // eta_A
  float inv_mu;        // 1/mu_k if preconditioning, else 1
  float mean;          // column mean of the gradient if projecting, else 0
  float tau;           // eta_A * lambda in the proximal stage, else 0
  bool threshold;      // apply S_tau
};

SCB_HD float update_attention(float a, float grad, const AUpdateRule& rule) {
  const float z = a - rule.lr * ((grad - rule.mean) * rule.inv_mu);
  return rule.threshold ? soft_threshold(z, rule.tau) : z;
}

}  // namespace scb

namespace scb {

// Gradient noise of the population simulation: coordinates 4*block .. 4*block+3 of matrix
// `matrix` (0 = A by columns, 1 = V row-major) at `step` get four standard normals from one
// Philox block, words (0, 1) and (2, 3) by Box-Muller (normal_pair of gaussian.hpp: the same
// bits on the host, vectorised or not, and on the device).
SCB_HD void gradient_noise_block(uint64_t seed, uint32_t step, uint32_t matrix, uint32_t block, double z[4]) {
  const Philox4 w = philox(seed, block, matrix, step, kStreamNoise);
  normal_pair(w.v[0], w.v[1], z[0], z[1]);
  normal_pair(w.v[2], w.v[3], z[2], z[3]);
}

SCB_HD double gradient_noise(uint64_t seed, uint32_t step, uint32_t matrix, uint64_t index) {
  double z[4];
  gradient_noise_block(seed, step, matrix, static_cast<uint32_t>(index >> 2), z);
  return z[index & 3u];
}

// The gradient noise of matrix `matrix` along a walk over increasing coordinates (A: k*T + t,
// V: i*N + j): the Philox block of four is regenerated only when the index enters a new one (a
// run of four positions spans two blocks when T % 4 != 0). The block is held as four scalars,
// not an array: indexed at run time an array would live in local memory on the device.
struct NoiseCursor {
  SCB_HD NoiseCursor(uint64_t seed_, uint32_t step_, uint32_t matrix_ = 0) : seed(seed_), step(step_), matrix(matrix_) {}
  SCB_HD double at(uint64_t index) {
    if ((index >> 2) != cached) {
      cached = index >> 2;
      double z[4];
      gradient_noise_block(seed, step, matrix, static_cast<uint32_t>(cached), z);
      z0 = z[0];
      z1 = z[1];
      z2 = z[2];
      z3 = z[3];
    }
    const uint32_t lane = static_cast<uint32_t>(index & 3u);
    return lane == 0 ? z0 : (lane == 1 ? z1 : (lane == 2 ? z2 : z3));
  }

  uint64_t seed;
  uint32_t step, matrix;
  uint64_t cached = ~uint64_t{0};
  double z0 = 0, z1 = 0, z2 = 0, z3 = 0;
};

}  // namespace scb

namespace scb {

// a = softmax(w) over one column of logits (the softmax attention variant), in float with a
// double sum; the same function produces the trained attention and the saved A.npy.
SCB_HD void softmax_column(const float* w, uint32_t T, float* a) {
  float m = w[0];
  for (uint32_t t = 1; t < T; ++t) m = w[t] > m ? w[t] : m;
  double s = 0;
  for (uint32_t t = 0; t < T; ++t) s += static_cast<double>(expf(w[t] - m));
  const float inv = static_cast<float>(1.0 / s);
  for (uint32_t t = 0; t < T; ++t) a[t] = expf(w[t] - m) * inv;
}

}  // namespace scb
