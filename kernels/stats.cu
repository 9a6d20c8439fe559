// Population gradients (docs/model.md section 4) and the exact metrics (section 6 there) on the
// device. Why the kernels are shaped this way:
//  - Everything the population loss and its gradients need from A is four numbers per column
//    (sum a, sum a^2, q.a, sum q), so A is never read for them: the update pass of the previous
//    step reduces them (update.cu) and population_terms_kernel (one block per run) combines
//    them with the O(N^2) V terms into dA = base + slope a + spike q per column and the four
//    scalars of dV; population_v_kernel then updates V elementwise (plus Gaussian noise drawn
//    from the Philox contract).
//  - population_noise_kernel: with noise and projection, docs/model.md section 5 projects the noisy A-gradient, so
//    the projection mean needs the column sums of the noise before the update pass. The noise is
//    regenerated (gradient_noise_block of model.hpp), never stored: one block per (run, tile,
//    column group) of the update pass's TilePlan sums its tile with cub::BlockReduce, and
//    population_terms_kernel adds the per-tile sums in tile order (deterministic, like the
//    column statistics) to the exact mean.
//  - column_stats_kernel: one block per (evaluated run, column), a strided pass over the column
//    with the pending renormalisation applied, reducing the seven sums of ColumnStats with
//    cub::BlockReduce; the host finishes the metrics in O(N^2) (metrics_from_stats). Softmax
//    attention: the metrics read the attention cache instead of A, and population_terms_kernel
//    also forms a . dL/da per column from the same four numbers (for dl/dw).
#include <cub/block/block_reduce.cuh>

#include "cuda_common.cuh"

namespace scb::cuda {

namespace {

constexpr uint32_t kTermsThreads = 256;

__global__ void __launch_bounds__(kTermsThreads) population_terms_kernel(DevPack d) {
  const uint32_t r = blockIdx.x, tid = threadIdx.x;
  if (!run_live(d, r)) return;
  const uint32_t N = d.N, T = d.T;
  const DevProblem& pr = d.problems[d.problem_index[r]];
  const double* mu = pr.mu;
  const float* V = d.V + uint64_t(r) * N * N;
  using Reduce = cub::BlockReduce<SumK<4>, kTermsThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ double c[4];
  SumK<4> acc{{0, 0, 0, 0}};
  for (uint32_t i = tid; i < N; i += kTermsThreads) {
    double vmu = 0, tp = 0, tv = 0;
    for (uint32_t j = 0; j < N; ++j) {
      const double v = V[size_t(i) * N + j];
      vmu += v * mu[j];
      tp += mu[j] * pr.P[size_t(i) * N + j] * v;
      tv += mu[j] * v * v;
    }
    d.vmu[uint64_t(r) * N + i] = vmu;
    acc.v[0] += tp;
    acc.v[1] += tv;
    acc.v[2] += mu[i] * vmu;
    acc.v[3] += vmu * vmu;
  }
  const SumK<4> tot = Reduce(tmp).Reduce(acc, SumKOp<4>());
  if (tid == 0) {
    c[0] = tot.v[0] - tot.v[2];  // c1 = tr(D P^T V) - mu^T V mu
    c[1] = tot.v[2];             // c2 = mu^T V mu
    c[2] = tot.v[1] - tot.v[3];  // c3 = tr(D V^T V) - ||V mu||^2
    c[3] = tot.v[3];             // c4 = ||V mu||^2
  }
  __syncthreads();
  const double c1 = c[0], c2 = c[1], c3 = c[2], c4 = c[3];
  const bool softmax = d.softmax != 0;
  const bool project = d.project[r] != 0 && !softmax;  // the logit gradient has zero mean already
  // The noise joins the projection mean: sd * (sum over the column's noise) / T.
  const bool noisy = project && d.noise_part && d.noise[r] > 0.0f;
  const double noise_sd = noisy ? d.noise[r] / sqrt(static_cast<double>(d.batch[r])) : 0.0;
  const uint32_t tiles = d.tp.tiles;
  SumK<4> col{{0, 0, 0, 0}};
  for (uint32_t k = tid; k < N; k += kTermsThreads) {
    const uint64_t rk = uint64_t(r) * N + k;
    const double sa = d.pstats[rk * 3 + 0], n2 = d.pstats[rk * 3 + 1], qa = d.pstats[rk * 3 + 2];
    const double sq = pr.sq[k];
    col.v[0] += mu[k] * qa;
    col.v[1] += mu[k] * sa * sq;
    col.v[2] += mu[k] * n2;
    col.v[3] += mu[k] * sa * sa;
    // dL/da^(k) = mu_k (-c1 q - c2 1 + c3 a + c4 s_a 1)
    const double base = mu[k] * (-c2 + c4 * sa);
    const double slope = mu[k] * c3;
    const double spike = -mu[k] * c1;
    double mean = base + (slope * sa + spike * sq) / T;
    if (noisy) {
      double z = 0;
      for (uint32_t tl = 0; tl < tiles; ++tl) z += d.noise_part[(uint64_t(r) * tiles + tl) * N + k];
      mean += noise_sd * z / T;
    }
    d.pterm[rk * 3 + 0] = base;
    d.pterm[rk * 3 + 1] = slope;
    d.pterm[rk * 3 + 2] = spike;
    d.col_mean[rk] = project ? static_cast<float>(mean) : 0.0f;
    if (softmax) d.adot[rk] = base * sa + slope * n2 + spike * qa;  // a . dL/da^(k)
  }
  __syncthreads();
  const SumK<4> ab = Reduce(tmp).Reduce(col, SumKOp<4>());
  if (tid == 0)
    for (int i = 0; i < 4; ++i) d.pscal[uint64_t(r) * 4 + i] = ab.v[i];
}

__global__ void population_v_kernel(DevPack d) {
  const uint64_t nn = uint64_t(d.N) * d.N;
  const uint64_t idx = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= nn * d.R) return;
  const uint32_t r = static_cast<uint32_t>(idx / nn);
  if (!run_live(d, r)) return;
  const uint32_t N = d.N;
  const uint64_t e = idx % nn;
  const uint32_t i = static_cast<uint32_t>(e / N), j = static_cast<uint32_t>(e % N);
  const DevProblem& pr = d.problems[d.problem_index[r]];
  const double* mu = pr.mu;
  const double* s = d.pscal + uint64_t(r) * 4;
  const double alpha = s[0], beta = s[1], gamma = s[2], delta = s[3];
  const double x = d.V[idx], p = pr.P[e];
  double dv = -alpha * p * mu[j] + (alpha - beta) * mu[i] * mu[j] + gamma * x * mu[j] +
              (delta - gamma) * d.vmu[uint64_t(r) * N + i] * mu[j];
  if (d.noise[r] > 0.0f) {
    const double sd = d.noise[r] / sqrt(static_cast<double>(d.batch[r]));
    dv += sd * NoiseCursor(d.seed[r], static_cast<uint32_t>(d.step[r]), 1).at(e);
  }
  const double lr = static_cast<double>(d.lr_V[r]) * 1.0;
  const float v = static_cast<float>(x - lr * dv);
  d.V[idx] = v;
  if (!(fabsf(v) <= d.limit[r])) d.vbad[r] = 1;
}

// Per (run, tile, column) sums of the A-gradient noise of this step: the same draws, over the
// same tiles and quads of four positions, as a_update_kernel adds.
__global__ void __launch_bounds__(kUpdateThreads) population_noise_kernel(DevPack d) {
  const TilePlan& tp = d.tp;
  const uint32_t per_run = tp.tiles * tp.col_groups;
  const uint32_t r = blockIdx.x / per_run, rem = blockIdx.x % per_run;
  const uint32_t tile = rem % tp.tiles, group = rem / tp.tiles;
  if (!run_live(d, r) || !(d.noise[r] > 0.0f) || d.project[r] == 0) return;
  const uint32_t N = d.N, T = d.T, tid = threadIdx.x;
  const uint32_t k0 = group * tp.col_group, k1 = min(N, k0 + tp.col_group);
  const uint32_t t0 = tile * tp.tile_len;
  const uint64_t seed = d.seed[r];
  const uint32_t step = static_cast<uint32_t>(d.step[r]);
  using Reduce = cub::BlockReduce<double, kUpdateThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  for (uint32_t k = k0; k < k1; ++k) {
    double sum = 0;
    for (uint32_t j = 0; j < tp.quads_per_thread; ++j) {
      const uint32_t tq = t0 + 4 * (tid + j * kUpdateThreads);
      if (tq >= T) break;
      NoiseCursor noise(seed, step);
#pragma unroll
      for (uint32_t l = 0; l < 4; ++l)
        if (tq + l < T) sum += noise.at(uint64_t(k) * T + tq + l);
    }
    const double tot = Reduce(tmp).Sum(sum);
    if (tid == 0) d.noise_part[(uint64_t(r) * tp.tiles + tile) * N + k] = tot;
    __syncthreads();  // tmp is reused by the next column
  }
}

constexpr uint32_t kStatsThreads = 256;

__global__ void __launch_bounds__(kStatsThreads)
    column_stats_kernel(DevPack d, const uint32_t* runs, ColumnStats* out, bool write_pstats) {
  const uint32_t N = d.N, T = d.T, tid = threadIdx.x;
  const uint32_t li = blockIdx.x / N, k = blockIdx.x % N;
  const uint32_t r = runs[li];
  const uint64_t rk = uint64_t(r) * N + k;
  const float* col = attention_col(d, rk);
  const float sc = d.scale[rk];
  const DevProblem& pr = d.problems[d.problem_index[r]];
  SumK<7> acc{{0, 0, 0, 0, 0, 0, 0}};
  for (uint32_t t = tid; t < T; t += kStatsThreads) {
    const float a = col[t] * sc;
    const double x = a, p = x > 0 ? x : 0.0;
    acc.v[0] += x;
    acc.v[1] += x * x;
    acc.v[3] += p;
    acc.v[4] += p * p;
    acc.v[6] += a != 0.0f ? 1.0 : 0.0;
  }
  for (uint32_t s = pr.view.q_ptr[k] + tid; s < pr.view.q_ptr[k + 1]; s += kStatsThreads) {
    const double x = col[pr.view.q_pos[s]] * sc, w = pr.q_w[s];
    acc.v[2] += w * x;
    acc.v[5] += w * (x > 0 ? x : 0.0);
  }
  using Reduce = cub::BlockReduce<SumK<7>, kStatsThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const SumK<7> tot = Reduce(tmp).Reduce(acc, SumKOp<7>());
  if (tid == 0) {
    ColumnStats c;
    c.sa = tot.v[0];
    c.n2 = tot.v[1];
    c.qa = tot.v[2];
    c.sp = tot.v[3];
    c.sp2 = tot.v[4];
    c.qp = tot.v[5];
    c.nnz = tot.v[6];
    if (out) out[uint64_t(li) * N + k] = c;
    if (write_pstats) {
      d.pstats[rk * 3 + 0] = c.sa;
      d.pstats[rk * 3 + 1] = c.n2;
      d.pstats[rk * 3 + 2] = c.qa;
    }
  }
}

__global__ void gather_v_kernel(DevPack d, const uint32_t* runs, uint32_t count, float* out) {
  const uint64_t nn = uint64_t(d.N) * d.N;
  for (uint64_t idx = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < nn * count;
       idx += uint64_t(gridDim.x) * blockDim.x)
    out[idx] = d.V[uint64_t(runs[idx / nn]) * nn + idx % nn];
}

__global__ void materialize_kernel(DevPack d) {
  const uint64_t n = uint64_t(d.R) * d.N * d.T;
  for (uint64_t idx = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += uint64_t(gridDim.x) * blockDim.x) {
    const float sc = d.scale[idx / d.T];
    if (sc != 1.0f) d.A[idx] *= sc;
  }
}

__global__ void reset_scale_kernel(DevPack d) {
  const uint64_t n = uint64_t(d.R) * d.N;
  for (uint64_t idx = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += uint64_t(gridDim.x) * blockDim.x)
    d.scale[idx] = 1.0f;
}

uint32_t grid_for(uint64_t n) { return static_cast<uint32_t>(std::min<uint64_t>((n + 255) / 256, 65535u * 8)); }

}  // namespace

void launch_population_terms(const DevPack& d, cudaStream_t stream) {
  population_terms_kernel<<<d.R, kTermsThreads, 0, stream>>>(d);
  check_launch("population_terms_kernel");
}

void launch_population_v(const DevPack& d, cudaStream_t stream) {
  const uint64_t n = uint64_t(d.R) * d.N * d.N;
  population_v_kernel<<<ceil_div(n, 256), 256, 0, stream>>>(d);
  check_launch("population_v_kernel");
}

void launch_population_noise(const DevPack& d, cudaStream_t stream) {
  if (!d.noise_part) return;
  population_noise_kernel<<<static_cast<unsigned>(uint64_t(d.R) * d.tp.blocks_per_run()), kUpdateThreads, 0, stream>>>(d);
  check_launch("population_noise_kernel");
}

void launch_column_stats(const DevPack& d, const uint32_t* runs, uint32_t count, ColumnStats* out, bool pstats,
                         cudaStream_t stream) {
  if (count == 0) return;
  column_stats_kernel<<<count * d.N, kStatsThreads, 0, stream>>>(d, runs, out, pstats);
  check_launch("column_stats_kernel");
}

void launch_gather_v(const DevPack& d, const uint32_t* runs, uint32_t count, float* out, cudaStream_t stream) {
  if (count == 0) return;
  gather_v_kernel<<<grid_for(uint64_t(count) * d.N * d.N), 256, 0, stream>>>(d, runs, count, out);
  check_launch("gather_v_kernel");
}

void launch_materialize(const DevPack& d, cudaStream_t stream) {
  materialize_kernel<<<grid_for(uint64_t(d.R) * d.N * d.T), 256, 0, stream>>>(d);
  check_launch("materialize_kernel");
  reset_scale_kernel<<<grid_for(uint64_t(d.R) * d.N), 256, 0, stream>>>(d);
  check_launch("reset_scale_kernel");
}

}  // namespace scb::cuda
