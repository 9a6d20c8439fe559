#pragma once
// The CPU backend's state over an attached RunPack and the phases of one step, each a named unit
// over that state (private to src/cpu). The backend (cpu_backend.cpp) schedules them over
// threads; the per-element math stays in scb/core/model.hpp and scb/cpu/cpu_kernels.hpp, and the
// end-of-step decisions in scb/core/step_rules.hpp (shared with the CUDA kernels).
//   phase_forward.cpp   1. per (run, sample): tokens, h = X a^(k), counts, r = V h - e_{x_o},
//                          g = V^T r; the tokens are kept compactly (uint16) for phase 3
//   phase_v_update.cpp  2. per (run, block of rows): dV = R H^T in sample order; per run: the
//                          projection means per column and the V update (population: the exact
//                          terms and their noise)
//   phase_a_update.cpp  3. per (run, block of positions): gather the A-gradient, fused update;
//                          per (run, column): the streamed pass of the untouched (shrink) and,
//                          at large T, the queried columns
//   step_finish.cpp     4. per run: renormalisation, divergence, counters
// Every phase keeps a floating-point order that depends on nothing but the data, so the thread
// count never changes a result.
#include <cstdint>
#include <vector>

#include "scb/core/model.hpp"
#include "scb/core/population.hpp"
#include "scb/core/runpack.hpp"
#include "scb/core/step_rules.hpp"
#include "scb/cpu/cpu_kernels.hpp"

namespace scb::cpu {

// From this N on the residual reads a transposed copy of V (vectorised; the same bits).
constexpr uint32_t kVtMinN = 32;
constexpr uint32_t kBlock = kTileLength;  // positions per phase-3 tile: N x 64 doubles stay in cache
constexpr uint32_t kDvRows = 32;          // rows of dV per phase-2 work item (sampled algorithms)

// The per-sample rows of a sampled run's step (phase 1 writes them, phases 2 and 3 read them).
// They are the run's own when its samples may be spread over threads; when every step of the
// pack is one item per run (cpu_backend.cpp), each thread keeps one set and lends it to the run
// it steps (lend: a swap of the vectors), so that 1,000 runs do not stream 1,000 sets through
// memory every step.
struct SampleRows {
  std::vector<uint16_t> tokens;   // B x T
  std::vector<double> h, r, g;    // B x row each (row: N padded to a cache line)
  std::vector<uint32_t> counts;   // B x row
  std::vector<uint32_t> k;        // B query tokens
  std::vector<double> m;          // B: (1/T) sum_j g_j c_j, the sample's projection mean
  std::vector<double> hg;         // B: h.g (softmax: a . dl/da of the sample)
  std::vector<double> a_wide;     // N x T (scatter_reads_wide): the step's widen_columns, read where one thread steps the whole batch
  void resize(uint32_t B, uint32_t N, uint32_t T, uint32_t row);
  void lend(SampleRows& other);   // swaps the two sets
};

struct RunScratch : SampleRows {
  std::vector<float> attn;        // softmax: N x T attention softmax(w), by columns
  std::vector<double> col_hg;     // softmax: per column, sum over its samples of h.g / B
  std::vector<float> col_mean;    // N
  std::vector<double> mean_sum;   // N: per column, the sum of its samples' projection means
  std::vector<float> inv_mu;      // N
  std::vector<uint32_t> touched;  // columns some sample queried this step
  std::vector<uint32_t> by_column;  // N <= 4 or streamed: the B samples by column, each in sample order
  std::vector<uint32_t> column_begin;  // N + 1 offsets of the columns in by_column (when by_column is kept)
  std::vector<uint8_t> is_touched;  // N: 1 for the columns in `touched`
  std::vector<uint8_t> col_bad;   // N: an untouched column left the finite/limit range
  std::vector<double> col_sum;    // blocks x N partial column sums (renormalisation)
  std::vector<double> col_total;  // N: the column sums, reduced in block order
  std::vector<float> scale;       // N: pending renormalisation of each column (sampled algorithms)
  std::vector<uint8_t> zero_tiles;  // N x blocks (by column): tile all +0 (sampled, linear attention)
  bool scaled = false;            // whether `scale` is pending: A's true value is A * scale
  std::vector<uint8_t> bad;       // blocks: a parameter left the finite/limit range
  std::vector<double> dV;         // N x N
  std::vector<float> VT;          // N x N: V transposed, for the residual (sampled, N >= kVtMinN)
  bool v_bad = false;             // V left the finite/limit range this step
  std::vector<double> noise_sum;  // population + noise + projection: blocks x N noise sums
  std::vector<double> noise_kept;  // the same, within the backend's kept-noise bytes: the step's
                                   // A-noise, drawn for the sums, read by the update (kept_noise_at)
  AttentionGradientTerms pop;     // population mode
};

// From this T on (sampled runs whose N has no small-vocabulary kernels), phase 3 streams each
// queried column from start to end, like the untouched ones, instead of visiting it 64 entries at a
// time from every tile: at N = 500, T = 1e5 the tiles read some 60 queried columns and 64 token
// rows side by side, more streams than the prefetchers follow.
constexpr uint32_t kStreamQueriedMinT = 4096;

struct CpuState {
  RunPack* pack = nullptr;
  uint32_t nblocks = 0;
  bool stream_queried = false;  // phase 3 streams the queried columns (kStreamQueriedMinT)
  uint32_t row = 0;  // stride of the per-sample rows h, r, g, counts
  std::vector<RunScratch> runs;
  std::vector<double> tiles;  // per thread: N x kBlock gathered gradient of phase 3

  bool softmax() const { return pack->attention == Attention::softmax; }
  bool sampled() const { return pack->algorithm != Algorithm::population; }
  // The attention a^(k) the model applies: A itself, or softmax of the logits in A.
  const float* attention(size_t r) const { return softmax() ? runs[r].attn.data() : pack->A_of(r); }
  StepStage stage(size_t r) const {
    const RunPack& p = *pack;
    return step_stage(p.algorithm == Algorithm::sgd, softmax(), p.step[r], p.stage1_steps[r], p.lambda[r],
                      p.renormalize[r] != 0);
  }
  // The A update rule of column k of run r this step.
  AUpdateRule a_rule(size_t r, uint32_t k, bool threshold) const {
    const RunPack& p = *pack;
    const RunScratch& s = runs[r];
    return AUpdateRule{static_cast<float>(p.lr_A[r]), s.inv_mu[k], s.col_mean[k],
                       static_cast<float>(p.lr_A[r] * p.lambda[r]), threshold};
  }
};

// Where the kept A-noise of column k, positions blk * kBlock on, starts in RunScratch::noise_kept:
// block by block (a block's N columns side by side), where phase 3 reads it; by columns it was N
// streams T apart.
inline size_t kept_noise_at(uint32_t N, uint32_t k, uint32_t blk) { return (size_t(blk) * N + k) * kBlock; }

// Shared helpers (cpu_backend.cpp).
void apply_pending_scale(CpuState& st, size_t r);  // A = A * scale, column by column
void refresh_attention(CpuState& st, size_t r, uint32_t k);
void transpose_v(CpuState& st, size_t r);

// 1. phase_forward.cpp (drawn: sample b's tokens, meta: its meta and on, or null to draw them
// here; forward_pair: samples b and b + 1; forward_samples: samples b0 .. b0 + count - 1,
// count <= kSamplesPerDraw, T <= kTokenChunk, their metas drawn; A_wide: this step's
// widen_columns of run r, or null; forward_batch: every sample of run r, in the schedule its T
// and N suit, widening the columns into s.a_wide first where the scatter reads them)
void forward(CpuState& st, uint32_t r, uint32_t b, const uint16_t* drawn = nullptr, const SampleMeta* meta = nullptr);
void forward_pair(CpuState& st, uint32_t r, uint32_t b, const double* A_wide, const uint16_t* drawn = nullptr,
                  const SampleMeta* meta = nullptr);
void forward_samples(CpuState& st, uint32_t r, uint32_t b0, uint32_t count, const SampleMeta* meta,
                     const double* A_wide);
void forward_range(CpuState& st, uint32_t r, uint32_t b0, uint32_t b1, const double* A_wide = nullptr);
void forward_batch(CpuState& st, uint32_t r);
// Samples per phase-1 work item of a phased step (whole groups of forward_range: sixteen short
// samples, else a pair): the same schedule whole-run steps use, so both scatter pairs.
uint32_t samples_per_item(uint32_t T);
// 2. phase_v_update.cpp (sum_dv_rows of every block of a run before its reduce_and_update_v)
void sum_dv_rows(CpuState& st, uint32_t r, uint32_t blk);
void reduce_and_update_v(CpuState& st, size_t r);
void population_v_update(CpuState& st, size_t r);
void sum_noise_block(CpuState& st, uint32_t r, uint32_t blk);
void add_noise_means(CpuState& st, size_t r);
// 3. phase_a_update.cpp (tile: the calling thread's N x kBlock gather buffer)
void update_a_block(CpuState& st, uint32_t r, uint32_t blk, double* tile);
void update_streamed_column(CpuState& st, uint32_t r, uint32_t k);  // untouched, or queried when streamed
// 4. step_finish.cpp
void finish_step(CpuState& st, size_t r);

}  // namespace scb::cpu
