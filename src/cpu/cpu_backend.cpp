// The CPU backend: the reference every other backend is checked against, and fast in its own
// right. One step of a pack runs in three parallel phases whose floating-point order never
// depends on the thread count:
//   1. per (run, sample): draw the tokens, scatter h = X a^(k) and the token counts, form
//      r = V h - e_{x_o} and g = V^T r; keep the tokens compactly (uint16) for phase 3;
//   2. per run: dV = R H^T / B in sample order, the projection means per column, the V update;
//   3. per (run, block of positions): gather the A-gradient from g in sample order and apply
//      the fused update (projection, preconditioning, soft-threshold) while writing A once;
//      columns no sample queried are streamed per (run, column) instead, skipping the tiles the
//      l1 threshold has emptied (exact: they would be rewritten with the same zeros);
//      column sums for renormalisation are summed per block (tile_sum: eight interleaved partial
//      sums, so the update vectorises) and reduced in block order into a per-column scale that
//      the next step applies on its way through A (as the CUDA backend does): the stored values
//      are the same float products, one full pass over A cheaper.
// Softmax attention (a^(k) = softmax(w^(k))) trains the logits held in pack.A and keeps the
// attention itself in a cache refreshed after each update of a column; dl/dw = a (dl/da - a.dl/da),
// where a.dl/da = h.g for one sample, so the same gathers serve both variants.
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "scb/core/backend.hpp"
#include "scb/cpu/cpu_backend.hpp"
#include "scb/cpu/cpu_kernels.hpp"
#include "scb/core/model.hpp"
#include "scb/cpu/sample.hpp"

namespace scb {

namespace {

// From this N on the residual reads a transposed copy of V (vectorised; the same bits).
constexpr uint32_t kVtMinN = 32;
constexpr uint32_t kBlock = kTileLength;  // positions per phase-3 tile: N x 64 doubles stay in cache

struct RunScratch {
  std::vector<uint16_t> tokens;   // B x T
  std::vector<double> h, r, g;    // B x N each
  std::vector<uint32_t> counts;   // B x N
  std::vector<uint32_t> k;        // B query tokens
  std::vector<double> m;          // B: (1/T) sum_j g_j c_j, the sample's projection mean
  std::vector<double> hg;         // B: h.g (softmax: a . dl/da of the sample)
  std::vector<float> attn;        // softmax: N x T attention softmax(w), by columns
  std::vector<double> col_hg;     // softmax: per column, sum over its samples of h.g / B
  std::vector<float> col_mean;    // N
  std::vector<double> mean_sum;   // N: per column, the sum of its samples' projection means
  std::vector<float> inv_mu;      // N
  std::vector<uint32_t> touched;  // columns some sample queried this step
  std::vector<uint8_t> is_touched;  // N: 1 for the columns in `touched`
  std::vector<uint8_t> col_bad;   // N: an untouched column left the finite/limit range
  std::vector<double> col_sum;    // blocks x N partial column sums (renormalisation)
  std::vector<float> scale;       // N: pending renormalisation of each column (sampled algorithms)
  std::vector<uint8_t> zero_tiles;  // N x blocks (by column): tile all +0 (sampled, linear attention)
  bool scaled = false;            // whether `scale` is pending: A's true value is A * scale
  std::vector<uint8_t> bad;       // blocks: a parameter left the finite/limit range
  std::vector<double> dV;         // N x N
  std::vector<float> VT;          // N x N: V transposed, for the residual (sampled, N >= kVtMinN)
  bool v_bad = false;             // V left the finite/limit range this step
  std::vector<double> noise_sum;  // population + noise + projection: blocks x N noise sums
  AttentionGradientTerms pop;     // population mode
};

// Asks for the cache lines `lines` x 64 bytes starting 8 tiles past p, the tile this loop
// reaches 8 tiles from now (prefetching past the end of an array is harmless).
template <typename E>
inline void prefetch_ahead(const E* p, int lines) {
  const char* q = reinterpret_cast<const char*>(p + 8 * kBlock);
  for (int l = 0; l < lines; ++l) __builtin_prefetch(q + 64 * l);
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : threads_(threads > 0 ? threads : omp_get_max_threads()) {}
  std::string name() const override { return "cpu"; }

  void attach(RunPack& pack) override {
    pack_ = &pack;
    const uint32_t N = pack.N, T = pack.T;
    nblocks_ = (T + kBlock - 1) / kBlock;
    // Per-sample rows padded to whole cache lines: threads scattering different samples
    // must not share a line (at N = 3 false sharing made two threads 4x slower than one).
    row_ = (N + 15) / 16 * 16;
    scratch_.assign(pack.size(), RunScratch{});
    sample_items_.clear();
    block_items_.clear();
    column_items_.clear();
    for (size_t r = 0; r < pack.size(); ++r) {
      RunScratch& s = scratch_[r];
      const uint32_t B = pack.batch_size[r];
      if (pack.algorithm != Algorithm::population) {
        s.tokens.resize(size_t(B) * T);
        s.h.resize(size_t(B) * row_);
        s.r.resize(size_t(B) * row_);
        s.g.resize(size_t(B) * row_);
        s.counts.resize(size_t(B) * row_);
        s.k.resize(B);
        s.m.resize(B);
        s.hg.resize(B);
        for (uint32_t b = 0; b < B; ++b) sample_items_.push_back({uint32_t(r), b});
        for (uint32_t k = 0; k < N; ++k) column_items_.push_back({uint32_t(r), k});
      }
      s.col_mean.resize(N);
      s.mean_sum.resize(N);
      s.touched.reserve(N);
      if (pack.attention == Attention::softmax) {
        s.attn.resize(size_t(N) * T);
        s.col_hg.assign(N, 0.0);
        for (uint32_t k = 0; k < N; ++k) refresh_attention(r, k);
      }
      s.inv_mu.resize(N);
      const Problem& pb = pack.problem(r);
      for (uint32_t k = 0; k < N; ++k) s.inv_mu[k] = pack.precondition[r] ? float(1.0 / pb.mu[k]) : 1.0f;
      s.col_sum.resize(size_t(nblocks_) * N);
      s.scale.assign(N, 1.0f);
      s.zero_tiles.assign(size_t(N) * nblocks_, 0);
      if (pack.algorithm != Algorithm::population && pack.attention == Attention::linear)
        for (uint32_t k = 0; k < N; ++k)
          for (uint32_t blk = 0; blk < nblocks_; ++blk)
            s.zero_tiles[size_t(k) * nblocks_ + blk] =
                tile_is_zero(pack.A_of(r) + size_t(k) * T + blk * kBlock, std::min(T - blk * kBlock, kBlock));
      s.is_touched.assign(N, 0);
      s.col_bad.assign(N, 0);
      s.scaled = false;
      s.bad.resize(nblocks_);
      s.dV.resize(size_t(N) * N);
      if (pack.algorithm != Algorithm::population && N >= kVtMinN) {
        s.VT.resize(size_t(N) * N);
        transpose_v(r);
      }
      if (pack.algorithm == Algorithm::population && pack.noise[r] > 0 && pack.project[r] &&
          pack.attention == Attention::linear)
        s.noise_sum.resize(size_t(nblocks_) * N);
      for (uint32_t blk = 0; blk < nblocks_; ++blk) block_items_.push_back({uint32_t(r), blk});
    }
    tiles_.assign(size_t(threads_) * N * kBlock, 0.0);
  }

  void step() override {
    RunPack& p = *pack_;
    // Fork/join costs microseconds: a step smaller than this many sample-positions runs on one
    // thread (the arithmetic order, and so every result, is the same for any thread count).
    constexpr uint64_t kMinParallelWork = 1u << 16;
    uint64_t work = 0;
    for (size_t r = 0; r < p.size(); ++r)
      if (p.active(r)) work += uint64_t(p.algorithm == Algorithm::population ? p.N : p.batch_size[r]) * p.T;
    const int threads = work < kMinParallelWork ? 1 : threads_;
    if (p.algorithm == Algorithm::population) {
#pragma omp parallel for schedule(dynamic) num_threads(threads)
      for (size_t r = 0; r < p.size(); ++r)
        if (p.active(r)) population_v_update(r);
      // SPEC 5 projects the noisy gradient: the noise's column means join the exact ones.
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
      for (size_t i = 0; i < block_items_.size(); ++i)
        if (p.active(block_items_[i].run) && !scratch_[block_items_[i].run].noise_sum.empty())
          sum_noise_block(block_items_[i].run, block_items_[i].index);
#pragma omp parallel for schedule(dynamic) num_threads(threads)
      for (size_t r = 0; r < p.size(); ++r)
        if (p.active(r) && !scratch_[r].noise_sum.empty()) add_noise_means(r);
    } else {
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
      for (size_t i = 0; i < sample_items_.size(); ++i)
        if (p.active(sample_items_[i].run)) forward(sample_items_[i].run, sample_items_[i].index);
#pragma omp parallel for schedule(dynamic) num_threads(threads)
      for (size_t r = 0; r < p.size(); ++r)
        if (p.active(r)) reduce_and_update_v(r);
    }
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
    for (size_t i = 0; i < block_items_.size(); ++i)
      if (p.active(block_items_[i].run)) update_a_block(block_items_[i].run, block_items_[i].index);
    if (p.algorithm != Algorithm::population) {
#pragma omp parallel for schedule(dynamic, 8) num_threads(threads)
      for (size_t i = 0; i < column_items_.size(); ++i)
        if (p.active(column_items_[i].run)) update_untouched_column(column_items_[i].run, column_items_[i].index);
    }
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (size_t r = 0; r < p.size(); ++r)
      if (p.active(r)) finish_step(r);
  }

  std::vector<Metrics> evaluate(const std::vector<uint32_t>& runs) override {
    std::vector<Metrics> out(runs.size());
    const RunPack& p = *pack_;
#pragma omp parallel for schedule(dynamic) num_threads(threads_)
    for (size_t i = 0; i < runs.size(); ++i) {
      const uint32_t r = runs[i];
      apply_pending_scale(r);
      out[i] = compute_metrics(p.problem(r), p.V_of(r), attention(r));
      out[i].step = p.step[r];
      out[i].samples = p.samples[r];
    }
    return out;
  }

  // The host arrays are the parameters, once the deferred renormalisations are applied.
  void download() override {
#pragma omp parallel for schedule(dynamic) num_threads(threads_)
    for (size_t r = 0; r < pack_->size(); ++r) apply_pending_scale(r);
  }

 private:
  struct Item {
    uint32_t run, index;
  };

  bool softmax() const { return pack_->attention == Attention::softmax; }

  // A = A * scale, column by column (the same float products the next pass would form).
  void apply_pending_scale(size_t r) {
    RunScratch& s = scratch_[r];
    if (!s.scaled) return;
    const uint32_t N = pack_->N, T = pack_->T;
    float* A = pack_->A_of(r);
    for (uint32_t k = 0; k < N; ++k) {
      float* a = A + size_t(k) * T;
      const float c = s.scale[k];
      for (uint32_t t = 0; t < T; ++t) a[t] *= c;
      s.scale[k] = 1.0f;
      if (!std::isfinite(c))  // +0 * inf is NaN: the tiles are no longer zero
        std::fill_n(s.zero_tiles.begin() + size_t(k) * nblocks_, nblocks_, uint8_t{0});
    }
    s.scaled = false;
  }
  // The attention a^(k) the model applies: A itself, or softmax of the logits in A.
  const float* attention(size_t r) const {
    return softmax() ? scratch_[r].attn.data() : pack_->A_of(r);
  }
  void refresh_attention(size_t r, uint32_t k) {
    const uint32_t T = pack_->T;
    softmax_column(pack_->A_of(r) + size_t(k) * T, T, scratch_[r].attn.data() + size_t(k) * T);
  }

  bool thresholding(size_t r) const {
    const RunPack& p = *pack_;
    return p.algorithm != Algorithm::sgd && !softmax() && p.step[r] >= p.stage1_steps[r] && p.lambda[r] > 0;
  }
  bool renormalizing(size_t r) const {
    const RunPack& p = *pack_;
    return p.algorithm != Algorithm::sgd && !softmax() && p.step[r] >= p.stage1_steps[r] && p.renormalize[r];
  }

  // Phase 1: one sample of run r.
  void forward(uint32_t r, uint32_t b) {
    RunPack& p = *pack_;
    RunScratch& s = scratch_[r];
    const uint32_t N = p.N, T = p.T;
    const SampleResult res = forward_sample(
        p.problem(r).view(), p.V_of(r), attention(r), p.seed[r], static_cast<uint32_t>(p.step[r]), b,
        s.tokens.data() + size_t(b) * T, s.h.data() + size_t(b) * row_, s.counts.data() + size_t(b) * row_,
        s.r.data() + size_t(b) * row_, s.g.data() + size_t(b) * row_, s.scaled ? s.scale.data() : nullptr,
        s.VT.empty() ? nullptr : s.VT.data());
    s.m[b] = res.a_mean;
    s.k[b] = res.k;
    if (softmax()) {
      const double* h = s.h.data() + size_t(b) * row_;
      const double* g = s.g.data() + size_t(b) * row_;
      double hg = 0;
      for (uint32_t j = 0; j < N; ++j) hg += h[j] * g[j];
      s.hg[b] = hg;
    }
  }

  // Phase 2 (sampled algorithms): dV, projection means, V update, in sample order.
  void reduce_and_update_v(size_t r) {
    RunPack& p = *pack_;
    RunScratch& s = scratch_[r];
    const uint32_t N = p.N, B = p.batch_size[r];
    std::fill(s.dV.begin(), s.dV.end(), 0.0);
    for (uint32_t b = 0; b < B; ++b) {
      const double* rr = s.r.data() + size_t(b) * row_;
      const double* h = s.h.data() + size_t(b) * row_;
      double* dV = s.dV.data();
      for (uint32_t i = 0; i < N; ++i) {
        const double ri = rr[i];  // a local: dV and rr are both double*, so rr[i] could alias
        for (uint32_t j = 0; j < N; ++j) dV[size_t(i) * N + j] += ri * h[j];
      }
    }
    // Scratch of the run, not allocated here: a step allocates nothing.
    std::vector<double>& mean = s.mean_sum;
    std::vector<uint8_t>& hit = s.is_touched;
    std::fill(mean.begin(), mean.end(), 0.0);
    std::fill(hit.begin(), hit.end(), uint8_t{0});
    for (uint32_t b = 0; b < B; ++b) {
      mean[s.k[b]] += s.m[b];
      hit[s.k[b]] = 1;
    }
    if (softmax()) {
      std::fill(s.col_hg.begin(), s.col_hg.end(), 0.0);
      for (uint32_t b = 0; b < B; ++b) s.col_hg[s.k[b]] += s.hg[b];
      for (double& x : s.col_hg) x /= B;
      std::fill(mean.begin(), mean.end(), 0.0);  // the logit gradient has zero mean already
    }
    s.touched.clear();
    for (uint32_t k = 0; k < N; ++k) {
      s.col_mean[k] = p.project[r] ? static_cast<float>(mean[k] / B) : 0.0f;
      if (hit[k]) s.touched.push_back(k);
    }
    apply_v_update(r, 1.0 / B);
  }

  // Phase 2 (population): exact gradient terms, optional noise, V update.
  void population_v_update(size_t r) {
    RunPack& p = *pack_;
    RunScratch& s = scratch_[r];
    const uint32_t N = p.N;
    s.pop = population_gradient_terms(p.problem(r), p.V_of(r), attention(r), s.dV.data());
    if (p.noise[r] > 0) {
      const double sd = p.noise[r] / std::sqrt(double(p.batch_size[r]));
      const uint32_t step = static_cast<uint32_t>(p.step[r]);
      double z[4];
      for (size_t e = 0; e < size_t(N) * N; ++e) {
        if ((e & 3u) == 0) gradient_noise_block(p.seed[r], step, 1, static_cast<uint32_t>(e >> 2), z);
        s.dV[e] += sd * z[e & 3u];
      }
    }
    for (uint32_t k = 0; k < N; ++k)
      s.col_mean[k] = p.project[r] && !softmax() ? static_cast<float>(s.pop.mean[k]) : 0.0f;
    apply_v_update(r, 1.0);
  }

  // The noise of positions [blk*64, blk*64+64) of every column, summed per column (the same
  // draws update_a_block adds, regenerated rather than stored).
  void sum_noise_block(uint32_t r, uint32_t blk) {
    const RunPack& p = *pack_;
    RunScratch& s = scratch_[r];
    const uint32_t N = p.N, T = p.T;
    const uint32_t t0 = blk * kBlock, t1 = std::min(T, t0 + kBlock);
    const uint32_t step = static_cast<uint32_t>(p.step[r]);
    for (uint32_t k = 0; k < N; ++k) {
      double z[4], sum = 0;
      uint64_t cached = ~uint64_t{0};
      for (uint32_t t = t0; t < t1; ++t) {
        const uint64_t index = uint64_t(k) * T + t;
        if ((index >> 2) != cached) {
          cached = index >> 2;
          gradient_noise_block(p.seed[r], step, 0, static_cast<uint32_t>(cached), z);
        }
        sum += z[index & 3u];
      }
      s.noise_sum[size_t(blk) * N + k] = sum;
    }
  }

  void add_noise_means(size_t r) {
    const RunPack& p = *pack_;
    RunScratch& s = scratch_[r];
    const uint32_t N = p.N, T = p.T;
    const double sd = p.noise[r] / std::sqrt(double(p.batch_size[r]));
    const uint32_t nblocks = (T + kBlock - 1) / kBlock;
    for (uint32_t k = 0; k < N; ++k) {
      double sum = 0;
      for (uint32_t blk = 0; blk < nblocks; ++blk) sum += s.noise_sum[size_t(blk) * N + k];
      s.col_mean[k] = static_cast<float>(s.pop.mean[k] + sd * sum / T);
    }
  }

  void apply_v_update(size_t r, double scale) {
    RunPack& p = *pack_;
    RunScratch& s = scratch_[r];
    float* V = p.V_of(r);
    const double lr = p.lr_V[r] * scale;
    bool bad = false;
    for (size_t e = 0; e < s.dV.size(); ++e) {
      V[e] = static_cast<float>(V[e] - lr * s.dV[e]);
      bad |= !(std::fabs(V[e]) <= p.divergence_limit[r]);
    }
    s.v_bad = bad;  // acted on in finish_step, so every cause records the same diverged_step
    if (!s.VT.empty()) transpose_v(r);
  }

  void transpose_v(size_t r) {
    const uint32_t N = pack_->N;
    const float* V = pack_->V_of(r);
    float* VT = scratch_[r].VT.data();
    for (uint32_t i = 0; i < N; ++i)
      for (uint32_t j = 0; j < N; ++j) VT[size_t(j) * N + i] = V[size_t(i) * N + j];
  }

  // Phase 3: gradient gather and fused update of positions [blk*64, blk*64+64) of every column.
  void update_a_block(uint32_t r, uint32_t blk) {
    RunPack& p = *pack_;
    RunScratch& s = scratch_[r];
    const uint32_t N = p.N, T = p.T;
    const uint32_t t0 = blk * kBlock, t1 = std::min(T, t0 + kBlock), len = t1 - t0;
    double* tile = tiles_.data() + size_t(omp_get_thread_num()) * N * kBlock;
    const bool sampled = p.algorithm != Algorithm::population;
    const bool thresh = thresholding(r);
    const bool renorm = renormalizing(r);
    const Problem& pb = p.problem(r);
    const uint32_t step = static_cast<uint32_t>(p.step[r]);
    const double noise_sd = sampled ? 0.0 : p.noise[r] / std::sqrt(double(p.batch_size[r]));

    if (sampled) {
      for (uint32_t k : s.touched) std::fill(tile + size_t(k) * kBlock, tile + size_t(k) * kBlock + len, 0.0);
      const uint32_t B = p.batch_size[r];
      for (uint32_t b = 0; b < B; ++b) {
        const uint16_t* tok = s.tokens.data() + size_t(b) * T + t0;
        const double* g = s.g.data() + size_t(b) * row_;
        double* row = tile + size_t(s.k[b]) * kBlock;
        // B token rows read 128 bytes at a time, T apart: too many streams for the hardware
        // prefetcher at large T (the gather ran at a third of this speed at T = 1e5, B = 64).
        prefetch_ahead(tok, 2);
        for (uint32_t i = 0; i < len; ++i) row[i] += g[tok[i]];
      }
    }
    float* A = p.A_of(r);
    const float* attn = softmax() ? s.attn.data() : nullptr;
    const float limit = p.divergence_limit[r];
    bool bad = false;
    auto update_column = [&](uint32_t k) {
      float* a = A + size_t(k) * T + t0;
      AUpdateRule rule{static_cast<float>(p.lr_A[r]), s.inv_mu[k], s.col_mean[k],
                       static_cast<float>(p.lr_A[r] * p.lambda[r]), thresh};
      if (sampled) {
        const double invB = 1.0 / p.batch_size[r];
        const double* row = tile + size_t(k) * kBlock;
        const float* ak = attn ? attn + size_t(k) * T + t0 : nullptr;
        // Separate loops per case: each is branch-free and vectorises. A pending renormalisation
        // is applied on the way (a * c, the float product an eager rescale would have stored).
        const float c = s.scale[k];
        prefetch_ahead(a, 4);  // the touched columns are streams T apart too
        if (!ak) {
          for (uint32_t i = 0; i < len; ++i) a[i] = update_attention(a[i] * c, static_cast<float>(row[i] * invB), rule);
        } else {
          const double hg = s.col_hg[k];
          for (uint32_t i = 0; i < len; ++i)
            a[i] = update_attention(a[i], static_cast<float>(ak[i] * (row[i] * invB - hg)), rule);
        }
      } else {
        // Population: dA = base + slope * a + spike * q, formed on the fly (+ noise).
        const double base = s.pop.base[k], slope = s.pop.slope[k];
        const float* ak = attn ? attn + size_t(k) * T + t0 : a;  // the attention, not the logits
        for (uint32_t i = 0; i < len; ++i) tile[i] = base + slope * static_cast<double>(ak[i]);
        if (noise_sd > 0) {
          double z[4];
          uint64_t cached = ~uint64_t{0};
          for (uint32_t i = 0; i < len; ++i) {
            const uint64_t index = uint64_t(k) * T + t0 + i;
            if ((index >> 2) != cached) {
              cached = index >> 2;
              gradient_noise_block(p.seed[r], step, 0, static_cast<uint32_t>(cached), z);
            }
            tile[i] += noise_sd * z[index & 3u];
          }
        }
        for (uint32_t q = pb.q_ptr[k]; q < pb.q_ptr[k + 1]; ++q)
          if (pb.q_pos[q] >= t0 && pb.q_pos[q] < t1) tile[pb.q_pos[q] - t0] += s.pop.spike[k] * pb.q_w[q];
        if (attn)  // dL/dw = a (dL/da - a . dL/da); the noise is noise on dL/da
          for (uint32_t i = 0; i < len; ++i) tile[i] = static_cast<double>(ak[i]) * (tile[i] - s.pop.a_dot[k]);
        for (uint32_t i = 0; i < len; ++i) a[i] = update_attention(a[i], static_cast<float>(tile[i]), rule);
      }
      // Second pass while the 64 entries are in L1: the divergence test and the column sum.
      const double colsum = tile_sum(a, len, limit, bad);
      if (renorm) s.col_sum[size_t(blk) * N + k] = colsum;
      if (sampled) s.zero_tiles[size_t(k) * nblocks_ + blk] = tile_is_zero(a, len);
    };
    if (sampled) {
      for (uint32_t k : s.touched) update_column(k);  // the others: update_untouched_column
    } else {
      for (uint32_t k = 0; k < N; ++k) update_column(k);
    }
    s.bad[blk] = bad;
  }

  // Phase 3, sampled algorithms, the columns no sample queried: zero gradient and zero mean, so
  // only the threshold and the pending renormalisation change them (nothing at all in plain SGD).
  // Each is streamed from start to end rather than visited 64 entries at a time by every tile
  // (at N = 500, ~440 such columns: that many concurrent streams defeat the hardware
  // prefetcher); its per-block sums and values are exactly what the tiles would give.
  void update_untouched_column(uint32_t r, uint32_t k) {
    RunPack& p = *pack_;
    RunScratch& s = scratch_[r];
    s.col_bad[k] = 0;
    const bool thresh = thresholding(r), renorm = renormalizing(r);
    if (s.is_touched[k] || !(thresh || renorm || s.scaled)) return;
    const uint32_t N = p.N, T = p.T;
    const AUpdateRule rule{static_cast<float>(p.lr_A[r]), s.inv_mu[k], s.col_mean[k],
                           static_cast<float>(p.lr_A[r] * p.lambda[r]), thresh};
    s.col_bad[k] = shrink_column(p.A_of(r) + size_t(k) * T, T, s.scale[k], rule, p.divergence_limit[r],
                                 renorm ? s.col_sum.data() + k : nullptr, N, s.zero_tiles.data() + size_t(k) * nblocks_);
  }

  // Phase 4: renormalisation (column sums reduced in block order), divergence, counters.
  void finish_step(size_t r) {
    RunPack& p = *pack_;
    RunScratch& s = scratch_[r];
    const uint32_t N = p.N;
    auto any = [](const std::vector<uint8_t>& v) { return std::any_of(v.begin(), v.end(), [](uint8_t x) { return x != 0; }); };
    bool bad = s.v_bad || any(s.bad) || any(s.col_bad);
    if (p.algorithm != Algorithm::population) {
      s.scaled = false;  // phase 3 has applied the pending scales of every column
      std::fill(s.scale.begin(), s.scale.end(), 1.0f);
    }
    if (!bad && renormalizing(r)) {
      for (uint32_t k = 0; k < N && !bad; ++k) {
        double sum = 0;
        for (uint32_t blk = 0; blk < nblocks_; ++blk) sum += s.col_sum[size_t(blk) * N + k];
        if (!(sum > 0) || !std::isfinite(sum)) {
          bad = true;  // a column drained to a non-positive sum: SPEC 5 calls the run diverged
          break;
        }
        s.scale[k] = static_cast<float>(1.0 / sum);
      }
      if (bad) {
        std::fill(s.scale.begin(), s.scale.end(), 1.0f);
      } else {
        // Sampled algorithms defer the rescale to the next pass over A (phase 1 reads the
        // queried columns through the scale, phase 3 applies it while updating), saving a full
        // read and write of A per step; evaluate() and download() apply it when asked.
        s.scaled = true;
        // The exact gradient of the next population step reads A itself: rescale now.
        if (p.algorithm == Algorithm::population) apply_pending_scale(r);
      }
    }
    if (!bad && softmax()) {
      if (p.algorithm == Algorithm::population)
        for (uint32_t k = 0; k < N; ++k) refresh_attention(r, k);
      else
        for (uint32_t k : s.touched) refresh_attention(r, k);
    }
    p.step[r] += 1;
    p.samples[r] += p.batch_size[r];
    if (bad) mark_diverged(r);
  }

  void mark_diverged(size_t r) {
    RunPack& p = *pack_;
    if (p.status[r] == RunStatus::diverged) return;
    p.status[r] = RunStatus::diverged;
    p.diverged_step[r] = p.step[r];
  }

  int threads_;
  RunPack* pack_ = nullptr;
  uint32_t nblocks_ = 0;
  uint32_t row_ = 0;  // stride of the per-sample rows h, r, g, counts
  std::vector<RunScratch> scratch_;
  std::vector<Item> sample_items_, block_items_, column_items_;
  std::vector<double> tiles_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) { return std::make_unique<CpuBackend>(threads); }

}  // namespace scb
