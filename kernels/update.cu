// Parameter updates of docs/model.md section 5. Why the kernels are shaped this way:
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
//    the projection mean of the noisy gradient (docs/model.md section 5) is known before this pass because the
//    noise is regenerated, not stored: population_noise_kernel (stats.cu) sums it per column first.
//    Softmax attention updates the logits in A with dl/dw = a (dl/da - adot), reading a from the
//    attention cache; no threshold or renormalisation, and the cache and the population
//    statistics are refreshed afterwards (softmax.cu).
//  - finish_kernel: one block per run; reduces the per-tile sums in tile order and takes the
//    end-of-step decisions of scb/core/step_rules.hpp (the CPU backend's step_finish calls the
//    same functions): divergence whatever its cause, pending scales (all 1 for a diverged run),
//    step, samples and diverged_step.
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

// What every column of one block's pass needs from its run, read once per block.
struct ARun {
  uint32_t r, tile;
  bool pop, thresh, renorm, vec;
  float lrA, tau, limit;
  double invB, noise_sd;
  uint64_t off, seed;
  uint32_t step;
  const uint32_t* start;    // sampled: the run's column starts
  const uint32_t* samples;  // sampled: the run's samples grouped by column
  const DevProblem* pr;
};

__device__ __forceinline__ ARun a_run(const DevPack& d, uint32_t r, uint32_t tile) {
  ARun a;
  a.r = r;
  a.tile = tile;
  a.pop = d.population != 0;
  const StepStage stage = run_stage(d, r);
  a.thresh = stage.threshold;
  a.renorm = stage.renormalize;
  a.vec = (d.T & 3u) == 0;
  a.lrA = d.lr_A[r];
  a.tau = d.lr_A[r] * d.lambda[r];
  a.limit = d.limit[r];
  const uint32_t B = d.batch[r];
  a.invB = 1.0 / B;
  a.noise_sd = a.pop && d.noise[r] > 0.0f ? d.noise[r] / sqrt(static_cast<double>(B)) : 0.0;
  a.off = a.pop ? 0 : d.sample_offset[r];
  a.seed = d.seed[r];
  a.step = static_cast<uint32_t>(d.step[r]);
  a.start = a.pop ? nullptr : d.col_start + uint64_t(r) * (d.N + 1);
  a.samples = a.pop ? nullptr : d.col_samples + a.off;
  a.pr = d.problems + d.problem_index[r];
  return a;
}

// Sampled algorithms: the gradient at position t of a column, gathered from g over the samples
// s0 .. s1 that queried it, in sample order.
template <bool Softmax>
__device__ __forceinline__ float sampled_grad(const DevPack& d, const ARun& ar, uint32_t s0, uint32_t s1,
                                              const float* attn, double adot, uint32_t t) {
  const uint32_t N = d.N, T = d.T;
  double gs = 0;
  for (uint32_t s = s0; s < s1; ++s) {
    const uint64_t slot = ar.off + ar.samples[s];
    gs += __ldg(d.g + slot * N + d.tokens[slot * T + t]);
  }
  const bool touched = s1 > s0;
  if constexpr (Softmax)
    return touched ? static_cast<float>(static_cast<double>(__ldg(attn + t)) * (gs * ar.invB - adot)) : 0.0f;
  return touched ? static_cast<float>(gs * ar.invB) : 0.0f;
}

// Population: dA = base + slope a + spike q (+ noise) of one column.
struct PopColumn {
  double base = 0, slope = 0, spike = 0;
  uint32_t qb = 0, qe = 0;  // the column's support entries
};

// The first support entry at or after tq (q_pos ascending).
__device__ __forceinline__ uint32_t first_support_at(const uint32_t* q_pos, uint32_t qb, uint32_t qe, uint32_t tq) {
  uint32_t qi = qb, hi = qe;
  while (qi < hi) {
    const uint32_t mid = (qi + hi) / 2;
    if (q_pos[mid] < tq) qi = mid + 1;
    else hi = mid;
  }
  return qi;
}

// The population gradient at position t (x: the attention there); qi walks the support, qw is
// the weight of q at t (0 off the support).
template <bool Softmax>
__device__ __forceinline__ float population_grad(const ARun& ar, const PopColumn& pc, double x, double adot, uint64_t index,
                                                 uint32_t t, uint32_t& qi, NoiseCursor& noise, double& qw) {
  const uint32_t* q_pos = ar.pr->view.q_pos;
  double gd = pc.base + pc.slope * x;
  if (ar.noise_sd > 0) gd += ar.noise_sd * noise.at(index);
  while (qi < pc.qe && q_pos[qi] < t) ++qi;
  if (qi < pc.qe && q_pos[qi] == t) {
    qw = ar.pr->q_w[qi];
    gd += pc.spike * qw;
  }
  if constexpr (Softmax) gd = x * (gd - adot);  // the noise is noise on dL/da
  return static_cast<float>(gd);
}

using AReduce = cub::BlockReduce<SumK<3>, kUpdateThreads>;

// The block's tile of column k: gradient, update_attention, range check, and the column sums of
// the tile (sum a; population also sum a^2 and q.a) for finish_kernel.
template <bool Pop, bool Softmax>
__device__ __forceinline__ void update_column(const DevPack& d, const ARun& ar, uint32_t k,
                                              typename AReduce::TempStorage& reduce_tmp, uint32_t& bad) {
  const uint32_t N = d.N, T = d.T, tid = threadIdx.x;
  const uint64_t rk = uint64_t(ar.r) * N + k;
  const float sc = d.scale[rk];
  const uint32_t s0 = Pop ? 0 : ar.start[k], s1 = Pop ? 0 : ar.start[k + 1];
  // An untouched column has zero gradient and zero mean: only the threshold or the
  // renormalisation (or a pending scale) can change it.
  if (!Pop && s1 == s0 && !ar.thresh && !ar.renorm && sc == 1.0f) return;
  const AUpdateRule rule{ar.lrA, d.inv_mu[rk], d.col_mean[rk], ar.tau, ar.thresh};
  float* col = d.A + rk * T;
  // Softmax: col holds the logits w; dl/dw = a (dl/da - adot) with a from the cache.
  const float* attn = Softmax ? d.attn + rk * T : nullptr;
  const double adot = Softmax ? d.adot[rk] : 0.0;
  PopColumn pc;
  if constexpr (Pop) {
    pc = PopColumn{d.pterm[rk * 3 + 0], d.pterm[rk * 3 + 1], d.pterm[rk * 3 + 2], ar.pr->view.q_ptr[k],
                   ar.pr->view.q_ptr[k + 1]};
  }
  SumK<3> acc{{0.0, 0.0, 0.0}};
  const uint32_t t0 = ar.tile * d.tp.tile_len;
  for (uint32_t j = 0; j < d.tp.quads_per_thread; ++j) {
    const uint32_t tq = t0 + 4 * (tid + j * kUpdateThreads);
    if (tq >= T) break;
    float av[4];
    load4(col, tq, T, ar.vec, av);
    uint32_t qi = Pop ? first_support_at(ar.pr->view.q_pos, pc.qb, pc.qe, tq) : pc.qb;
    NoiseCursor noise(ar.seed, ar.step);
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      const uint32_t t = tq + l;
      if (t < T) {
        const float a = av[l] * sc;
        double qw = 0;
        float grad;
        if constexpr (!Pop) {
          grad = sampled_grad<Softmax>(d, ar, s0, s1, attn, adot, t);
        } else {
          const double x = Softmax ? static_cast<double>(__ldg(attn + t)) : static_cast<double>(a);  // attention
          grad = population_grad<Softmax>(ar, pc, x, adot, uint64_t(k) * T + t, t, qi, noise, qw);
        }
        const float an = update_attention(a, grad, rule);
        av[l] = an;
        acc.v[0] += an;
        if constexpr (Pop && !Softmax) {
          acc.v[1] += static_cast<double>(an) * an;
          acc.v[2] += qw * an;
        }
        bad |= !(fabsf(an) <= ar.limit);
      }
    }
    store4(col, tq, T, ar.vec, av);
  }
  if (ar.renorm || (Pop && !Softmax)) {  // softmax: softmax_refresh_kernel reduces the statistics
    const SumK<3> tot = AReduce(reduce_tmp).Reduce(acc, SumKOp<3>());
    if (tid == 0) {
      double* out = d.col_part + ((uint64_t(ar.r) * d.tp.tiles + ar.tile) * N + k) * 3;
      out[0] = tot.v[0];
      out[1] = tot.v[1];
      out[2] = tot.v[2];
    }
    __syncthreads();
  }
}

// Population mode and softmax attention are template parameters: each kernel carries only its own
// path's code and registers (one kernel for both modes sat at ptxas's register limit). A step
// whose V left the range still updates A: the run is judged at the end of the step, as on the CPU.
// Blocks per SM the register budget must allow, i.e. at most 65536 / (128 x blocks) registers a
// thread (sampled: 80, population: 128). Left to itself ptxas aims at an occupancy it can only
// reach by spilling (the build forbids spills): measured with -Xptxas -v, the sampled kernels use
// 72-80 registers, the population kernels 112-116 (sm_80, sm_90); a population budget of 96 spills.
template <bool Pop>
constexpr int kUpdateMinBlocks = Pop ? 4 : 6;

template <bool Pop, bool Softmax>
__global__ void __launch_bounds__(kUpdateThreads, kUpdateMinBlocks<Pop>) a_update_kernel(DevPack d) {
  const TilePlan& tp = d.tp;
  const uint32_t per_run = tp.tiles * tp.col_groups;
  const uint32_t r = blockIdx.x / per_run, rem = blockIdx.x % per_run;
  const uint32_t tile = rem % tp.tiles, group = rem / tp.tiles;
  if (!run_live(d, r)) return;
  const ARun ar = a_run(d, r, tile);
  const uint32_t k0 = group * tp.col_group, k1 = min(d.N, k0 + tp.col_group);
  __shared__ typename AReduce::TempStorage reduce_tmp;
  uint32_t bad = 0;
  for (uint32_t k = k0; k < k1; ++k) update_column<Pop, Softmax>(d, ar, k, reduce_tmp, bad);
  if (bad) d.abad[r] = 1;
}

constexpr uint32_t kFinishThreads = 128;

// The column sums of run r's column k over the tiles, in tile order (sum a, sum a^2, q.a).
__device__ __forceinline__ void column_sums(const DevPack& d, uint32_t r, uint32_t k, double& s0, double& s1,
                                            double& s2) {
  s0 = s1 = s2 = 0;
  for (uint32_t tl = 0; tl < d.tp.tiles; ++tl) {
    const double* p = d.col_part + ((uint64_t(r) * d.tp.tiles + tl) * d.N + k) * 3;
    s0 += p[0];
    s1 += p[1];
    s2 += p[2];
  }
}

// One block per run: the decisions of step_rules.hpp (the CPU's step_finish makes the same ones)
// from the run's flags and column sums, then the pending scales, the population statistics of
// the next step and the counters.
__global__ void __launch_bounds__(kFinishThreads) finish_kernel(DevPack d) {
  const uint32_t r = blockIdx.x, tid = threadIdx.x;
  const bool live = run_live(d, r);
  const StepStage stage = run_stage(d, r);
  const bool vbad = d.vbad[r] != 0, abad = d.abad[r] != 0;
  __shared__ uint32_t drained;
  if (tid == 0) drained = 0;
  __syncthreads();  // every thread has read the run's state before thread 0 changes it
  if (!live) return;
  const uint32_t N = d.N;
  const bool pop = d.population != 0 && d.softmax == 0;  // softmax: the refresh wrote pstats
  double s0, s1, s2;
  if (column_sums_decide(stage, vbad, abad))
    for (uint32_t k = tid; k < N; k += kFinishThreads) {
      column_sums(d, r, k, s0, s1, s2);
      if (column_drained(s0)) atomicOr(&drained, 1u);
    }
  __syncthreads();
  const StepVerdict verdict = step_verdict(stage, StepFaults{vbad, abad, drained != 0});
  for (uint32_t k = tid; k < N; k += kFinishThreads) {
    const uint64_t rk = uint64_t(r) * N + k;
    s0 = s1 = s2 = 0;
    if (stage.renormalize || pop) column_sums(d, r, k, s0, s1, s2);
    const float sc = pending_scale(verdict, s0);
    d.scale[rk] = sc;
    if (pop) {
      const double s = sc;
      d.pstats[rk * 3 + 0] = s0 * s;
      d.pstats[rk * 3 + 1] = s1 * s * s;
      d.pstats[rk * 3 + 2] = s2 * s;
    }
  }
  if (tid == 0) {
    const RunCounters c = count_step(RunCounters{d.step[r], d.samples[r], d.diverged_step[r], d.status[r] == kDiverged},
                                     d.batch[r], verdict.diverged);
    d.step[r] = c.step;
    d.samples[r] = c.samples;
    d.diverged_step[r] = c.diverged_step;
    if (c.diverged) d.status[r] = kDiverged;
    d.vbad[r] = 0;
    d.abad[r] = 0;
  }
}

}  // namespace

void launch_v_to_double(const DevPack& d, cudaStream_t stream) {
  const uint64_t n = uint64_t(d.R) * d.N * d.N;
  v_to_double_kernel<<<std::min<uint32_t>(ceil_div(n, 256), 65535), 256, 0, stream>>>(d);
  check_launch("v_to_double_kernel");
}

void launch_dv_update(const DevPack& d, cudaStream_t stream) {
  const uint32_t tpd = ceil_div(d.N, kDvTile);
  dv_update_kernel<<<d.R * tpd * tpd, kDvTile * kDvTile, 0, stream>>>(d);
  check_launch("dv_update_kernel");
}

void launch_v_update_from_dv(const DevPack& d, cudaStream_t stream) {
  const uint64_t n = uint64_t(d.R) * d.N * d.N;
  v_update_from_dv_kernel<<<ceil_div(n, 256), 256, 0, stream>>>(d);
  check_launch("v_update_from_dv_kernel");
}

void launch_a_update(const DevPack& d, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>(uint64_t(d.R) * d.tp.blocks_per_run());
  if (d.population) {
    if (d.softmax) a_update_kernel<true, true><<<blocks, kUpdateThreads, 0, stream>>>(d);
    else a_update_kernel<true, false><<<blocks, kUpdateThreads, 0, stream>>>(d);
  } else {
    if (d.softmax) a_update_kernel<false, true><<<blocks, kUpdateThreads, 0, stream>>>(d);
    else a_update_kernel<false, false><<<blocks, kUpdateThreads, 0, stream>>>(d);
  }
  check_launch("a_update_kernel");
}

void launch_finish(const DevPack& d, cudaStream_t stream) {
  finish_kernel<<<d.R, kFinishThreads, 0, stream>>>(d);
  check_launch("finish_kernel");
}

}  // namespace scb::cuda
