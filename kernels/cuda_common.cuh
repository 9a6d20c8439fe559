#pragma once
// Shared by the CUDA backend's translation units: the device-side view of a RunPack (plain
// pointers passed by value to every kernel), small device helpers, and the launchers each
// kernel file exports to the host orchestration in cuda_backend.cu.
//
// Layouts (R runs, S = total samples, slot = sample_offset[r] + b):
//   V[r*N*N + i*N + j], A[r*N*T + k*T + t] (as the RunPack), scale[r*N + k] (pending
//   renormalisation: the true column is float(A * scale), exactly what the CPU stores),
//   tokens[slot*T + t] (uint16), h/r/g/counts[slot*N + j], part_*[(slot*chunks + c)*N + j].
// Softmax attention: A holds the logits w (scale stays 1: no threshold, no renormalisation) and
//   attn[r*N*T + k*T + t] the attention softmax(w^(k)) the model applies, refreshed after each
//   update of a column (softmax.cu).
#include <cuda_runtime.h>

#include <cstdint>

#include <stdexcept>
#include <string>

#include "scb/core/hd.hpp"
#include "scb/core/model.hpp"
#include "scb/core/philox.hpp"
#include "scb/core/step_rules.hpp"
#include "scb/cuda/cuda_plan.hpp"

namespace scb::cuda {

enum : uint8_t { kRunning = 0, kDone = 1, kDiverged = 2 };

struct DevPack {
  uint32_t N, T, R;
  uint32_t population;   // algorithm == population
  uint32_t sgd;          // algorithm == sgd
  uint32_t gemm;         // dense products through cuBLAS
  uint32_t softmax;      // attention = softmax of the logits in A
  ForwardPlan fp;
  TilePlan tp;
  // Problems.
  const DevProblem* problems;
  const uint32_t* problem_index;
  // Hyperparameters (per run).
  const uint64_t* seed;
  const uint32_t* batch;
  const float *lr_V, *lr_A, *lambda, *noise, *limit;
  const int64_t *steps, *stage1;
  const uint8_t *project, *renormalize;
  // State (per run).
  int64_t* step;
  int64_t* samples;
  uint8_t* status;
  int64_t* diverged_step;
  uint32_t* vbad;          // V left the finite/limit range this step
  uint32_t* abad;          // A left the finite/limit range this step
  // Parameters and per-run scratch.
  float* V;
  float* A;
  float* scale;            // R x N pending column scales (1 = none)
  const float* inv_mu;     // R x N (1/mu_k if preconditioning, else 1)
  float* col_mean;         // R x N projection means of this step
  double* pstats;          // R x N x 3: sum a, sum a^2, q.a (population)
  double* col_part;        // R x tiles x N x 3 partial column sums of the update pass
  // Samples.
  const uint64_t* sample_offset;  // R + 1
  const uint32_t* sample_run;     // S
  const uint32_t* sample_index;   // S
  uint16_t* tokens;
  double* part_h;
  uint32_t* part_c;
  double *h, *rr, *g;
  uint32_t* counts;
  uint32_t *kq, *xo;
  double* m;
  uint32_t* col_start;     // R x (N + 1): samples of column k are col_samples[off + start[k] ..)
  uint32_t* col_samples;   // S: sample indices b grouped by query token, in sample order
  // cuBLAS path.
  double* Vd;              // R x N x N: V in double
  double* dV;              // R x N x N
  // Population.
  double* pterm;           // R x N x 3: base, slope, spike
  double* vmu;             // R x N
  double* pscal;           // R x 4: alpha, beta, gamma, delta
  // Softmax attention.
  float* attn;             // R x N x T attention cache (null for linear attention)
  double* adot;            // R x N: a . dL/da per column (population), or the sum over the
                           // column's samples of h.g / B (sampled): dl/dw = a (dl/da - adot)
  double* hg;              // S: h.g of each sample (sampled softmax)
  double* noise_part;      // R x tiles x N per-tile column sums of the A-gradient noise (null: no
                           // run projects a noisy population gradient)
};

__device__ __forceinline__ bool run_live(const DevPack& d, uint32_t r) {
  return d.status[r] == kRunning && d.step[r] < d.steps[r];
}
// The stage of run r's current step (step_rules.hpp, as on the CPU).
__device__ __forceinline__ StepStage run_stage(const DevPack& d, uint32_t r) {
  return step_stage(d.sgd != 0, d.softmax != 0, d.step[r], d.stage1[r], d.lambda[r], d.renormalize[r] != 0);
}
// Column rk = r*N + k of the attention the model applies: A (whose pending scale the caller
// applies) or the softmax cache.
__device__ __forceinline__ const float* attention_col(const DevPack& d, uint64_t rk) {
  return (d.softmax ? d.attn : d.A) + rk * d.T;
}

__device__ __forceinline__ uint32_t pick4u(uint32_t i, const uint32_t x[4]) {
  return i == 0 ? x[0] : (i == 1 ? x[1] : (i == 2 ? x[2] : x[3]));
}

// Sums of several doubles reduced together by cub::BlockReduce.
template <int K>
struct SumK {
  double v[K];
};
template <int K>
struct SumKOp {
  __device__ __forceinline__ SumK<K> operator()(const SumK<K>& a, const SumK<K>& b) const {
    SumK<K> c;
#pragma unroll
    for (int i = 0; i < K; ++i) c.v[i] = a.v[i] + b.v[i];
    return c;
  }
};

inline void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA backend: ") + what + ": " + cudaGetErrorString(e));
}
// After every launch: a launch that failed (bad configuration, too much shared memory) or an
// earlier asynchronous error surfaces here, named.
inline void check_launch(const char* kernel) { check_cuda(cudaGetLastError(), kernel); }

// ---- Launchers (each returns after enqueueing on `stream`, its launch checked) ---------------
// forward.cu
void launch_forward(const DevPack& d, uint64_t samples, cudaStream_t stream);
void launch_sample_finish(const DevPack& d, uint64_t samples, cudaStream_t stream);
void launch_gemm_residual(const DevPack& d, uint64_t samples, cudaStream_t stream);  // r -= e_{x_o}, m
void launch_gemm_mean(const DevPack& d, uint64_t samples, cudaStream_t stream);
void launch_run_reduce(const DevPack& d, cudaStream_t stream);
void setup_forward_attributes(const ForwardPlan& fp);
// update.cu
void launch_v_to_double(const DevPack& d, cudaStream_t stream);
void launch_dv_update(const DevPack& d, cudaStream_t stream);       // plain dV = R^T H and V update
void launch_v_update_from_dv(const DevPack& d, cudaStream_t stream);  // cuBLAS dV, V update
void launch_a_update(const DevPack& d, cudaStream_t stream);
void launch_finish(const DevPack& d, cudaStream_t stream);
// stats.cu
void launch_population_terms(const DevPack& d, cudaStream_t stream);
void launch_population_v(const DevPack& d, cudaStream_t stream);
void launch_population_noise(const DevPack& d, cudaStream_t stream);  // fills noise_part
// Per (listed run, column) statistics of the current attention; with `pstats` also refreshes the
// population statistics of those runs.
void launch_column_stats(const DevPack& d, const uint32_t* runs, uint32_t count, ColumnStats* out,
                         bool pstats, cudaStream_t stream);
void launch_gather_v(const DevPack& d, const uint32_t* runs, uint32_t count, float* out, cudaStream_t stream);
void launch_materialize(const DevPack& d, cudaStream_t stream);  // A *= scale, scale = 1
// softmax.cu: attn = softmax(A) for the columns updated this step (all columns of every run with
// `all`), and the population statistics of the refreshed columns.
void launch_softmax_refresh(const DevPack& d, bool all, cudaStream_t stream);

// Four consecutive floats of a column from position t: one 16-byte load when aligned and in
// range (`vec`), else element by element with zeros past T.
__device__ __forceinline__ void load4(const float* a, uint32_t t, uint32_t T, bool vec, float av[4]) {
  if (vec) {
    const float4 v = *reinterpret_cast<const float4*>(a + t);
    av[0] = v.x;
    av[1] = v.y;
    av[2] = v.z;
    av[3] = v.w;
  } else {
#pragma unroll
    for (int l = 0; l < 4; ++l) av[l] = t + l < T ? a[t + l] : 0.0f;
  }
}

}  // namespace scb::cuda
