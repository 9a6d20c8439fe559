// Softmax attention (a^(k) = softmax(w^(k)), docs/model.md section 2) on the device: the attention cache
// attn = softmax of the logits held in A, refreshed after each update of a column, as the CPU
// backend does with softmax_column. Why the kernel is shaped this way:
//  - softmax_refresh_kernel: one block per (run, column). A column can hold 100,000 positions,
//    so the block strides over it three times (maximum, sum of exponentials, write) instead of
//    one thread running softmax_column of model.hpp. The element formula is softmax_column's
//    (float maximum, float expf(w - m), their sum in double, float(1 / sum) as the factor); only
//    the summation order differs (cub::BlockReduce, fixed: deterministic, equal to the CPU to
//    rounding). Population mode reduces the column's sum a, sum a^2 and q.a of the new attention
//    in the same pass (the next step's gradient terms), which the update pass does for A itself
//    under linear attention.
//  - It runs after the update pass and before finish_kernel, so a run whose step diverged (vbad
//    or abad still set) keeps its previous attention, like the CPU (step_verdict); sampled runs refresh only the
//    columns some sample queried (the others' logits did not change).
#include <cub/block/block_reduce.cuh>

#include "cuda_common.cuh"

namespace scb::cuda {

namespace {

constexpr uint32_t kSoftmaxThreads = 256;

struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return b > a ? b : a; }
};

__global__ void __launch_bounds__(kSoftmaxThreads) softmax_refresh_kernel(DevPack d, bool all) {
  const uint32_t N = d.N, T = d.T, tid = threadIdx.x;
  const uint32_t r = blockIdx.x / N, k = blockIdx.x % N;
  const uint64_t rk = uint64_t(r) * N + k;
  const bool pop = d.population != 0;
  if (!all) {
    // The verdict of step_rules.hpp before finish_kernel takes it: softmax never renormalises,
    // so a bad V or A is all that can stop the refresh.
    if (!run_live(d, r)) return;
    if (!step_verdict(run_stage(d, r), StepFaults{d.vbad[r] != 0, d.abad[r] != 0, false}).refresh_attention) return;
    if (!pop) {
      const uint32_t* start = d.col_start + uint64_t(r) * (N + 1);
      if (start[k + 1] == start[k]) return;  // no sample queried the column: w did not change
    }
  }
  const float* w = d.A + rk * T;  // scale stays 1 under softmax attention
  float* a = d.attn + rk * T;

  union Tmp {
    typename cub::BlockReduce<float, kSoftmaxThreads>::TempStorage max;
    typename cub::BlockReduce<double, kSoftmaxThreads>::TempStorage sum;
    typename cub::BlockReduce<SumK<3>, kSoftmaxThreads>::TempStorage stats;
  };
  __shared__ Tmp tmp;
  __shared__ float m_shared;
  __shared__ double s_shared;

  float m = -INFINITY;
  for (uint32_t t = tid; t < T; t += kSoftmaxThreads) m = w[t] > m ? w[t] : m;
  m = cub::BlockReduce<float, kSoftmaxThreads>(tmp.max).Reduce(m, MaxOp());
  if (tid == 0) m_shared = m;
  __syncthreads();
  m = m_shared;
  double s = 0;
  for (uint32_t t = tid; t < T; t += kSoftmaxThreads) s += static_cast<double>(expf(w[t] - m));
  s = cub::BlockReduce<double, kSoftmaxThreads>(tmp.sum).Sum(s);
  if (tid == 0) s_shared = s;
  __syncthreads();
  const float inv = static_cast<float>(1.0 / s_shared);
  SumK<3> acc{{0.0, 0.0, 0.0}};
  for (uint32_t t = tid; t < T; t += kSoftmaxThreads) {
    const float x = expf(w[t] - m) * inv;
    a[t] = x;
    acc.v[0] += x;
    acc.v[1] += static_cast<double>(x) * x;
  }
  if (!pop) return;
  const DevProblem& pr = d.problems[d.problem_index[r]];
  for (uint32_t q = pr.view.q_ptr[k] + tid; q < pr.view.q_ptr[k + 1]; q += kSoftmaxThreads)
    acc.v[2] += pr.q_w[q] * static_cast<double>(expf(w[pr.view.q_pos[q]] - m) * inv);
  __syncthreads();  // tmp is reused
  const SumK<3> tot = cub::BlockReduce<SumK<3>, kSoftmaxThreads>(tmp.stats).Reduce(acc, SumKOp<3>());
  if (tid == 0) {
    d.pstats[rk * 3 + 0] = tot.v[0];
    d.pstats[rk * 3 + 1] = tot.v[1];
    d.pstats[rk * 3 + 2] = tot.v[2];
  }
}

}  // namespace

void launch_softmax_refresh(const DevPack& d, bool all, cudaStream_t stream) {
  if (!d.softmax || d.R == 0) return;
  softmax_refresh_kernel<<<d.R * d.N, kSoftmaxThreads, 0, stream>>>(d, all);
  check_launch("softmax_refresh_kernel");
}

}  // namespace scb::cuda
