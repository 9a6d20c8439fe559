// The CPU backend: the reference every other backend is checked against, and fast in its own
// right. This file binds a pack (the per-run scratch of cpu_phases.hpp) and runs one step on its
// thread pool (step_pool.hpp: no barrier waits for a thread to arrive, and waiting threads sleep)
// in one of two schedules of the same phases (phase_forward, phase_v_update, phase_a_update,
// step_finish, each a unit of its own file): with several runs per thread, one item per run doing
// its whole step (its data stays in cache); otherwise one job of phases whose items are (run,
// sample), (run, rows of dV), run, (run, block of positions) and (run, column). No item's
// floating-point order depends on the schedule or the thread count.
#include "scb/cpu/cpu_backend.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "cpu_phases.hpp"
#include "step_pool.hpp"
#include "thread_choice.hpp"
#include "scb/core/backend.hpp"
#include "scb/cpu/small_vocab.hpp"
#include "scb/cpu/token_draw.hpp"

namespace scb {

namespace cpu {

void apply_pending_scale(CpuState& st, size_t r) {
  RunScratch& s = st.runs[r];
  if (!s.scaled) return;
  const uint32_t N = st.pack->N, T = st.pack->T;
  float* A = st.pack->A_of(r);
  for (uint32_t k = 0; k < N; ++k) {
    float* a = A + size_t(k) * T;
    const float c = s.scale[k];
    for (uint32_t t = 0; t < T; ++t) a[t] *= c;
    s.scale[k] = 1.0f;
    if (!std::isfinite(c))  // +0 * inf is NaN: the tiles are no longer zero
      std::fill_n(s.zero_tiles.begin() + size_t(k) * st.nblocks, st.nblocks, uint8_t{0});
  }
  s.scaled = false;
}

void refresh_attention(CpuState& st, size_t r, uint32_t k) {
  const uint32_t T = st.pack->T;
  softmax_column(st.pack->A_of(r) + size_t(k) * T, T, st.runs[r].attn.data() + size_t(k) * T);
}

void transpose_v(CpuState& st, size_t r) {
  const uint32_t N = st.pack->N;
  const float* V = st.pack->V_of(r);
  float* VT = st.runs[r].VT.data();
  for (uint32_t i = 0; i < N; ++i)
    for (uint32_t j = 0; j < N; ++j) VT[size_t(j) * N + i] = V[size_t(i) * N + j];
}

}  // namespace cpu

namespace {

using cpu::CpuState;
using cpu::kBlock;
using cpu::RunScratch;
using cpu::StepPool;

class CpuBackend final : public Backend {
 public:
  // threads <= 0: up to every core, as many as run fastest (thread_choice.hpp).
  CpuBackend(int threads, uint64_t kept_noise_max_bytes)
      : threads_(threads > 0 ? threads : omp_get_max_threads()), adaptive_(threads <= 0), pool_(threads_),
        choice_(threads_), kept_noise_max_bytes_(kept_noise_max_bytes) {}
  std::string name() const override { return "cpu"; }

  void attach(RunPack& pack) override {
    st_ = CpuState{};
    st_.pack = &pack;
    st_.nblocks = (pack.T + kBlock - 1) / kBlock;
    st_.stream_queried = st_.sampled() && !small_vocab_kernels(pack.N) && pack.T >= cpu::kStreamQueriedMinT;
    // Per-sample rows padded to whole cache lines: threads scattering different samples
    // must not share a line (at N = 3 false sharing made two threads 4x slower than one).
    st_.row = (pack.N + 15) / 16 * 16;
    st_.runs.assign(pack.size(), RunScratch{});
    always_fused_ = threads_ == 1 || pack.size() >= kRunsPerThreadToFuse * size_t(threads_);
    thread_rows_.assign(always_fused_ ? size_t(threads_) : 0, cpu::SampleRows{});
    sample_items_.clear();
    dv_items_.clear();
    block_items_.clear();
    column_items_.clear();
    for (size_t r = 0; r < pack.size(); ++r) {
      if (st_.sampled()) attach_samples(r);
      attach_columns(r);
      for (uint32_t blk = 0; blk < st_.nblocks; ++blk) block_items_.push_back({uint32_t(r), blk});
    }
    any_noisy_ = false;
    for (size_t r = 0; r < pack.size(); ++r) any_noisy_ = any_noisy_ || noisy(r);
    st_.tiles.assign(size_t(threads_) * pack.N * kBlock, 0.0);
  }

  void step() override {
    const RunPack& p = *st_.pack;
    // Waking the workers costs microseconds: a step smaller than this many sample-positions runs
    // on one thread (the arithmetic order, and so every result, is the same for any thread count).
    constexpr uint64_t kMinParallelWork = 1u << 16;
    uint64_t work = 0;
    for (size_t r = 0; r < p.size(); ++r)
      if (p.active(r)) work += uint64_t(st_.sampled() ? p.batch_size[r] : p.N) * p.T;
    const bool parallel = work >= kMinParallelWork && threads_ > 1;
    const int threads = !parallel ? 1 : adaptive_ ? choice_.threads() : threads_;
    const auto t0 = std::chrono::steady_clock::now();
    // Enough runs for every thread: each run's whole step is one item, done while its tokens,
    // samples and columns are in cache (1,000 runs at T = 100: the phased schedule streamed
    // 13 MB of tokens through memory between phases 1 and 3, and ran 1.45x slower).
    if (threads == 1 || p.size() >= kRunsPerThreadToFuse * size_t(threads)) {
      auto whole_step = [&](size_t r, int slot) { if (p.active(r)) whole_run_step(uint32_t(r), slot); };
      const StepPool::Phase phase = StepPool::phase(p.size(), chunk(p.size(), 1, threads), whole_step);
      pool_.run(&phase, 1, threads);
    } else {
      phased_step(threads);
    }
    if (parallel && adaptive_)
      choice_.record(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), double(work));
  }

  std::vector<Metrics> evaluate(const std::vector<uint32_t>& runs) override {
    std::vector<Metrics> out(runs.size());
    const RunPack& p = *st_.pack;
    auto metrics = [&](size_t i, int) {
      const uint32_t r = runs[i];
      cpu::apply_pending_scale(st_, r);
      out[i] = compute_metrics(p.problem(r), p.V_of(r), st_.attention(r));
      out[i].step = p.step[r];
      out[i].samples = p.samples[r];
    };
    const StepPool::Phase phase = StepPool::phase(runs.size(), 1, metrics);
    pool_.run(&phase, 1, runs.size() > 1 ? threads_ : 1);
    return out;
  }

  // The host arrays are the parameters, once the deferred renormalisations are applied.
  void download() override {
    auto apply = [&](size_t r, int) { cpu::apply_pending_scale(st_, r); };
    const StepPool::Phase phase = StepPool::phase(st_.pack->size(), 1, apply);
    pool_.run(&phase, 1, st_.pack->size() > 1 ? threads_ : 1);
  }

 private:
  struct Item {
    uint32_t run, index;
  };

  template <typename F>
  void if_active(Item it, F&& f) const {
    if (st_.pack->active(it.run)) f(it);
  }
  bool noisy(size_t r) const { return !st_.runs[r].noise_sum.empty(); }
  // Items per claim: at least `least`, and some 32 claims per thread, so that claiming costs
  // nothing beside the items and an item held by a descheduled thread is a small part of a phase.
  static size_t chunk(size_t items, size_t least, int threads) {
    return std::max(least, items / (32 * size_t(threads)));
  }

  // Fewer than kRunsPerThreadToFuse runs per thread: phase by phase, each phase's items spread
  // over the threads.
  void phased_step(int threads) {
    const RunPack& p = *st_.pack;
    const uint32_t per_item = cpu::samples_per_item(p.T);
    auto forward = [&](size_t i, int) {
      if_active(sample_items_[i], [&](Item it) {
        cpu::forward_range(st_, it.run, it.index, std::min(it.index + per_item, p.batch_size[it.run]));
      });
    };
    auto dv_rows = [&](size_t i, int) { if_active(dv_items_[i], [&](Item it) { cpu::sum_dv_rows(st_, it.run, it.index); }); };
    auto sampled_v = [&](size_t r, int) { if (p.active(r)) cpu::reduce_and_update_v(st_, r); };
    auto population_v = [&](size_t r, int) { if (p.active(r)) cpu::population_v_update(st_, r); };
    auto noise_blocks = [&](size_t i, int) {
      if_active(block_items_[i], [&](Item it) { if (noisy(it.run)) cpu::sum_noise_block(st_, it.run, it.index); });
    };
    auto noise_means = [&](size_t r, int) { if (p.active(r) && noisy(r)) cpu::add_noise_means(st_, r); };
    // Tiles first, then the streamed columns: they write disjoint parts of A and its sums.
    auto a_update = [&](size_t i, int slot) {
      if (i < block_items_.size()) {
        double* tile = st_.tiles.data() + size_t(slot) * p.N * kBlock;
        if_active(block_items_[i], [&](Item it) { cpu::update_a_block(st_, it.run, it.index, tile); });
      } else {
        if_active(column_items_[i - block_items_.size()],
                  [&](Item it) { cpu::update_streamed_column(st_, it.run, it.index); });
      }
    };
    auto finish = [&](size_t r, int) { if (p.active(r)) cpu::finish_step(st_, r); };
    const size_t runs = p.size(), a_items = block_items_.size() + column_items_.size();
    StepPool::Phase phases[6];
    int n = 0;
    if (st_.sampled()) {
      const size_t least = per_item == 2 ? 2 : 1;  // four samples or more per claim
      phases[n++] = StepPool::phase(sample_items_.size(), chunk(sample_items_.size(), least, threads), forward);
      phases[n++] = StepPool::phase(dv_items_.size(), chunk(dv_items_.size(), 1, threads), dv_rows);
      phases[n++] = StepPool::phase(runs, chunk(runs, 1, threads), sampled_v);
    } else {
      phases[n++] = StepPool::phase(runs, chunk(runs, 1, threads), population_v);
      if (any_noisy_) {
        phases[n++] = StepPool::phase(block_items_.size(), chunk(block_items_.size(), 4, threads), noise_blocks);
        phases[n++] = StepPool::phase(runs, chunk(runs, 1, threads), noise_means);
      }
    }
    phases[n++] = StepPool::phase(a_items, chunk(a_items, 4, threads), a_update);
    phases[n++] = StepPool::phase(runs, chunk(runs, 1, threads), finish);
    pool_.run(phases, n, threads);
  }

  // Every phase of run r in phase order on one thread (`slot`): the items phased_step gives
  // run r, computing the same (each item's arithmetic depends only on its run's data).
  void whole_run_step(uint32_t r, int slot) {
    const RunPack& p = *st_.pack;
    const uint32_t N = p.N;
    if (always_fused_) thread_rows_[size_t(slot)].lend(st_.runs[r]);  // the thread's rows, for this step
    if (st_.sampled()) {
      cpu::forward_batch(st_, r);
      for (uint32_t blk = 0; blk * cpu::kDvRows < N; ++blk) cpu::sum_dv_rows(st_, r, blk);
      cpu::reduce_and_update_v(st_, r);
    } else {
      cpu::population_v_update(st_, r);
      if (noisy(r)) {
        for (uint32_t blk = 0; blk < st_.nblocks; ++blk) cpu::sum_noise_block(st_, r, blk);
        cpu::add_noise_means(st_, r);
      }
    }
    double* tile = st_.tiles.data() + size_t(slot) * N * kBlock;
    for (uint32_t blk = 0; blk < st_.nblocks; ++blk) cpu::update_a_block(st_, r, blk, tile);
    if (st_.sampled())
      for (uint32_t k = 0; k < N; ++k) cpu::update_streamed_column(st_, r, k);
    cpu::finish_step(st_, r);
    if (always_fused_) thread_rows_[size_t(slot)].lend(st_.runs[r]);  // and back
  }

  // Per-sample scratch of a sampled run (or, when every step is fused, of each thread: sized for
  // the largest batch), and its work items.
  void attach_samples(size_t r) {
    RunScratch& s = st_.runs[r];
    const uint32_t N = st_.pack->N, T = st_.pack->T, B = st_.pack->batch_size[r];
    if (always_fused_) {
      for (cpu::SampleRows& rows : thread_rows_)
        if (rows.k.size() < B) rows.resize(B, N, T, st_.row);
    } else {
      s.resize(B, N, T, st_.row);
    }
    for (uint32_t b = 0; b < B; b += cpu::samples_per_item(T)) sample_items_.push_back({uint32_t(r), b});
    for (uint32_t blk = 0; blk * cpu::kDvRows < N; ++blk) dv_items_.push_back({uint32_t(r), blk});
    for (uint32_t k = 0; k < N; ++k) column_items_.push_back({uint32_t(r), k});
  }

  // Per-column state of run r: attention cache, preconditioner, renormalisation, tile flags.
  void attach_columns(size_t r) {
    const RunPack& pack = *st_.pack;
    RunScratch& s = st_.runs[r];
    const uint32_t N = pack.N, T = pack.T, nblocks = st_.nblocks;
    s.col_mean.resize(N);
    s.mean_sum.resize(N);
    s.touched.reserve(N);
    if (st_.softmax()) {
      s.attn.resize(size_t(N) * T);
      s.col_hg.assign(N, 0.0);
      for (uint32_t k = 0; k < N; ++k) cpu::refresh_attention(st_, r, k);
    }
    s.inv_mu.resize(N);
    const Problem& pb = pack.problem(r);
    for (uint32_t k = 0; k < N; ++k) s.inv_mu[k] = pack.precondition[r] ? float(1.0 / pb.mu[k]) : 1.0f;
    s.col_sum.resize(size_t(nblocks) * N);
    s.col_total.resize(N);
    s.scale.assign(N, 1.0f);
    s.zero_tiles.assign(size_t(N) * nblocks, 0);
    if (st_.sampled() && !st_.softmax())
      for (uint32_t k = 0; k < N; ++k)
        for (uint32_t blk = 0; blk < nblocks; ++blk)
          s.zero_tiles[size_t(k) * nblocks + blk] =
              tile_is_zero(pack.A_of(r) + size_t(k) * T + blk * kBlock, std::min(T - blk * kBlock, kBlock));
    s.is_touched.assign(N, 0);
    if (st_.sampled() && (small_vocab_kernels(N) || st_.stream_queried)) {  // phase 3 gathers column by column
      s.column_begin.assign(N + 1, 0);
      s.by_column.resize(pack.batch_size[r]);
    }
    s.col_bad.assign(N, 0);
    s.scaled = false;
    s.bad.resize(nblocks);
    s.dV.resize(size_t(N) * N);
    if (st_.sampled() && N >= cpu::kVtMinN) {
      s.VT.resize(size_t(N) * N);
      cpu::transpose_v(st_, r);
    }
    if (projects_noise(pack.algorithm, pack.attention, pack.noise[r], pack.project[r] != 0))
      s.noise_sum.resize(size_t(nblocks) * N);
    if (keeps_noise(pack.algorithm, pack.attention, pack.noise[r], pack.project[r] != 0, N, T, kept_noise_max_bytes_))
      s.noise_kept.resize(kept_noise_bytes(N, T) / sizeof(double));  // whole tiles: kept_noise_at
  }

  static constexpr size_t kRunsPerThreadToFuse = 4;  // from this many runs per thread, whole_run_step
  int threads_;
  bool always_fused_ = false;               // every step runs whole_run_step (one thread, or enough runs)
  std::vector<cpu::SampleRows> thread_rows_;  // then: each thread's per-sample rows
  bool adaptive_;
  cpu::StepPool pool_;
  cpu::ThreadChoice choice_;
  bool any_noisy_ = false;
  uint64_t kept_noise_max_bytes_;  // a run keeps its A-noise (RunScratch::noise_kept) up to this many bytes
  CpuState st_;
  std::vector<Item> sample_items_, dv_items_, block_items_, column_items_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads, uint64_t kept_noise_max_bytes) {
  return std::make_unique<CpuBackend>(threads, kept_noise_max_bytes);
}

}  // namespace scb
