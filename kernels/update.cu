// Parameter updates of SPEC 5. Why the kernels are shaped this way:
//  - dv_update_kernel: dV = R^T H / B is a tiny GEMM per run (N x N outputs, B-long sums); a
//    16 x 16 output tile per block with the samples staged in shared memory, summed in sample
//    order (the CPU's order), and the V update and divergence check fused into the epilogue.
//    Large N with one batch size for the pack uses cuBLAS instead (v_update_from_dv_kernel).
//  - a_update_kernel: the one pass over A per step. A block owns a tile of positions of a group
//    of columns of one run; for each column it forms the gradient by gathering g[x_t] over the
//    samples that queried the column, in sample order (deterministic), subtracts the projection
//    mean known from the counts, preconditions, soft-thresholds (update_attention of model.hpp)
//    and writes A once. Renormalisation cannot rescale a column before its sum is known, so it is
//    deferred: the column sums are reduced per tile (cub::BlockReduce), finish_kernel turns them
//    into a pending scale per column, and the next pass (and the forward) reads float(a * scale),
//    exactly the value the CPU stores after rescaling. Population mode forms dA = base + slope a
//    + spike q (+ noise) on the fly and reduces the column statistics of the next step here too;
//    the projection mean of the noisy gradient (SPEC 5) is known before this pass because the
//    noise is regenerated, not stored: population_noise_kernel (stats.cu) sums it per column first.
//    Softmax attention updates the logits in A with dl/dw = a (dl/da - adot), reading a from the
//    attention cache; no threshold or renormalisation, and the cache and the population
//    statistics are refreshed afterwards (softmax.cu).
//  - finish_kernel: one block per run; reduces the per-tile sums in tile order, detects
//    divergence like the CPU backend and advances the run's step counter.
#include <cub/block/block_reduce.cuh>

#include "cuda_common.cuh"

namespace scb::cuda {

namespace {

constexpr uint32_t kDvTile = 16;

__global__ void __launch_bounds__(kDvTile * kDvTile) dv_update_kernel(DevPack d) {
  const uint32_t N = d.N;
  const uint32_t tpd = (N + kDvTile - 1) / kDvTile;
  const uint32_t r = blockIdx.x / (tpd * tpd), tile = blockIdx.x % (tpd * tpd);
  if (!run_live(d, r)) return;
  const uint32_t tx = threadIdx.x % kDvTile, ty = threadIdx.x / kDvTile;
  const uint32_t i0 = (tile / tpd) * kDvTile, j0 = (tile % tpd) * kDvTile;
  const uint32_t i = i0 + ty, j = j0 + tx;
  const uint32_t B = d.batch[r];
  const uint64_t off = d.sample_offset[r];
  __shared__ double rs[kDvTile][kDvTile + 1], hs[kDvTile][kDvTile + 1];
  double sum = 0;
  for (uint32_t b0 = 0; b0 < B; b0 += kDvTile) {
    const uint64_t slot = off + b0 + ty;
    const bool in = b0 + ty < B;
    rs[ty][tx] = in && i0 + tx < N ? d.rr[slot * N + i0 + tx] : 0.0;
    hs[ty][tx] = in && j0 + tx < N ? d.h[slot * N + j0 + tx] : 0.0;
    __syncthreads();
    const uint32_t nb = min(kDvTile, B - b0);
    for (uint32_t bb = 0; bb < nb; ++bb) sum += rs[bb][ty] * hs[bb][tx];
    __syncthreads();
  }
  if (i < N && j < N) {
    float* V = d.V + uint64_t(r) * N * N;
    const size_t e = size_t(i) * N + j;
    const double lr = static_cast<double>(d.lr_V[r]) * (1.0 / B);
    const float v = static_cast<float>(V[e] - lr * sum);
    V[e] = v;
    if (!(fabsf(v) <= d.limit[r])) d.vbad[r] = 1;
  }
}

__global__ void v_to_double_kernel(DevPack d) {
  const uint64_t n = uint64_t(d.R) * d.N * d.N;
  for (uint64_t e = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += uint64_t(gridDim.x) * blockDim.x)
    d.Vd[e] = d.V[e];
}

__global__ void v_update_from_dv_kernel(DevPack d) {
  const uint64_t nn = uint64_t(d.N) * d.N;
  const uint64_t idx = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= nn * d.R) return;
  const uint32_t r = static_cast<uint32_t>(idx / nn);
  if (!run_live(d, r)) return;
  const double lr = static_cast<double>(d.lr_V[r]) * (1.0 / d.batch[r]);
  const float v = static_cast<float>(d.V[idx] - lr * d.dV[idx]);
  d.V[idx] = v;
  if (!(fabsf(v) <= d.limit[r])) d.vbad[r] = 1;
}

__device__ __forceinline__ void store4(float* a, uint32_t t, uint32_t T, bool vec, const float av[4]) {
  if (vec) {
    *reinterpret_cast<float4*>(a + t) = make_float4(av[0], av[1], av[2], av[3]);
  } else {
#pragma unroll
    for (int l = 0; l < 4; ++l)
      if (t + l < T) a[t + l] = av[l];
  }
}

// Softmax is a template parameter: the linear-attention kernel carries none of its code.
template <bool Softmax>
__global__ void __launch_bounds__(kUpdateThreads) a_update_kernel(DevPack d) {
  const TilePlan& tp = d.tp;
  const uint32_t per_run = tp.tiles * tp.col_groups;
  const uint32_t r = blockIdx.x / per_run, rem = blockIdx.x % per_run;
  const uint32_t tile = rem % tp.tiles, group = rem / tp.tiles;
  if (!run_live(d, r) || d.vbad[r]) return;
  const uint32_t N = d.N, T = d.T, tid = threadIdx.x;
  const bool pop = d.population != 0;
  constexpr bool softmax = Softmax;
  const bool thresh = run_thresholding(d, r), renorm = run_renormalizing(d, r);
  const uint32_t k0 = group * tp.col_group, k1 = min(N, k0 + tp.col_group);
  const uint32_t t0 = tile * tp.tile_len;
  const float lrA = d.lr_A[r], tau = d.lr_A[r] * d.lambda[r], limit = d.limit[r];
  const uint32_t B = d.batch[r];
  const double invB = 1.0 / B;
  const uint64_t off = pop ? 0 : d.sample_offset[r];
  const uint32_t* start = pop ? nullptr : d.col_start + uint64_t(r) * (N + 1);
  const uint32_t* samples = pop ? nullptr : d.col_samples + off;
  const double noise_sd = pop && d.noise[r] > 0.0f ? d.noise[r] / sqrt(static_cast<double>(B)) : 0.0;
  const uint64_t seed = d.seed[r];
  const uint32_t step = static_cast<uint32_t>(d.step[r]);
  const DevProblem& pr = d.problems[d.problem_index[r]];
  const bool vec = (T & 3u) == 0;

  using Reduce = cub::BlockReduce<SumK<3>, kUpdateThreads>;
  __shared__ typename Reduce::TempStorage reduce_tmp;
  uint32_t bad = 0;

  for (uint32_t k = k0; k < k1; ++k) {
    const uint64_t rk = uint64_t(r) * N + k;
    const float sc = d.scale[rk];
    const uint32_t s0 = pop ? 0 : start[k], s1 = pop ? 0 : start[k + 1];
    const bool touched = s1 > s0;
    // An untouched column has zero gradient and zero mean: only the threshold or the
    // renormalisation (or a pending scale) can change it.
    if (!pop && !touched && !thresh && !renorm && sc == 1.0f) continue;
    const AUpdateRule rule{lrA, d.inv_mu[rk], d.col_mean[rk], tau, thresh};
    float* col = d.A + rk * T;
    // Softmax: col holds the logits w; dl/dw = a (dl/da - adot) with a from the cache.
    const float* attn = softmax ? d.attn + rk * T : nullptr;
    const double adot = softmax ? d.adot[rk] : 0.0;
    double base = 0, slope = 0, spike = 0;
    uint32_t qb = 0, qe = 0;
    if (pop) {
      base = d.pterm[rk * 3 + 0];
      slope = d.pterm[rk * 3 + 1];
      spike = d.pterm[rk * 3 + 2];
      qb = pr.view.q_ptr[k];
      qe = pr.view.q_ptr[k + 1];
    }
    SumK<3> acc{{0.0, 0.0, 0.0}};
    for (uint32_t j = 0; j < tp.quads_per_thread; ++j) {
      const uint32_t tq = t0 + 4 * (tid + j * kUpdateThreads);
      if (tq >= T) break;
      float av[4];
      load4(col, tq, T, vec, av);
      // Population: first support entry at or after tq (q_pos ascending).
      uint32_t qi = qb;
      if (pop) {
        uint32_t hi = qe;
        while (qi < hi) {
          const uint32_t mid = (qi + hi) / 2;
          if (pr.view.q_pos[mid] < tq) qi = mid + 1;
          else hi = mid;
        }
      }
      NoiseCursor noise{seed, step};
#pragma unroll
      for (int l = 0; l < 4; ++l) {
        const uint32_t t = tq + l;
        if (t < T) {
          const float a = av[l] * sc;
          float grad;
          double qw = 0;
          if (!pop) {
            double gs = 0;
            for (uint32_t s = s0; s < s1; ++s) {
              const uint64_t slot = off + samples[s];
              gs += __ldg(d.g + slot * N + d.tokens[slot * T + t]);
            }
            if constexpr (Softmax)
              grad = touched ? static_cast<float>(static_cast<double>(__ldg(attn + t)) * (gs * invB - adot)) : 0.0f;
            else
              grad = touched ? static_cast<float>(gs * invB) : 0.0f;
          } else {
            const double x = Softmax ? static_cast<double>(__ldg(attn + t)) : static_cast<double>(a);  // attention
            double gd = base + slope * x;
            if (noise_sd > 0) gd += noise_sd * noise.at(uint64_t(k) * T + t);
            while (qi < qe && pr.view.q_pos[qi] < t) ++qi;
            if (qi < qe && pr.view.q_pos[qi] == t) {
              qw = pr.q_w[qi];
              gd += spike * qw;
            }
            if constexpr (Softmax) gd = x * (gd - adot);  // the noise is noise on dL/da
            grad = static_cast<float>(gd);
          }
          const float an = update_attention(a, grad, rule);
          av[l] = an;
          acc.v[0] += an;
          if (pop && !softmax) {
            acc.v[1] += static_cast<double>(an) * an;
            acc.v[2] += qw * an;
          }
          bad |= !(fabsf(an) <= limit);
        }
      }
      store4(col, tq, T, vec, av);
    }
    if (renorm || (pop && !softmax)) {  // softmax: softmax_refresh_kernel reduces the statistics
      const SumK<3> tot = Reduce(reduce_tmp).Reduce(acc, SumKOp<3>());
      if (tid == 0) {
        double* out = d.col_part + ((uint64_t(r) * tp.tiles + tile) * N + k) * 3;
        out[0] = tot.v[0];
        out[1] = tot.v[1];
        out[2] = tot.v[2];
      }
      __syncthreads();
    }
  }
  if (bad) d.abad[r] = 1;
}

constexpr uint32_t kFinishThreads = 128;

__global__ void __launch_bounds__(kFinishThreads) finish_kernel(DevPack d) {
  const uint32_t r = blockIdx.x, tid = threadIdx.x;
  const bool live = run_live(d, r);
  const bool vbad = d.vbad[r] != 0;
  bool bad = d.abad[r] != 0;
  const bool renorm = run_renormalizing(d, r);
  __shared__ uint32_t first_bad;
  if (tid == 0) first_bad = d.N;
  __syncthreads();  // every thread has read the run's state before thread 0 changes it
  if (!live) return;
  if (vbad) {  // V diverged: A was not updated and the step does not count (as on the CPU)
    if (tid == 0) {
      d.status[r] = kDiverged;
      d.diverged_step[r] = d.step[r];
      d.vbad[r] = 0;
      d.abad[r] = 0;
    }
    return;
  }
  const uint32_t N = d.N, tiles = d.tp.tiles;
  const bool pop = d.population != 0 && d.softmax == 0;  // softmax: the refresh wrote pstats
  const bool sums = renorm || pop;
  auto column_sums = [&](uint32_t k, double& s0, double& s1, double& s2) {
    s0 = s1 = s2 = 0;
    for (uint32_t tl = 0; tl < tiles; ++tl) {
      const double* p = d.col_part + ((uint64_t(r) * tiles + tl) * N + k) * 3;
      s0 += p[0];
      s1 += p[1];
      s2 += p[2];
    }
  };
  if (renorm && !bad)
    for (uint32_t k = tid; k < N; k += kFinishThreads) {
      double s0, s1, s2;
      column_sums(k, s0, s1, s2);
      if (!(s0 > 0) || !isfinite(s0)) atomicMin(&first_bad, k);
    }
  __syncthreads();
  const uint32_t fb = first_bad;
  for (uint32_t k = tid; k < N; k += kFinishThreads) {
    const uint64_t rk = uint64_t(r) * N + k;
    double s0 = 0, s1 = 0, s2 = 0;
    if (sums) column_sums(k, s0, s1, s2);
    float sc = 1.0f;
    if (renorm && !bad && k < fb) sc = static_cast<float>(1.0 / s0);
    d.scale[rk] = sc;
    if (pop) {
      const double s = sc;
      d.pstats[rk * 3 + 0] = s0 * s;
      d.pstats[rk * 3 + 1] = s1 * s * s;
      d.pstats[rk * 3 + 2] = s2 * s;
    }
  }
  if (renorm && !bad && fb < N) bad = true;  // a column drained to a non-positive sum
  if (tid == 0) {
    d.step[r] += 1;
    if (bad) {
      d.status[r] = kDiverged;
      d.diverged_step[r] = d.step[r];
    }
    d.abad[r] = 0;
  }
}

}  // namespace

void launch_v_to_double(const DevPack& d, cudaStream_t stream) {
  const uint64_t n = uint64_t(d.R) * d.N * d.N;
  v_to_double_kernel<<<std::min<uint32_t>(ceil_div(n, 256), 65535), 256, 0, stream>>>(d);
}

void launch_dv_update(const DevPack& d, cudaStream_t stream) {
  const uint32_t tpd = ceil_div(d.N, kDvTile);
  dv_update_kernel<<<d.R * tpd * tpd, kDvTile * kDvTile, 0, stream>>>(d);
}

void launch_v_update_from_dv(const DevPack& d, cudaStream_t stream) {
  const uint64_t n = uint64_t(d.R) * d.N * d.N;
  v_update_from_dv_kernel<<<ceil_div(n, 256), 256, 0, stream>>>(d);
}

void launch_a_update(const DevPack& d, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>(uint64_t(d.R) * d.tp.blocks_per_run());
  if (d.softmax) a_update_kernel<true><<<blocks, kUpdateThreads, 0, stream>>>(d);
  else a_update_kernel<false><<<blocks, kUpdateThreads, 0, stream>>>(d);
}

void launch_finish(const DevPack& d, cudaStream_t stream) {
  finish_kernel<<<d.R, kFinishThreads, 0, stream>>>(d);
}

}  // namespace scb::cuda
