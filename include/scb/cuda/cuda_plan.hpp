#pragma once
// Host-side planning for the CUDA backend: launch geometry, index maps, device-memory
// footprints, and the host half of the exact metrics (the device reduces A to per-column
// statistics; the O(N^2) rest is computed here). Header-only and free of CUDA so that the
// CPU-only build compiles and unit-tests it.
//
// Every geometry below depends on (N, T) only, never on the pack size or on which runs are
// active: a run's floating-point reduction order is then the same whether it trains alone or
// in a pack of thousands, so packs reproduce one-by-one runs bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "scb/core/config.hpp"
#include "scb/core/population.hpp"
#include "scb/core/problem.hpp"

namespace scb::cuda {

inline uint32_t ceil_div(uint64_t a, uint64_t b) { return static_cast<uint32_t>((a + b - 1) / b); }
inline uint32_t round_up(uint32_t a, uint32_t m) { return ceil_div(a, m) * m; }

// ---- Forward: one block per (sample, chunk of positions) -------------------------------------
// Tokens are drawn in blocks of 4 positions (one Philox call). A sample's positions are split in
// `chunks` contiguous ranges of `chunk_quads` blocks of 4, so one sample of a long context keeps
// several SMs busy even when the pack holds a single run. Histogram modes:
//   private: every thread owns a private N-bin histogram in shared memory (tiny N: no conflicts,
//            no atomics), reduced over threads in a fixed order;
//   warp:    every warp owns an N-bin histogram in shared memory; lanes holding the same token
//            are grouped with __match_any_sync and the group leader adds their values in lane
//            order (deterministic without floating-point atomics);
//   global:  like warp with a single warp per block whose histogram lives in global memory
//            (N too large for shared memory).
enum class HistMode : uint32_t { private_hist = 0, warp = 1, global = 2 };

struct ForwardPlan {
  uint32_t chunks = 1;        // position chunks per sample
  uint32_t chunk_quads = 0;   // blocks of 4 positions per chunk
  uint32_t threads = 32;
  HistMode mode = HistMode::private_hist;
  uint32_t smem_bytes = 0;    // dynamic shared memory of the forward kernel
  bool smem_tables = true;    // mu alias tables staged in shared memory
};

inline constexpr uint32_t kChunkPositions = 8192;   // positions per forward chunk (at most)
inline constexpr uint32_t kMaxChunks = 16;
inline constexpr uint32_t kPrivateMaxN = 16;
inline constexpr uint32_t kForwardSmemLimit = 96 * 1024;  // keeps two blocks per SM

inline ForwardPlan forward_plan(uint32_t N, uint32_t T) {
  ForwardPlan p;
  const uint32_t quads = ceil_div(T, 4);
  p.chunks = std::clamp<uint32_t>(ceil_div(T, kChunkPositions), 1, kMaxChunks);
  p.chunk_quads = ceil_div(quads, p.chunks);
  p.chunks = ceil_div(quads, p.chunk_quads);  // no empty chunk
  const uint32_t want = std::clamp<uint32_t>(round_up(p.chunk_quads, 32), 32, 256);
  const uint32_t tables = 8 * N;
  if (N <= kPrivateMaxN) {
    p.mode = HistMode::private_hist;
    p.threads = want;
    p.smem_bytes = tables + N * p.threads * (8 + 4);
    return p;
  }
  // warp mode: nwarps * N doubles + N counts + tables + nwarps * 32 staging doubles
  uint32_t nwarps = want / 32;
  auto bytes = [&](uint32_t w) { return w * N * 8 + N * 4 + tables + w * 32 * 8; };
  while (nwarps > 1 && bytes(nwarps) > kForwardSmemLimit) --nwarps;
  if (bytes(nwarps) <= kForwardSmemLimit) {
    p.mode = HistMode::warp;
    p.threads = 32 * nwarps;
    p.smem_bytes = bytes(nwarps);
    return p;
  }
  p.mode = HistMode::global;
  p.threads = 32;
  p.smem_tables = false;
  p.smem_bytes = 32 * 8;  // staging only
  return p;
}

// ---- Per-sample finish: one block per sample, threads over the N tokens ----------------------
inline uint32_t sample_threads(uint32_t N) { return std::clamp<uint32_t>(round_up(N, 32), 32, 256); }

// ---- Fused A update: one block per (run, tile of positions, group of columns) ----------------
// 128 threads, each owning runs of 4 consecutive positions (one noise block, vector loads).
inline constexpr uint32_t kUpdateThreads = 128;
struct TilePlan {
  uint32_t quads_per_thread = 1;  // blocks of 4 positions per thread
  uint32_t tile_len = 0;          // positions per tile (multiple of 4)
  uint32_t tiles = 0;             // tiles per column
  uint32_t col_group = 1;         // columns per block
  uint32_t col_groups = 0;
  uint64_t blocks_per_run() const { return uint64_t(tiles) * col_groups; }
};

inline TilePlan a_tile_plan(uint32_t N, uint32_t T) {
  TilePlan p;
  const uint32_t quads = ceil_div(T, 4);
  p.quads_per_thread = std::clamp<uint32_t>(ceil_div(quads, kUpdateThreads), 1, 4);
  p.tile_len = 4 * kUpdateThreads * p.quads_per_thread;
  p.tiles = ceil_div(T, p.tile_len);
  // Columns per block: enough blocks per run to fill the device when one run trains alone,
  // few enough that a block amortises its set-up over several columns.
  p.col_group = std::clamp<uint32_t>(ceil_div(N, 64), 1, 8);
  p.col_groups = ceil_div(N, p.col_group);
  return p;
}

// ---- Index maps ----------------------------------------------------------------------------
// Samples of all runs are numbered consecutively (slot = offset[r] + b); offset has R + 1 entries.
struct SampleMap {
  std::vector<uint64_t> offset;
  std::vector<uint32_t> run, index;
  uint64_t total() const { return offset.empty() ? 0 : offset.back(); }
};

inline SampleMap sample_map(const std::vector<uint32_t>& batch_sizes) {
  SampleMap m;
  m.offset.assign(batch_sizes.size() + 1, 0);
  for (size_t r = 0; r < batch_sizes.size(); ++r) m.offset[r + 1] = m.offset[r] + batch_sizes[r];
  m.run.reserve(m.total());
  m.index.reserve(m.total());
  for (size_t r = 0; r < batch_sizes.size(); ++r)
    for (uint32_t b = 0; b < batch_sizes[r]; ++b) {
      m.run.push_back(static_cast<uint32_t>(r));
      m.index.push_back(b);
    }
  return m;
}

// cuBLAS strided-batched GEMMs need one batch size for the whole pack; they pay once the
// per-sample products (2 N^2 per sample) outweigh a kernel launch per product.
enum class GemmMode { automatic, never, always };
inline constexpr uint32_t kGemmMinN = 128;
inline bool use_gemm(GemmMode mode, Algorithm alg, uint32_t N, const std::vector<uint32_t>& batch_sizes) {
  if (alg == Algorithm::population || batch_sizes.empty()) return false;
  const bool uniform = std::all_of(batch_sizes.begin(), batch_sizes.end(),
                                   [&](uint32_t b) { return b == batch_sizes[0]; });
  if (!uniform || mode == GemmMode::never) return false;
  return mode == GemmMode::always || N >= kGemmMinN;
}

// ---- Device memory -------------------------------------------------------------------------
// Bytes one run occupies on the device (parameters, per-step scratch, per-sample buffers).
inline uint64_t run_device_bytes(uint32_t N, uint32_t T, uint32_t B, Algorithm alg, bool gemm,
                                 bool softmax = false) {
  const uint64_t n = N, t = T, b = B;
  const TilePlan tp = a_tile_plan(N, T);
  uint64_t bytes = 4 * (n * n + n * t)        // V, A
                   + 4 * n                    // pending column scales
                   + 4 * n * 2                // inv_mu, col_mean
                   + 24 * n                   // population column statistics
                   + 24 * uint64_t(tp.tiles) * n  // column partial sums (3 per column)
                   + 64 * n + 64;             // evaluation statistics, run state
  if (alg == Algorithm::population) {
    bytes += 24 * n + 8 * n + 64             // gradient terms, V mu, scalars
             + 8 * uint64_t(tp.tiles) * n;   // per-tile noise sums (projected noise)
  } else {
    const ForwardPlan fp = forward_plan(N, T);
    bytes += 2 * b * t                            // tokens (uint16)
             + b * fp.chunks * n * (8 + 4)        // per-chunk partial h and counts
             + b * n * (3 * 8 + 4)                // h, r, g, counts
             + b * (4 + 4 + 8 + 4 + 4 + 4)        // k, x_o, m, sample map, column lists
             + 8 * (n + 1) + 8 * n;               // column starts, mean accumulators
    if (gemm) bytes += 16 * n * n;                // V in double, dV
    if (softmax) bytes += 8 * b;                  // h.g per sample
  }
  if (softmax) bytes += 4 * n * t + 8 * n;        // attention cache, a . dl/da per column
  return bytes;
}

// Shared by all runs of a problem: alias tables, P, mu, q.
inline uint64_t problem_device_bytes(uint32_t N, uint64_t q_nnz) {
  return 8ull * N * N + 8ull * N * N + 16ull * N + 4ull * (N + 1) + 20ull * q_nnz + 32ull * N;
}

// Device memory is planned with this headroom left free (cuBLAS workspace, fragmentation).
inline constexpr uint64_t kDeviceHeadroom = 512ull << 20;

// How many runs of one shape fit in `free_bytes` (the sweep planner sizes packs with it).
inline uint64_t runs_that_fit(uint64_t free_bytes, uint32_t N, uint32_t T, uint32_t B, Algorithm alg,
                              uint64_t q_nnz, uint64_t problems = 1, bool softmax = false) {
  const uint64_t fixed = kDeviceHeadroom + problems * problem_device_bytes(N, q_nnz);
  if (free_bytes <= fixed) return 0;
  return (free_bytes - fixed) / run_device_bytes(N, T, B, alg, use_gemm(GemmMode::automatic, alg, N, {B}), softmax);
}

// ---- Exact metrics from per-column statistics ------------------------------------------------
// The device reduces every column a (pending renormalisation applied) to these sums; with
// s+ = sp the normalised column a-hat = [a]_+ / s+ gives
//   ||a-hat - q||^2 = sp2 / sp^2 + sum q^2 - 2 qp / sp      (1/T + sum q^2 - 2 sum q / T if sp = 0)
//   ||a - q||^2     = n2 + sum q^2 - 2 qa.
struct ColumnStats {
  double sa = 0, n2 = 0, qa = 0;   // sum a, sum a^2, q.a
  double sp = 0, sp2 = 0, qp = 0;  // sum [a]_+, sum [a]_+^2, q.[a]_+
  double nnz = 0;                  // exact non-zeros (exact in double up to 2^53)
};

// Reference (host) reduction of one column, for tests.
inline ColumnStats column_stats(const Problem& pb, const float* A, uint32_t k) {
  ColumnStats c;
  const float* a = A + size_t(k) * pb.T;
  for (uint32_t t = 0; t < pb.T; ++t) {
    const double x = a[t], p = std::max(x, 0.0);
    c.sa += x;
    c.n2 += x * x;
    c.sp += p;
    c.sp2 += p * p;
    c.nnz += a[t] != 0.0f;
  }
  for (uint32_t s = pb.q_ptr[k]; s < pb.q_ptr[k + 1]; ++s) {
    const double x = a[pb.q_pos[s]];
    c.qa += pb.q_w[s] * x;
    c.qp += pb.q_w[s] * std::max(x, 0.0);
  }
  return c;
}

// SPEC 4 and 6 from the column statistics and V (the formulas of population.cpp).
inline Metrics metrics_from_stats(const Problem& pb, const float* V, const ColumnStats* cols) {
  const uint32_t N = pb.N, T = pb.T;
  const double* mu = pb.mu.data();
  std::vector<double> Vmu(N, 0.0);
  double trDPtV = 0, trDVtV = 0;
  for (uint32_t i = 0; i < N; ++i) {
    double vmu = 0;
    for (uint32_t j = 0; j < N; ++j) {
      const double v = V[size_t(i) * N + j];
      vmu += v * mu[j];
      trDPtV += mu[j] * pb.P[size_t(i) * N + j] * v;
      trDVtV += mu[j] * v * v;
    }
    Vmu[i] = vmu;
  }
  double muVmu = 0, vmu2 = 0;
  for (uint32_t i = 0; i < N; ++i) {
    muVmu += mu[i] * Vmu[i];
    vmu2 += Vmu[i] * Vmu[i];
  }
  const double c1 = trDPtV - muVmu, c2 = muVmu, c3 = trDVtV - vmu2, c4 = vmu2;
  Metrics m;
  double L = 0, da = 0, dan = 0, nnz = 0;
  for (uint32_t k = 0; k < N; ++k) {
    const ColumnStats& c = cols[k];
    double sq = 0, sq2 = 0;
    for (uint32_t s = pb.q_ptr[k]; s < pb.q_ptr[k + 1]; ++s) {
      sq += pb.q_w[s];
      sq2 += pb.q_w[s] * pb.q_w[s];
    }
    L += mu[k] * (0.5 - c.qa * c1 - c.sa * sq * c2 + 0.5 * c.n2 * c3 + 0.5 * c.sa * c.sa * c4);
    da += c.n2 + sq2 - 2 * c.qa;
    dan += c.sp > 0 ? c.sp2 / (c.sp * c.sp) + sq2 - 2 * c.qp / c.sp : 1.0 / T + sq2 - 2 * sq / T;
    nnz += c.nnz;
  }
  m.loss = L;
  m.excess_loss = L - pb.bayes_loss;
  value_distances(pb, V, m);
  m.dist_A = std::sqrt(std::max(da, 0.0));
  m.dist_A_norm = std::sqrt(std::max(dan, 0.0));
  m.nnz_A = static_cast<int64_t>(nnz);
  return m;
}

}  // namespace scb::cuda
