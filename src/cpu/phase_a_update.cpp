// Phase 3 of a CPU step: the one pass over A. Per (run, block of 64 positions): the A-gradient
// of every queried column is gathered from the samples' g in sample order, and the fused update
// (projection, preconditioning, soft-threshold; update_attention of model.hpp) writes A once,
// applying a pending renormalisation on the way (a * c, the float product an eager rescale would
// have stored). A second pass over the 64 entries, while they are in L1, checks the range and
// sums the tile for the renormalisation (tile_sum: eight interleaved partial sums, so the update
// vectorises); step_finish.cpp reduces those sums in block order. At large T (stream_queried) the
// queried columns are done column by column instead, with the same arithmetic. Population mode forms
// dA = base + slope a + spike q (+ noise) on the fly for every column. The columns no sample
// queried are streamed per (run, column) instead (update_streamed_column), skipping the tiles
// the l1 threshold has emptied (exact: they would be rewritten with the same zeros).
// Softmax attention trains the logits: dl/dw = a (dl/da - a.dl/da), read from the attention cache.
#include <algorithm>
#include <cmath>

#include "cpu_phases.hpp"
#include "scb/cpu/noise_draw.hpp"
#include "scb/cpu/small_vocab.hpp"

namespace scb::cpu {

namespace {

// Asks for the cache lines `lines` x 64 bytes starting 8 tiles past p, the tile this loop
// reaches 8 tiles from now (prefetching past the end of an array is harmless).
template <typename E>
inline void prefetch_ahead(const E* p, int lines) {
  const char* q = reinterpret_cast<const char*>(p + 8 * kBlock);
  for (int l = 0; l < lines; ++l) __builtin_prefetch(q + 64 * l);
}

// tile row k = sum over the samples that queried k of g[x_t], t in [t0, t0 + len), in sample order.
void gather_block(const CpuState& st, uint32_t r, uint32_t t0, uint32_t len, double* tile) {
  const RunScratch& s = st.runs[r];
  const uint32_t T = st.pack->T, B = st.pack->batch_size[r];
  const bool small = small_vocab_kernels(st.pack->N);  // g rows are padded to 16 doubles: readable
  if (small) {  // each queried column's row summed over its samples, in sample order
    for (uint32_t k : s.touched)
      gather_column_small_vocab(s.tokens.data() + t0, T, s.g.data(), st.row, s.by_column.data() + s.column_begin[k],
                                s.column_begin[k + 1] - s.column_begin[k], len, tile + size_t(k) * kBlock);
    return;
  }
  for (uint32_t k : s.touched) std::fill(tile + size_t(k) * kBlock, tile + size_t(k) * kBlock + len, 0.0);
  for (uint32_t b = 0; b < B; ++b) {
    const uint16_t* tok = s.tokens.data() + size_t(b) * T + t0;
    const double* g = s.g.data() + size_t(b) * st.row;
    double* row = tile + size_t(s.k[b]) * kBlock;
    // B token rows read 128 bytes at a time, T apart: too many streams for the hardware
    // prefetcher at large T (the gather ran at a third of this speed at T = 1e5, B = 64).
    prefetch_ahead(tok, 2);
    for (uint32_t i = 0; i < len; ++i) row[i] += g[tok[i]];
  }
}

// a = update(a, row / B) for a queried column; separate loops per case, each branch-free.
void update_sampled_column(const CpuState& st, uint32_t r, uint32_t k, uint32_t t0, uint32_t len,
                           const double* row, const AUpdateRule& rule) {
  const RunScratch& s = st.runs[r];
  const uint32_t T = st.pack->T;
  float* a = st.pack->A_of(r) + size_t(k) * T + t0;
  const double invB = 1.0 / st.pack->batch_size[r];
  const float c = s.scale[k];
  prefetch_ahead(a, 4);  // the touched columns are streams T apart too
  if (!st.softmax()) {
    for (uint32_t i = 0; i < len; ++i) a[i] = update_attention(a[i] * c, static_cast<float>(row[i] * invB), rule);
  } else {
    const float* ak = s.attn.data() + size_t(k) * T + t0;
    const double hg = s.col_hg[k];
    for (uint32_t i = 0; i < len; ++i)
      a[i] = update_attention(a[i], static_cast<float>(ak[i] * (row[i] * invB - hg)), rule);
  }
}

// Population: dA = base + slope * a + spike * q (+ noise), formed in `grad` and applied.
void update_population_column(const CpuState& st, uint32_t r, uint32_t k, uint32_t t0, uint32_t len,
                              double* grad, const AUpdateRule& rule) {
  const RunPack& p = *st.pack;
  const RunScratch& s = st.runs[r];
  const Problem& pb = p.problem(r);
  const uint32_t T = p.T, t1 = t0 + len;
  float* a = st.pack->A_of(r) + size_t(k) * T + t0;
  const bool softmax = st.softmax();
  const float* ak = softmax ? s.attn.data() + size_t(k) * T + t0 : a;  // the attention, not the logits
  const double base = s.pop.base[k], slope = s.pop.slope[k];
  for (uint32_t i = 0; i < len; ++i) grad[i] = base + slope * static_cast<double>(ak[i]);
  if (p.noise[r] > 0) {
    const double noise_sd = p.noise[r] / std::sqrt(double(p.batch_size[r]));
    double drawn[kBlock];
    const double* noise = drawn;
    if (s.noise_kept.empty())
      draw_noise(p.seed[r], static_cast<uint32_t>(p.step[r]), 0, uint64_t(k) * T + t0, len, drawn);
    else
      noise = s.noise_kept.data() + kept_noise_at(p.N, k, t0 / kBlock);  // sum_noise_block's draws
    for (uint32_t i = 0; i < len; ++i) grad[i] += noise_sd * noise[i];
  }
  for (uint32_t q = pb.q_ptr[k]; q < pb.q_ptr[k + 1]; ++q)
    if (pb.q_pos[q] >= t0 && pb.q_pos[q] < t1) grad[pb.q_pos[q] - t0] += s.pop.spike[k] * pb.q_w[q];
  if (softmax)  // dL/dw = a (dL/da - a . dL/da); the noise is noise on dL/da
    for (uint32_t i = 0; i < len; ++i) grad[i] = static_cast<double>(ak[i]) * (grad[i] - s.pop.a_dot[k]);
  for (uint32_t i = 0; i < len; ++i) a[i] = update_attention(a[i], static_cast<float>(grad[i]), rule);
}

// After a tile of column k was updated: its sum for the renormalisation, its range check (into
// bad) and, for sampled runs, its all-zero flag.
void sum_and_flag_tile(CpuState& st, uint32_t r, uint32_t k, uint32_t blk, uint32_t len, bool renormalize,
                       bool& bad) {
  RunPack& p = *st.pack;
  RunScratch& s = st.runs[r];
  const float* a = p.A_of(r) + size_t(k) * p.T + size_t(blk) * kBlock;
  const double colsum = tile_sum(a, len, p.divergence_limit[r], bad);
  if (renormalize) s.col_sum[size_t(blk) * p.N + k] = colsum;
  if (st.sampled()) s.zero_tiles[size_t(k) * st.nblocks + blk] = tile_is_zero(a, len);
}

}  // namespace

void update_a_block(CpuState& st, uint32_t r, uint32_t blk, double* tile) {
  RunPack& p = *st.pack;
  RunScratch& s = st.runs[r];
  const uint32_t N = p.N, T = p.T;
  const uint32_t t0 = blk * kBlock, len = std::min(T, t0 + kBlock) - t0;
  const bool sampled = st.sampled();
  if (st.stream_queried) {  // every column is streamed: update_streamed_column
    s.bad[blk] = false;
    return;
  }
  const StepStage stage = st.stage(r);
  if (sampled) gather_block(st, r, t0, len, tile);
  bool bad = false;
  auto update_column = [&](uint32_t k) {
    const AUpdateRule rule = st.a_rule(r, k, stage.threshold);
    if (sampled)
      update_sampled_column(st, r, k, t0, len, tile + size_t(k) * kBlock, rule);
    else
      update_population_column(st, r, k, t0, len, tile, rule);
    sum_and_flag_tile(st, r, k, blk, len, stage.renormalize, bad);
  };
  if (sampled) {
    for (uint32_t k : s.touched) update_column(k);  // the others: update_streamed_column
  } else {
    for (uint32_t k = 0; k < N; ++k) update_column(k);
  }
  s.bad[blk] = bad;
}

namespace {

// A queried column streamed from start to end (CpuState::stream_queried): tile by tile, its row of
// the gathered gradient from its samples in sample order, then the update, the sum and the flags of
// update_a_block, so the same values, sums and flags.
void update_queried_column(CpuState& st, uint32_t r, uint32_t k) {
  RunScratch& s = st.runs[r];
  const uint32_t T = st.pack->T;
  const StepStage stage = st.stage(r);
  const AUpdateRule rule = st.a_rule(r, k, stage.threshold);
  const uint32_t* samples = s.by_column.data() + s.column_begin[k];
  const uint32_t count = s.column_begin[k + 1] - s.column_begin[k];
  double row[kBlock];
  bool bad = false;
  for (uint32_t blk = 0; blk < st.nblocks; ++blk) {
    const uint32_t t0 = blk * kBlock, len = std::min(T, t0 + kBlock) - t0;
    gather_column(s.tokens.data() + t0, T, s.g.data(), st.row, samples, count, len, row);
    update_sampled_column(st, r, k, t0, len, row, rule);
    sum_and_flag_tile(st, r, k, blk, len, stage.renormalize, bad);
  }
  s.col_bad[k] = bad;
}

}  // namespace

// The columns no sample queried: zero gradient and zero mean, so only the threshold and the
// pending renormalisation change them (nothing at all in plain SGD). Each is streamed from start
// to end rather than visited 64 entries at a time by every tile (at N = 500, ~440 such columns:
// that many concurrent streams defeat the hardware prefetcher); its per-block sums and values
// are exactly what the tiles would give. At large T the queried columns are streamed too.
void update_streamed_column(CpuState& st, uint32_t r, uint32_t k) {
  RunPack& p = *st.pack;
  RunScratch& s = st.runs[r];
  s.col_bad[k] = 0;
  if (s.is_touched[k] && st.stream_queried) return update_queried_column(st, r, k);
  const StepStage stage = st.stage(r);
  if (s.is_touched[k] || !(stage.threshold || stage.renormalize || s.scaled)) return;
  const uint32_t N = p.N, T = p.T;
  s.col_bad[k] = shrink_column(p.A_of(r) + size_t(k) * T, T, s.scale[k], st.a_rule(r, k, stage.threshold),
                               p.divergence_limit[r], stage.renormalize ? s.col_sum.data() + k : nullptr, N,
                               s.zero_tiles.data() + size_t(k) * st.nblocks);
}

}  // namespace scb::cpu
