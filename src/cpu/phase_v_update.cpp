// Phase 2 of a CPU step: the V gradient by blocks of rows (sum_dv_rows), then one run at a time the projection means per column,
// then the V update with its range check (acted on in step_finish.cpp, so every cause of
// divergence is recorded alike). Sampled algorithms reduce the samples of phase 1 in sample
// order; population mode forms the exact gradient terms, adds the regenerated Gaussian noise,
// and with noise and projection joins the noise's column means to the exact ones (docs/model.md section 5
// projects the noisy gradient): sum_noise_block per (run, block of positions), add_noise_means
// per run.
#include <algorithm>
#include <cmath>

#include "cpu_phases.hpp"
#include "scb/cpu/noise_draw.hpp"

namespace scb::cpu {

namespace {

void apply_v_update(CpuState& st, size_t r, double scale) {
  RunPack& p = *st.pack;
  RunScratch& s = st.runs[r];
  float* V = p.V_of(r);
  const double lr = p.lr_V[r] * scale;
  bool bad = false;
  for (size_t e = 0; e < s.dV.size(); ++e) {
    V[e] = static_cast<float>(V[e] - lr * s.dV[e]);
    bad |= !(std::fabs(V[e]) <= p.divergence_limit[r]);
  }
  s.v_bad = bad;
  if (!s.VT.empty()) transpose_v(st, r);
}

// sum_dv_rows for N <= 4: the N x N sums stay in registers over the batch, where in memory each
// addition waited on the store of the one before it (the same additions in the same order).
template <uint32_t N>
void sum_dv_small(const CpuState& st, const RunScratch& s, uint32_t B, double* dV) {
  double acc[N * N] = {};
  for (uint32_t b = 0; b < B; ++b) {
    const double* rr = s.r.data() + size_t(b) * st.row;
    const double* h = s.h.data() + size_t(b) * st.row;
    for (uint32_t i = 0; i < N; ++i)
      for (uint32_t j = 0; j < N; ++j) acc[i * N + j] += rr[i] * h[j];
  }
  std::copy(acc, acc + N * N, dV);
}


}  // namespace

// Rows [blk * kDvRows, ...) of dV = R H^T (unscaled), each entry in sample order: a block of
// rows is a work item, so one large run's dV (N = 500, B = 64: 16 M products) is not one thread's.
void sum_dv_rows(CpuState& st, uint32_t r, uint32_t blk) {
  RunScratch& s = st.runs[r];
  const uint32_t N = st.pack->N, B = st.pack->batch_size[r];
  switch (N) {
    case 2: return sum_dv_small<2>(st, s, B, s.dV.data());
    case 3: return sum_dv_small<3>(st, s, B, s.dV.data());
    case 4: return sum_dv_small<4>(st, s, B, s.dV.data());
    default: break;
  }
  const uint32_t i0 = blk * kDvRows, i1 = std::min(N, i0 + kDvRows);
  sum_outer_rows(s.r.data(), s.h.data(), st.row, B, N, i0, i1, s.dV.data());
}

void reduce_and_update_v(CpuState& st, size_t r) {
  RunPack& p = *st.pack;
  RunScratch& s = st.runs[r];
  const uint32_t N = p.N, B = p.batch_size[r];
  // Scratch of the run, not allocated here: a step allocates nothing.
  std::vector<double>& mean = s.mean_sum;
  std::vector<uint8_t>& hit = s.is_touched;
  std::fill(mean.begin(), mean.end(), 0.0);
  std::fill(hit.begin(), hit.end(), uint8_t{0});
  for (uint32_t b = 0; b < B; ++b) {
    mean[s.k[b]] += s.m[b];
    hit[s.k[b]] = 1;
  }
  if (st.softmax()) {
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
  if (!s.column_begin.empty())  // phase 3 gathers column by column
    list_samples_by_column(s.k.data(), B, N, s.column_begin.data(), s.by_column.data());
  apply_v_update(st, r, 1.0 / B);
}

void population_v_update(CpuState& st, size_t r) {
  RunPack& p = *st.pack;
  RunScratch& s = st.runs[r];
  const uint32_t N = p.N;
  s.pop = population_gradient_terms(p.problem(r), p.V_of(r), st.attention(r), s.dV.data());
  if (p.noise[r] > 0) {
    const double sd = p.noise[r] / std::sqrt(double(p.batch_size[r]));
    double noise[256];
    for (size_t e0 = 0; e0 < size_t(N) * N; e0 += 256) {
      const uint32_t n = static_cast<uint32_t>(std::min<size_t>(256, size_t(N) * N - e0));
      draw_noise(p.seed[r], static_cast<uint32_t>(p.step[r]), 1, e0, n, noise);
      for (uint32_t i = 0; i < n; ++i) s.dV[e0 + i] += sd * noise[i];
    }
  }
  for (uint32_t k = 0; k < N; ++k)
    s.col_mean[k] = p.project[r] && !st.softmax() ? static_cast<float>(s.pop.mean[k]) : 0.0f;
  apply_v_update(st, r, 1.0);
}

// The noise of positions [blk*64, blk*64+64) of every column, summed per column (the same draws
// update_a_block adds: kept for it in s.noise_kept where that fits, else drawn again there).
void sum_noise_block(CpuState& st, uint32_t r, uint32_t blk) {
  const RunPack& p = *st.pack;
  RunScratch& s = st.runs[r];
  const uint32_t N = p.N, T = p.T;
  const uint32_t t0 = blk * kBlock, t1 = std::min(T, t0 + kBlock);
  // Eight columns' noise, then their sums side by side (each over i ascending from +0, as one
  // column's loop would add it): one column's sum alone waits on every addition's latency.
  double drawn[8][kBlock];
  static constexpr double kZeros[kBlock] = {};  // the missing columns of the last eight: summed, never kept
  const double* noise[8];
  for (uint32_t k0 = 0; k0 < N; k0 += 8) {
    const uint32_t cols = std::min(8u, N - k0);
    for (uint32_t c = 0; c < 8; ++c) {
      if (c >= cols) {
        noise[c] = kZeros;
        continue;
      }
      double* out = s.noise_kept.empty() ? drawn[c] : s.noise_kept.data() + kept_noise_at(N, k0 + c, blk);
      draw_noise(p.seed[r], static_cast<uint32_t>(p.step[r]), 0, uint64_t(k0 + c) * T + t0, t1 - t0, out);
      noise[c] = out;
    }
    double sum[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (uint32_t i = 0; i < t1 - t0; ++i)
      for (uint32_t c = 0; c < 8; ++c) sum[c] += noise[c][i];
    for (uint32_t c = 0; c < cols; ++c) s.noise_sum[size_t(blk) * N + k0 + c] = sum[c];
  }
}

void add_noise_means(CpuState& st, size_t r) {
  const RunPack& p = *st.pack;
  RunScratch& s = st.runs[r];
  const uint32_t N = p.N, T = p.T;
  const double sd = p.noise[r] / std::sqrt(double(p.batch_size[r]));
  for (uint32_t k = 0; k < N; ++k) {
    double sum = 0;
    for (uint32_t blk = 0; blk < st.nblocks; ++blk) sum += s.noise_sum[size_t(blk) * N + k];
    s.col_mean[k] = static_cast<float>(s.pop.mean[k] + sd * sum / T);
  }
}

}  // namespace scb::cpu
