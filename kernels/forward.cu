// Forward pass of the sampled algorithms (docs/model.md section 3): tokens are drawn inside the kernel from the
// Philox/alias contract (the draw_* functions of model.hpp, so they are bit-identical to the CPU)
// and never copied from the host nor stored as an N x T matrix: only their uint16 codes are kept
// for the backward gather. Why the kernels are shaped this way:
//  - forward_kernel: one block per (sample, chunk of positions). h = X a^(k) and the token counts
//    are a scatter over positions into shared-memory histograms (a private histogram per thread
//    for tiny N, a histogram per warp otherwise, with same-token lanes merged by
//    __match_any_sync), so there are no floating-point atomics and the summation order is fixed:
//    results are deterministic and independent of the pack. Chunks let a long context occupy
//    many SMs even when a pack holds one run.
//  - sample_finish_kernel: one block per sample; sums the chunk partials in chunk order and, on
//    the plain path, forms r = V h - e_{x_o}, g = V^T r and the projection mean (1/T) sum g_j c_j.
//    (On the cuBLAS path the two products are strided-batched GEMMs and two tiny kernels finish.)
//  - run_reduce_kernel: one block per run; groups the samples by query column in sample order
//    (the fixed order of the backward gathers) and forms the per-column projection means.
// Softmax attention changes only what is read and reduced: the scatter reads the attention cache
// instead of A, each sample also yields h.g (= a . dl/da), and the per-column reduction sums h.g
// instead of the projection means (the logit gradient a (dl/da - a . dl/da) has zero mean).
#include <cub/block/block_scan.cuh>

#include <stdexcept>

#include "cuda_common.cuh"

namespace scb::cuda {

namespace {

constexpr uint32_t kFull = 0xFFFFFFFFu;

__device__ __forceinline__ void store_tokens(uint16_t* tok, uint32_t t, uint32_t T, bool vec, const uint32_t x[4]) {
  if (vec) {
    uint2 w;
    w.x = x[0] | (x[1] << 16);
    w.y = x[2] | (x[3] << 16);
    *reinterpret_cast<uint2*>(tok + t) = w;
  } else {
#pragma unroll
    for (int l = 0; l < 4; ++l)
      if (t + l < T) tok[t + l] = static_cast<uint16_t>(x[l]);
  }
}

// The forward kernel's histograms and staging: shared memory (private and warp modes) or the
// chunk's partial in global memory (global mode), zeroed, with the mu alias tables staged in
// shared memory when the plan has room for them.
struct ForwardScratch {
  double* hist;      // private: N x threads; warp: warps x N; global: the chunk partial
  double* stage;     // warp and global modes: 32 doubles per warp
  uint32_t* cnt;     // private: N x threads; otherwise N
  uint32_t* tabs;    // 2N: mu threshold and alias (smem_tables)
};

__device__ __forceinline__ ForwardScratch forward_scratch(const DevPack& d, unsigned char* smem, uint64_t part) {
  const uint32_t N = d.N, nt = blockDim.x, tid = threadIdx.x;
  double* dsm = reinterpret_cast<double*>(smem);
  ForwardScratch s{nullptr, nullptr, nullptr, nullptr};
  if (d.fp.mode == HistMode::private_hist) {
    s.hist = dsm;
    s.cnt = reinterpret_cast<uint32_t*>(dsm + size_t(N) * nt);
    s.tabs = s.cnt + size_t(N) * nt;
    for (uint32_t e = tid; e < N * nt; e += nt) {
      s.hist[e] = 0.0;
      s.cnt[e] = 0;
    }
  } else if (d.fp.mode == HistMode::warp) {
    const uint32_t nw = nt / 32;
    s.hist = dsm;
    s.stage = dsm + size_t(nw) * N;
    s.cnt = reinterpret_cast<uint32_t*>(s.stage + nw * 32);
    s.tabs = s.cnt + N;
    for (uint32_t e = tid; e < nw * N; e += nt) s.hist[e] = 0.0;
    for (uint32_t e = tid; e < N; e += nt) s.cnt[e] = 0;
  } else {
    s.stage = dsm;
    s.hist = d.part_h + part;
    s.cnt = d.part_c + part;
    for (uint32_t e = tid; e < N; e += nt) {
      s.hist[e] = 0.0;
      s.cnt[e] = 0;
    }
  }
  return s;
}

// The positions one forward block draws: blocks of four [q0, q1) of sample b's column a (its
// pending scale sc), tokens stored to tok.
struct ForwardRange {
  uint64_t seed;
  uint32_t step, b, q0, q1;
  const float* a;
  float sc;
  uint16_t* tok;
  bool vec;  // T % 4 == 0: vector loads and stores
};

// Private histograms: every thread scatters into its own N bins, then a fixed-order reduction
// over threads (lane l of a warp sums threads l, l+32, ... of bin j, then the warp's shuffle tree
// adds the 32 lanes) writes the chunk partial.
__device__ __forceinline__ void private_hist_scatter(const DevPack& d, const ProblemView& pv, const ForwardRange& fr,
                                                     const ForwardScratch& s, uint64_t part) {
  const uint32_t N = d.N, T = d.T, nt = blockDim.x, tid = threadIdx.x;
  for (uint32_t q = fr.q0 + tid; q < fr.q1; q += nt) {
    uint32_t x[4];
    float av[4];
    draw_token_block(pv, fr.seed, fr.step, fr.b, q, x);
    load4(fr.a, 4 * q, T, fr.vec, av);
    store_tokens(fr.tok, 4 * q, T, fr.vec, x);
#pragma unroll
    for (int l = 0; l < 4; ++l)
      if (4 * q + l < T) {
        s.hist[x[l] * nt + tid] += static_cast<double>(av[l] * fr.sc);
        s.cnt[x[l] * nt + tid] += 1;
      }
  }
  __syncthreads();
  const uint32_t lane = tid & 31u;
  for (uint32_t e = tid; e < N * 32; e += nt) {
    const uint32_t j = e / 32;
    double sum = 0;
    uint32_t cs = 0;
    for (uint32_t i = lane; i < nt; i += 32) {
      sum += s.hist[j * nt + i];
      cs += s.cnt[j * nt + i];
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      sum += __shfl_xor_sync(kFull, sum, off);
      cs += __shfl_xor_sync(kFull, cs, off);
    }
    if (lane == 0) {
      d.part_h[part + j] = sum;
      d.part_c[part + j] = cs;
    }
  }
}

// Warp histograms (one per warp, or the global chunk partial): lanes holding the same token are
// grouped with __match_any_sync and the group leader adds their values in lane order.
__device__ __forceinline__ void warp_hist_scatter(const DevPack& d, const ProblemView& pv, const ForwardRange& fr,
                                                  const ForwardScratch& s) {
  const uint32_t N = d.N, T = d.T, tid = threadIdx.x;
  const uint32_t w = tid >> 5, lane = tid & 31u, nw = blockDim.x >> 5;
  double* hw = d.fp.mode == HistMode::warp ? s.hist + size_t(w) * N : s.hist;
  double* st = s.stage + w * 32;
  for (uint32_t base = fr.q0 + w * 32; base < fr.q1; base += nw * 32) {
    const uint32_t q = base + lane;
    const bool valid = q < fr.q1;
    uint32_t x[4] = {0, 0, 0, 0};
    float av[4] = {0, 0, 0, 0};
    if (valid) {
      draw_token_block(pv, fr.seed, fr.step, fr.b, q, x);
      load4(fr.a, 4 * q, T, fr.vec, av);
      store_tokens(fr.tok, 4 * q, T, fr.vec, x);
    }
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      const bool ok = valid && 4 * q + l < T;
      const uint32_t key = ok ? x[l] : kFull;
      const uint32_t grp = __match_any_sync(kFull, key);
      st[lane] = ok ? static_cast<double>(av[l] * fr.sc) : 0.0;
      __syncwarp();
      if (ok && lane == uint32_t(__ffs(grp) - 1)) {
        double sum = 0;
        for (uint32_t m = grp; m; m &= m - 1) sum += st[__ffs(m) - 1];
        hw[key] += sum;
        atomicAdd(&s.cnt[key], static_cast<uint32_t>(__popc(grp)));
      }
      __syncwarp();
    }
  }
}

__global__ void __launch_bounds__(256) forward_kernel(DevPack d) {
  extern __shared__ __align__(16) unsigned char smem[];
  const uint32_t chunks = d.fp.chunks;
  const uint64_t slot = blockIdx.x / chunks;
  const uint32_t c = blockIdx.x % chunks;
  const uint32_t r = d.sample_run[slot], b = d.sample_index[slot];
  if (!run_live(d, r)) return;
  const uint32_t N = d.N, T = d.T, nt = blockDim.x, tid = threadIdx.x;
  ProblemView pv = d.problems[d.problem_index[r]].view;
  const uint64_t part = (slot * chunks + c) * N;
  const ForwardScratch s = forward_scratch(d, smem, part);
  if (d.fp.smem_tables) {
    for (uint32_t j = tid; j < N; j += nt) {
      s.tabs[j] = pv.mu_threshold[j];
      s.tabs[N + j] = pv.mu_alias[j];
    }
    pv.mu_threshold = s.tabs;
    pv.mu_alias = s.tabs + N;
  }
  __syncthreads();

  ForwardRange fr;
  fr.seed = d.seed[r];
  fr.step = static_cast<uint32_t>(d.step[r]);
  fr.b = b;
  const SampleMeta meta = draw_sample_meta(pv, fr.seed, fr.step, b);
  fr.a = attention_col(d, uint64_t(r) * N + meta.k);
  fr.sc = d.scale[uint64_t(r) * N + meta.k];
  fr.tok = d.tokens + slot * T;
  fr.q0 = c * d.fp.chunk_quads;
  fr.q1 = min((T + 3) / 4, fr.q0 + d.fp.chunk_quads);
  fr.vec = (T & 3u) == 0;
  if (d.fp.mode == HistMode::private_hist) {
    private_hist_scatter(d, pv, fr, s, part);
    return;
  }
  warp_hist_scatter(d, pv, fr, s);
  if (d.fp.mode == HistMode::global) return;  // the warp's histogram is the chunk partial itself
  __syncthreads();
  const uint32_t nw = nt >> 5;
  for (uint32_t j = tid; j < N; j += nt) {
    double sum = 0;
    for (uint32_t i = 0; i < nw; ++i) sum += s.hist[size_t(i) * N + j];
    d.part_h[part + j] = sum;
    d.part_c[part + j] = s.cnt[j];
  }
}

__global__ void __launch_bounds__(256) sample_finish_kernel(DevPack d) {
  const uint64_t slot = blockIdx.x;
  const uint32_t r = d.sample_run[slot], b = d.sample_index[slot];
  if (!run_live(d, r)) return;
  const uint32_t N = d.N, T = d.T, nt = blockDim.x, tid = threadIdx.x;
  const uint32_t chunks = d.fp.chunks;
  double* h = d.h + slot * N;
  uint32_t* cnt = d.counts + slot * N;
  for (uint32_t j = tid; j < N; j += nt) {
    double s = 0;
    uint32_t cs = 0;
    for (uint32_t c = 0; c < chunks; ++c) {
      s += d.part_h[(slot * chunks + c) * N + j];
      cs += d.part_c[(slot * chunks + c) * N + j];
    }
    h[j] = s;
    cnt[j] = cs;
  }
  const ProblemView pv = d.problems[d.problem_index[r]].view;
  const uint64_t seed = d.seed[r];
  const uint32_t step = static_cast<uint32_t>(d.step[r]);
  const SampleMeta meta = draw_sample_meta(pv, seed, step, b);
  uint32_t xs4[4];  // draw_token would index the Philox words dynamically (local memory)
  draw_token_block(pv, seed, step, b, meta.s >> 2, xs4);
  const uint32_t x_s = pick4u(meta.s & 3u, xs4);
  const uint32_t x_o = draw_output(pv, x_s, meta.output_word);
  if (tid == 0) {
    d.kq[slot] = meta.k;
    d.xo[slot] = x_o;
  }
  if (d.gemm) return;
  __syncthreads();
  const float* V = d.V + uint64_t(r) * N * N;
  double* rr = d.rr + slot * N;
  double* g = d.g + slot * N;
  // r = V h - e_{x_o}: a warp per row (coalesced over j), fixed shuffle tree.
  const uint32_t w = tid >> 5, lane = tid & 31u, nw = nt >> 5;
  for (uint32_t i = w; i < N; i += nw) {
    const float* row = V + size_t(i) * N;
    double s = 0;
    for (uint32_t j = lane; j < N; j += 32) s += static_cast<double>(row[j]) * h[j];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(kFull, s, off);
    if (lane == 0) rr[i] = s - (i == x_o ? 1.0 : 0.0);
  }
  __syncthreads();
  // g = V^T r: a thread per j (coalesced over j), i ascending as on the CPU.
  for (uint32_t j = tid; j < N; j += nt) {
    double s = 0;
    for (uint32_t i = 0; i < N; ++i) s += static_cast<double>(V[size_t(i) * N + j]) * rr[i];
    g[j] = s;
  }
  __syncthreads();
  if (tid == 0) {
    double m = 0;
    for (uint32_t j = 0; j < N; ++j) m += g[j] * static_cast<double>(cnt[j]);
    d.m[slot] = m / T;
    if (d.softmax) {
      double hg = 0;
      for (uint32_t j = 0; j < N; ++j) hg += h[j] * g[j];
      d.hg[slot] = hg;
    }
  }
}

// cuBLAS path, after VH = V h: r = VH - e_{x_o}.
__global__ void gemm_residual_kernel(DevPack d, uint64_t samples) {
  const uint64_t slot = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (slot >= samples || !run_live(d, d.sample_run[slot])) return;
  d.rr[slot * d.N + d.xo[slot]] -= 1.0;
}

// cuBLAS path, after g = V^T r: the projection mean (and softmax's h.g), a warp per sample.
__global__ void gemm_mean_kernel(DevPack d, uint64_t samples) {
  const uint64_t slot = (uint64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const uint32_t lane = threadIdx.x & 31u;
  if (slot >= samples || !run_live(d, d.sample_run[slot])) return;
  const uint32_t N = d.N;
  const double* g = d.g + slot * N;
  const uint32_t* cnt = d.counts + slot * N;
  double s = 0;
  for (uint32_t j = lane; j < N; j += 32) s += g[j] * static_cast<double>(cnt[j]);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(kFull, s, off);
  if (lane == 0) d.m[slot] = s / d.T;
  if (d.softmax) {
    const double* h = d.h + slot * N;
    double hg = 0;
    for (uint32_t j = lane; j < N; j += 32) hg += h[j] * g[j];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) hg += __shfl_xor_sync(kFull, hg, off);
    if (lane == 0) d.hg[slot] = hg;
  }
}

constexpr uint32_t kReduceThreads = 256;

__global__ void __launch_bounds__(kReduceThreads) run_reduce_kernel(DevPack d) {
  const uint32_t r = blockIdx.x, tid = threadIdx.x;
  if (!run_live(d, r)) return;
  const uint32_t N = d.N, B = d.batch[r];
  const uint64_t off = d.sample_offset[r];
  const uint32_t* kq = d.kq + off;
  const bool softmax = d.softmax != 0;
  const double* m = (softmax ? d.hg : d.m) + off;  // softmax: h.g, summed into adot
  uint32_t* start = d.col_start + uint64_t(r) * (N + 1);
  uint32_t* samples = d.col_samples + off;
  const bool project = d.project[r] != 0;
  using Scan = cub::BlockScan<uint32_t, kReduceThreads>;
  __shared__ typename Scan::TempStorage scan_tmp;
  uint32_t carry = 0;
  for (uint32_t base = 0; base < N; base += kReduceThreads) {
    const uint32_t k = base + tid;
    uint32_t count = 0;
    double macc = 0;
    if (k < N)
      for (uint32_t i = 0; i < B; ++i)
        if (kq[i] == k) {
          ++count;
          macc += m[i];  // sample order, as the CPU
        }
    uint32_t before, total;
    Scan(scan_tmp).ExclusiveSum(count, before, total);
    if (k < N) {
      const uint32_t s0 = carry + before;
      start[k] = s0;
      d.col_mean[uint64_t(r) * N + k] = project && !softmax ? static_cast<float>(macc / B) : 0.0f;
      if (softmax) d.adot[uint64_t(r) * N + k] = macc / B;
      uint32_t fill = s0;
      if (count)
        for (uint32_t i = 0; i < B; ++i)
          if (kq[i] == k) samples[fill++] = i;
    }
    carry += total;
    __syncthreads();
  }
  if (tid == 0) start[N] = carry;
}

}  // namespace

void setup_forward_attributes(const ForwardPlan& fp) {
  // The largest any plan uses (not this pack's), so that backends of different shapes coexist.
  static_assert(8 * kPrivateMaxN + kPrivateMaxN * 256 * 12 <= kForwardSmemLimit);
  if (fp.smem_bytes > kForwardSmemLimit) throw std::logic_error("forward plan exceeds the shared-memory limit");
  static const cudaError_t set =
      cudaFuncSetAttribute(forward_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kForwardSmemLimit));
  check_cuda(set, "cudaFuncSetAttribute(forward_kernel, max dynamic shared memory)");
}

void launch_forward(const DevPack& d, uint64_t samples, cudaStream_t stream) {
  if (samples == 0) return;
  forward_kernel<<<static_cast<unsigned>(samples * d.fp.chunks), d.fp.threads, d.fp.smem_bytes, stream>>>(d);
  check_launch("forward_kernel");
}

void launch_sample_finish(const DevPack& d, uint64_t samples, cudaStream_t stream) {
  if (samples == 0) return;
  sample_finish_kernel<<<static_cast<unsigned>(samples), sample_threads(d.N), 0, stream>>>(d);
  check_launch("sample_finish_kernel");
}

void launch_gemm_residual(const DevPack& d, uint64_t samples, cudaStream_t stream) {
  if (samples == 0) return;
  gemm_residual_kernel<<<ceil_div(samples, 256), 256, 0, stream>>>(d, samples);
  check_launch("gemm_residual_kernel");
}

void launch_gemm_mean(const DevPack& d, uint64_t samples, cudaStream_t stream) {
  if (samples == 0) return;
  gemm_mean_kernel<<<ceil_div(samples * 32, 256), 256, 0, stream>>>(d, samples);
  check_launch("gemm_mean_kernel");
}

void launch_run_reduce(const DevPack& d, cudaStream_t stream) {
  run_reduce_kernel<<<d.R, kReduceThreads, 0, stream>>>(d);
  check_launch("run_reduce_kernel");
}

}  // namespace scb::cuda
