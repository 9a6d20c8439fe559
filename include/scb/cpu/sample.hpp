#pragma once
// One sample of docs/model.md sections 1-3 end to end, as the CPU backend computes it: draw its tokens, query,
// position and output from the randomness contract, scatter h = X a^(k) and the token counts,
// and form r = V h - e_{x_o}, g = V^T r. The per-sample gradients follow without a second pass:
//   dl/dV = r h^T,  dl/da^(k)_t = g[x_t],  mean_t dl/da^(k)_t = (1/T) sum_j g_j c_j.
// Tests build exact per-sample gradients from it; the CUDA kernels draw the same tokens
// through the same draw_* functions of model.hpp.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "scb/cpu/cpu_kernels.hpp"
#include "scb/core/model.hpp"
#include "scb/cpu/small_vocab.hpp"
#include "scb/cpu/token_draw.hpp"

namespace scb {

// Up to this N, forward_sample scatters into four partial histograms (see there).
constexpr uint32_t kSplitScatterMaxN = 16;

struct SampleResult {
  uint32_t k;       // query token (the column of A this sample trains)
  uint32_t x_o;     // output token
  double a_mean;    // (1/T) sum_j g_j c_j: mean over positions of the A-gradient
};

namespace sample_detail {

// The column of A a sample queries, and the factor it is still to be multiplied by.
struct SampleColumn {
  SampleMeta meta;
  const float* a;
  float scale;
};

// drawn_meta (or null): the sample's meta, already drawn (draw_sample_metas of several samples).
inline SampleColumn sample_column(const ProblemView& pv, const float* A, uint64_t seed, uint32_t step,
                                  uint32_t sample, const float* a_scale, const SampleMeta* drawn_meta) {
  const SampleMeta meta = drawn_meta ? *drawn_meta : draw_sample_meta(pv, seed, step, sample);
  // x * 1.0f == x: no pending scale, no change
  return {meta, A + static_cast<uint64_t>(meta.k) * pv.T, a_scale ? a_scale[meta.k] : 1.0f};
}

// Tokens t0 .. t0 + n - 1 of a sample as 16 bits, where the scatter reads them: drawn there
// (drawn: the sample's tokens, already drawn), and kept in tokens. The engine keeps uint16 tokens,
// so they are drawn (or were drawn) straight into its row; other token types get a copy.
template <typename Token>
const uint16_t* chunk_tokens(const ProblemView& pv, uint64_t seed, uint32_t step, uint32_t sample, uint32_t t0,
                             uint32_t n, const uint16_t* drawn, Token* tokens, uint16_t* chunk) {
  if constexpr (std::is_same_v<Token, uint16_t>) {
    if (drawn && drawn != tokens) std::copy(drawn + t0, drawn + t0 + n, tokens + t0);
    if (!drawn) draw_tokens(pv, seed, step, sample, t0, n, tokens + t0);
    return tokens + t0;
  } else {
    const uint16_t* x = drawn ? drawn + t0 : chunk;
    if (!drawn) draw_tokens(pv, seed, step, sample, t0, n, chunk);
    for (uint32_t i = 0; i < n; ++i) tokens[t0 + i] = static_cast<Token>(x[i]);
    return x;
  }
}

// h and the counts from four partial histograms (part[4 j + m]: token j, positions = m (mod 4)),
// combined in a fixed order, ((h0 + h1) + h2) + h3.
inline void combine_partials(const double* part, const uint64_t* cl, uint32_t N, double* h, uint32_t* counts) {
  for (uint32_t j = 0; j < N; ++j) {
    const double* hj = part + 4 * j;
    const uint64_t* cj = cl + 4 * j;
    h[j] = ((hj[0] + hj[1]) + hj[2]) + hj[3];
    counts[j] = static_cast<uint32_t>((cj[0] + cj[1]) + (cj[2] + cj[3]));
  }
}

// What follows h and the counts: the output token, r, g and the mean A-gradient.
template <typename Token>
SampleResult finish_sample(const ProblemView& pv, const float* V, const float* VT, const SampleMeta& meta,
                           const Token* tokens, const double* h, const uint32_t* counts, double* r, double* g) {
  SampleResult res;
  res.k = meta.k;
  res.x_o = draw_output(pv, static_cast<uint32_t>(tokens[meta.s]), meta.output_word);
  res.a_mean = sample_residual_mean(V, VT, pv.N, h, res.x_o, counts, r, g) / pv.T;
  return res;
}

}  // namespace sample_detail

// tokens: T entries (any integer type wide enough for N); h, r, g: N doubles; counts: N.
// A is by columns (a^(k) = A + k*T), V row-major. a_scale (N entries, or null) holds the factor
// each column is still to be multiplied by (the CPU backend defers renormalisation to its next
// pass over A): the attention used is the float product a_t * a_scale[k], exactly what an eager
// rescale would have stored. VT (V transposed, or null) only makes the residual faster. drawn
// (or null): the sample's T tokens, already drawn (draw_sample_tokens of several short samples;
// it may be tokens itself); meta (or null) its query, position and output word, already drawn.
template <typename Token>
SampleResult forward_sample(const ProblemView& pv, const float* V, const float* A, uint64_t seed,
                            uint32_t step, uint32_t sample, Token* tokens, double* h, uint32_t* counts,
                            double* r, double* g, const float* a_scale = nullptr,
                            const float* VT = nullptr, const uint16_t* drawn = nullptr,
                            const SampleMeta* meta = nullptr) {
  using namespace sample_detail;
  const uint32_t N = pv.N, T = pv.T;
  const SampleColumn col = sample_column(pv, A, seed, step, sample, a_scale, meta);
  // Draws the tokens chunk by chunk (AVX-512/AVX2 where available) unless drawn and hands each
  // chunk to add_chunk(t0, n, x).
  auto draw_chunks = [&](auto&& add_chunk) {
    uint16_t chunk[kTokenChunk];
    for (uint32_t t0 = 0; t0 < T; t0 += kTokenChunk) {
      const uint32_t n = std::min(kTokenChunk, T - t0);
      add_chunk(t0, n, chunk_tokens(pv, seed, step, sample, t0, n, drawn, tokens, chunk));
    }
  };
  if (N <= kSplitScatterMaxN) {
    // Few distinct tokens repeat often, and each h[x] += a_t would wait on the previous
    // addition to the same h[x] (through memory). Four partial histograms, one per position
    // mod 4 (chunks start at multiples of 4), break that chain. Up to kSmallVocabMaxN the same
    // sums run in vector lanes. The first chunk starts the sums (the vector loop in registers: a
    // fill of these arrays was a fifth of a sample at T = 100).
    double part[4 * kSplitScatterMaxN];
    uint64_t cl[4 * kSplitScatterMaxN];
    draw_chunks([&](uint32_t t0, uint32_t n, const uint16_t* x) {
      scatter_small_vocab(x, col.a + t0, col.scale, n, N, part, cl, t0 == 0);
    });
    combine_partials(part, cl, N, h, counts);
  } else {
    // h[x_t] += a_t in position order.
    std::fill(h, h + N, 0.0);
    std::fill(counts, counts + N, 0u);
    draw_chunks([&](uint32_t t0, uint32_t n, const uint16_t* x) {
      for (uint32_t i = 0; i < n; ++i) {
        h[x[i]] += static_cast<double>(col.a[t0 + i] * col.scale);
        ++counts[x[i]];
      }
    });
  }
  return finish_sample(pv, V, VT, col.meta, tokens, h, counts, r, g);
}

// One sample's place in forward_sample_pair: its index, rows and (or null) its drawn tokens and meta.
template <typename Token>
struct SampleSlot {
  uint32_t sample;
  Token* tokens;
  double* h;
  uint32_t* counts;
  double* r;
  double* g;
  const uint16_t* drawn;
  const SampleMeta* meta;
};

// The attention columns as the small-vocabulary scatter adds them, wide[k T + t] =
// double(A[k T + t] * scale_k) (scale 1 without a pending one): formed once per step where one
// thread steps a run's whole batch and the scatter reads them (scatter_reads_wide: AVX2, N <= 3),
// instead of once per sample and position.
inline void widen_columns(const float* A, const float* a_scale, uint32_t N, uint32_t T, double* wide) {
  for (uint32_t k = 0; k < N; ++k) {
    const float c = a_scale ? a_scale[k] : 1.0f;
    for (uint32_t t = 0; t < T; ++t) wide[size_t(k) * T + t] = static_cast<double>(A[size_t(k) * T + t] * c);
  }
}

// forward_sample of 2 * pairs samples of one step (pairs <= kMaxSamplePairs), res[q] for slot[q],
// the same bits (A_wide: widen_columns of A and a_scale, or null). Up to kSmallVocabMaxN the
// scatters of each pair run side by side (scatter_small_vocab_pair: each sample's partial sums
// are chains of dependent additions, and one sample alone leaves the adder idle between them),
// and every pair is scattered before any
// sample is finished, so that the finishes' chains (h, the residual, the mean) of different
// samples overlap instead of each waiting behind the next scatter; otherwise one after the other.
constexpr uint32_t kMaxSamplePairs = 4;
template <typename Token>
void forward_sample_pairs(const ProblemView& pv, const float* V, const float* A, uint64_t seed, uint32_t step,
                          const SampleSlot<Token>* slot, uint32_t pairs, SampleResult* res,
                          const float* a_scale = nullptr, const float* VT = nullptr,
                          const double* A_wide = nullptr) {
  using namespace sample_detail;
  const uint32_t N = pv.N, T = pv.T, n_samples = 2 * pairs;
  if (!small_vocab_kernels(N)) {
    for (uint32_t q = 0; q < n_samples; ++q)
      res[q] = forward_sample(pv, V, A, seed, step, slot[q].sample, slot[q].tokens, slot[q].h, slot[q].counts,
                              slot[q].r, slot[q].g, a_scale, VT, slot[q].drawn, slot[q].meta);
    return;
  }
  constexpr uint32_t kMax = 2 * kMaxSamplePairs;
  SampleColumn col[kMax];
  double part[kMax][4 * kSmallVocabMaxN];
  uint64_t cl[kMax][4 * kSmallVocabMaxN];
  uint16_t chunk[2][kTokenChunk];
  for (uint32_t q = 0; q < n_samples; ++q) col[q] = sample_column(pv, A, seed, step, slot[q].sample, a_scale, slot[q].meta);
  for (uint32_t q0 = 0; q0 < n_samples; q0 += 2) {
    for (uint32_t t0 = 0; t0 < T; t0 += kTokenChunk) {
      const uint32_t n = std::min(kTokenChunk, T - t0);
      ScatterStream stream[2];
      for (uint32_t i = 0; i < 2; ++i) {
        const uint32_t q = q0 + i;
        const uint16_t* x = chunk_tokens(pv, seed, step, slot[q].sample, t0, n, slot[q].drawn, slot[q].tokens, chunk[i]);
        const double* wide = A_wide ? A_wide + size_t(col[q].meta.k) * T + t0 : nullptr;
        stream[i] = {x, col[q].a + t0, col[q].scale, part[q], cl[q], wide};
      }
      scatter_small_vocab_pair(stream, n, N, t0 == 0);
    }
  }
  for (uint32_t q = 0; q < n_samples; ++q) {
    combine_partials(part[q], cl[q], N, slot[q].h, slot[q].counts);
    res[q] = finish_sample(pv, V, VT, col[q].meta, slot[q].tokens, slot[q].h, slot[q].counts, slot[q].r, slot[q].g);
  }
}

// forward_sample_pairs of one pair.
template <typename Token>
void forward_sample_pair(const ProblemView& pv, const float* V, const float* A, uint64_t seed, uint32_t step,
                         const SampleSlot<Token> slot[2], SampleResult res[2], const float* a_scale = nullptr,
                         const float* VT = nullptr, const double* A_wide = nullptr) {
  forward_sample_pairs(pv, V, A, seed, step, slot, 1, res, a_scale, VT, A_wide);
}

}  // namespace scb
