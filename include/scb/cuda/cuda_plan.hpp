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
#include "scb/core/runpack.hpp"

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

// Runs per cuBLAS call on the GEMM path. cuBLAS picks its kernel (and so the summation order of
// every product) from the call's arguments, the batch count and the operands' alignment among
// them: a run must meet the same call whether it trains alone or among thousands, or a pack would
// no longer equal its runs trained one by one. So every call covers exactly this many runs (the
// last one padded with zero operands, planned in the device buffers) and every call's operands
// start 256-byte aligned: the calls' offsets, multiples of C*B*N and C*N*N doubles, are multiples
// of 32 doubles. C is a power of two from 8 to 32 that depends on (N, B) only.
inline uint32_t gemm_call_runs(uint32_t N, uint32_t B) {
  auto twos = [](uint64_t x) {  // the power of two dividing x, capped at 32
    uint32_t p = 1;
    while (p < 32 && x % (2 * p) == 0) p *= 2;
    return p;
  };
  const uint32_t aligned = 32 / std::min(twos(uint64_t(B) * N), twos(uint64_t(N) * N));
  return std::max<uint32_t>(8, aligned);
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

// docs/model.md sections 4 and 6 from the column statistics and V (the formulas of population.cpp).
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

// ---- Device memory: every buffer the backend allocates ---------------------------------------
// One list, read three times: kernels/device_buffers.cuh declares a typed device array per entry
// and attach allocates each with the count below (and binds it to the DevPack field of the same
// name), pack_buffer_counts lists the counts on the host, and the memory planner sums their bytes,
// so the plan cannot leave out a buffer attach allocates. Counts are expressions of the
// PackShape `s`; a buffer a pack does not use has count 0 (no allocation, a null pointer).

// A problem's tables as the kernels see them (device pointers).
struct DevProblem {
  ProblemView view;
  const double* mu;   // N
  const double* P;    // N x N row-major
  const double* q_w;  // weights, CSR like view.q_pos
  const double* sq;   // N: sum of the weights of q^(k)
};

// What the buffers' sizes depend on.
struct PackShape {
  uint32_t N = 0, T = 0, runs = 0, problems = 0;
  uint64_t samples = 0;   // sampled algorithms: the batch sizes summed; population: 0
  bool sampled = true, softmax = false, gemm = false;
  bool noisy = false;     // population: some run projects a noisy gradient (the noise pre-pass)
  uint32_t tiles = 0;     // a_tile_plan(N, T).tiles
  uint32_t chunks = 0;    // forward_plan(N, T).chunks
  uint32_t gemm_batch = 0;  // the GEMM path: the pack's one batch size
  uint64_t gemm_runs = 0;   // the GEMM path: runs rounded up to whole calls (gemm_call_runs)
  uint64_t rn() const { return uint64_t(runs) * N; }
  uint64_t rnn() const { return rn() * N; }
  uint64_t rnt() const { return rn() * T; }
  uint64_t pop(uint64_t n) const { return sampled ? 0 : n; }
  // Samples held by the GEMM operands h, r and g: the padded runs' too.
  uint64_t gemm_samples() const { return gemm ? gemm_runs * gemm_batch : samples; }
};

#define SCB_CUDA_PACK_BUFFERS(X)                                 \
  X(problems, DevProblem, s.problems)                            \
  X(problem_index, uint32_t, s.runs)                             \
  X(seed, uint64_t, s.runs)                                      \
  X(batch, uint32_t, s.runs)                                     \
  X(lr_V, float, s.runs)                                         \
  X(lr_A, float, s.runs)                                         \
  X(lambda, float, s.runs)                                       \
  X(noise, float, s.runs)                                        \
  X(limit, float, s.runs)                                        \
  X(steps, int64_t, s.runs)                                      \
  X(stage1, int64_t, s.runs)                                     \
  X(project, uint8_t, s.runs)                                    \
  X(renormalize, uint8_t, s.runs)                                \
  X(step, int64_t, s.runs)                                       \
  X(samples, int64_t, s.runs)                                    \
  X(status, uint8_t, s.runs)                                     \
  X(diverged_step, int64_t, s.runs)                              \
  X(vbad, uint32_t, s.runs)                                      \
  X(abad, uint32_t, s.runs)                                      \
  X(V, float, s.rnn())                                           \
  X(A, float, s.rnt())                                           \
  X(scale, float, s.rn())                                        \
  X(inv_mu, float, s.rn())                                       \
  X(col_mean, float, s.rn())                                     \
  X(pstats, double, 3 * s.rn())                                  \
  X(col_part, double, 3 * s.rn() * s.tiles)                      \
  X(sample_offset, uint64_t, s.sampled ? s.runs + 1ull : 0ull)   \
  X(sample_run, uint32_t, s.samples)                             \
  X(sample_index, uint32_t, s.samples)                           \
  X(tokens, uint16_t, s.samples * s.T)                           \
  X(part_h, double, s.samples * s.chunks * s.N)                  \
  X(part_c, uint32_t, s.samples * s.chunks * s.N)                \
  X(h, double, s.gemm_samples() * s.N)                           \
  X(rr, double, s.gemm_samples() * s.N)                          \
  X(g, double, s.gemm_samples() * s.N)                           \
  X(counts, uint32_t, s.samples * s.N)                           \
  X(kq, uint32_t, s.samples)                                     \
  X(xo, uint32_t, s.samples)                                     \
  X(m, double, s.samples)                                        \
  X(col_start, uint32_t, s.sampled ? s.rn() + s.runs : 0ull)     \
  X(col_samples, uint32_t, s.samples)                            \
  X(Vd, double, s.gemm_runs * s.N * s.N)                         \
  X(dV, double, s.gemm_runs * s.N * s.N)                         \
  X(pterm, double, s.pop(3 * s.rn()))                            \
  X(vmu, double, s.pop(s.rn()))                                  \
  X(pscal, double, s.pop(4ull * s.runs))                         \
  X(noise_part, double, s.noisy ? s.rn() * s.tiles : 0ull)       \
  X(attn, float, s.softmax ? s.rnt() : 0ull)                     \
  X(adot, double, s.softmax ? s.rn() : 0ull)                     \
  X(hg, double, s.softmax ? s.samples : 0ull)

// Buffers of evaluate(): the listed runs, their column statistics and their V.
#define SCB_CUDA_EVAL_BUFFERS(X) \
  X(run_list, uint32_t, s.runs)  \
  X(stats, ColumnStats, s.rn())  \
  X(v_out, float, s.rnn())

// Per problem (N tokens, q = its support entries): X(name, DevProblem field, type, count, source),
// the source an expression of the Problem `pb` that attach uploads.
#define SCB_CUDA_PROBLEM_BUFFERS(X)                                                         \
  X(mu_threshold, view.mu_threshold, uint32_t, N, pb.mu_table.threshold)                    \
  X(mu_alias, view.mu_alias, uint32_t, N, pb.mu_table.alias)                                \
  X(P_threshold, view.P_threshold, uint32_t, uint64_t(N) * N, pb.P_threshold)               \
  X(P_alias, view.P_alias, uint32_t, uint64_t(N) * N, pb.P_alias)                           \
  X(q_ptr, view.q_ptr, uint32_t, N + 1ull, pb.q_ptr)                                        \
  X(q_pos, view.q_pos, uint32_t, q, pb.q_pos)                                               \
  X(q_threshold, view.q_threshold, uint32_t, q, pb.q_threshold)                             \
  X(q_alias, view.q_alias, uint32_t, q, pb.q_alias)                                         \
  X(mu, mu, double, N, pb.mu)                                                               \
  X(P, P, double, uint64_t(N) * N, pb.P)                                                    \
  X(q_w, q_w, double, q, pb.q_w)                                                            \
  X(sq, sq, double, N, ::scb::cuda::column_weight_sums(pb))

// What attach uploads into the pack buffers, X(name, source): expressions of the RunPack `pack`
// and of its SampleMap `map` (empty for population packs).
#define SCB_CUDA_PACK_UPLOADS(X)           \
  X(problem_index, pack.problem_index)     \
  X(seed, pack.seed)                       \
  X(batch, pack.batch_size)                \
  X(lr_V, pack.lr_V)                       \
  X(lr_A, pack.lr_A)                       \
  X(lambda, pack.lambda)                   \
  X(noise, pack.noise)                     \
  X(limit, pack.divergence_limit)          \
  X(steps, pack.steps)                     \
  X(stage1, pack.stage1_steps)             \
  X(project, pack.project)                 \
  X(renormalize, pack.renormalize)         \
  X(step, pack.step)                       \
  X(samples, pack.samples)                 \
  X(status, ::scb::cuda::status_bytes(pack))            \
  X(diverged_step, pack.diverged_step)     \
  X(V, pack.V)                             \
  X(A, pack.A)                             \
  X(scale, ::scb::cuda::unit_scales(pack))              \
  X(inv_mu, ::scb::cuda::inverse_mu(pack))              \
  X(sample_offset, map.offset)             \
  X(sample_run, map.run)                   \
  X(sample_index, map.index)

// Sources of the uploads that are not pack arrays.
inline std::vector<double> column_weight_sums(const Problem& pb) {
  std::vector<double> sq(pb.N, 0.0);
  for (uint32_t k = 0; k < pb.N; ++k)
    for (uint32_t s = pb.q_ptr[k]; s < pb.q_ptr[k + 1]; ++s) sq[k] += pb.q_w[s];
  return sq;
}
inline std::vector<uint8_t> status_bytes(const RunPack& pack) {
  std::vector<uint8_t> b(pack.size());
  for (size_t r = 0; r < pack.size(); ++r) b[r] = static_cast<uint8_t>(pack.status[r]);
  return b;
}
inline std::vector<float> unit_scales(const RunPack& pack) { return std::vector<float>(pack.size() * pack.N, 1.0f); }
inline std::vector<float> inverse_mu(const RunPack& pack) {  // 1/mu_k if preconditioning, else 1
  std::vector<float> inv(pack.size() * pack.N);
  for (size_t r = 0; r < pack.size(); ++r)
    for (uint32_t k = 0; k < pack.N; ++k)
      inv[r * pack.N + k] = pack.precondition[r] ? float(1.0 / pack.problem(r).mu[k]) : 1.0f;
  return inv;
}
inline SampleMap upload_sample_map(const RunPack& pack) {
  return pack.algorithm == Algorithm::population ? SampleMap{} : sample_map(pack.batch_size);
}

// The shape of a pack of `runs` runs drawing `samples` samples a step in all (the GEMM path needs
// one batch size for every run: `batch`).
inline PackShape pack_shape(uint32_t N, uint32_t T, Algorithm alg, bool softmax, bool gemm, uint32_t runs,
                            uint64_t samples, uint32_t batch, uint32_t problems, bool noisy) {
  PackShape s;
  s.N = N;
  s.T = T;
  s.runs = runs;
  s.problems = problems;
  s.sampled = alg != Algorithm::population;
  s.softmax = softmax;
  s.gemm = gemm && s.sampled && runs > 0;
  s.noisy = !s.sampled && !softmax && noisy;
  s.tiles = a_tile_plan(N, T).tiles;
  s.chunks = forward_plan(N, T).chunks;
  s.samples = s.sampled ? samples : 0;
  if (s.gemm) {
    s.gemm_batch = batch;
    const uint32_t call = gemm_call_runs(N, batch);
    s.gemm_runs = (uint64_t(runs) + call - 1) / call * call;
  }
  return s;
}

inline PackShape pack_shape(const RunPack& pack, bool gemm) {
  bool noisy = false;
  for (size_t r = 0; r < pack.size(); ++r) noisy |= pack.noise[r] > 0 && pack.project[r];
  uint64_t samples = 0;
  for (uint32_t b : pack.batch_size) samples += b;
  return pack_shape(pack.N, pack.T, pack.algorithm, pack.attention == Attention::softmax, gemm,
                    static_cast<uint32_t>(pack.size()), samples, pack.size() ? pack.batch_size[0] : 0,
                    static_cast<uint32_t>(pack.problems.size()), noisy);
}

// The element count of every buffer of a pack, by name.
struct PackBufferCounts {
#define SCB_CUDA_COUNT_FIELD(name, type, count) uint64_t name = 0;
  SCB_CUDA_PACK_BUFFERS(SCB_CUDA_COUNT_FIELD)
  SCB_CUDA_EVAL_BUFFERS(SCB_CUDA_COUNT_FIELD)
#undef SCB_CUDA_COUNT_FIELD
};

inline PackBufferCounts pack_buffer_counts(const PackShape& s) {
  PackBufferCounts c;
#define SCB_CUDA_COUNT(name, type, count) c.name = (count);
  SCB_CUDA_PACK_BUFFERS(SCB_CUDA_COUNT)
  SCB_CUDA_EVAL_BUFFERS(SCB_CUDA_COUNT)
#undef SCB_CUDA_COUNT
  return c;
}

// Bytes of every buffer of the pack (the problems' tables aside: problem_device_bytes).
inline uint64_t pack_device_bytes(const PackShape& s) {
  uint64_t bytes = 0;
#define SCB_CUDA_BYTES(name, type, count) bytes += uint64_t(count) * sizeof(type);
  SCB_CUDA_PACK_BUFFERS(SCB_CUDA_BYTES)
  SCB_CUDA_EVAL_BUFFERS(SCB_CUDA_BYTES)
#undef SCB_CUDA_BYTES
  return bytes;
}

// Shared by all runs of a problem: alias tables, P, mu, q.
inline uint64_t problem_device_bytes(uint32_t N, uint64_t q) {
  uint64_t bytes = 0;
#define SCB_CUDA_BYTES(name, field, type, count, source) bytes += uint64_t(count) * sizeof(type);
  SCB_CUDA_PROBLEM_BUFFERS(SCB_CUDA_BYTES)
#undef SCB_CUDA_BYTES
  return bytes;
}

// Bytes of a pack of `runs` runs of batch size B on the device, its problems aside (a noisy
// population pack assumed: the planner must not undercount).
inline uint64_t runs_device_bytes(uint64_t runs, uint32_t N, uint32_t T, uint32_t B, Algorithm alg, bool gemm,
                                  bool softmax) {
  if (runs > 0xFFFFFFFFull) return ~uint64_t{0};
  return pack_device_bytes(pack_shape(N, T, alg, softmax, gemm, static_cast<uint32_t>(runs), runs * B, B, 0, true));
}

// Bytes one run occupies on the device (parameters, per-step scratch, per-sample buffers).
inline uint64_t run_device_bytes(uint32_t N, uint32_t T, uint32_t B, Algorithm alg, bool gemm,
                                 bool softmax = false) {
  return runs_device_bytes(1, N, T, B, alg, gemm, softmax);
}

// Device memory is planned with this headroom left free (cuBLAS workspace, fragmentation).
inline constexpr uint64_t kDeviceHeadroom = 512ull << 20;

// How many runs of one shape fit in `free_bytes` (the sweep planner sizes packs with it): the
// largest pack whose buffers, with its problems' and the headroom, fit.
inline uint64_t runs_that_fit(uint64_t free_bytes, uint32_t N, uint32_t T, uint32_t B, Algorithm alg,
                              uint64_t q_nnz, uint64_t problems = 1, bool softmax = false) {
  const uint64_t fixed = kDeviceHeadroom + problems * problem_device_bytes(N, q_nnz);
  if (free_bytes <= fixed) return 0;
  const bool gemm = use_gemm(GemmMode::automatic, alg, N, {B});
  auto fits = [&](uint64_t runs) { return runs_device_bytes(runs, N, T, B, alg, gemm, softmax) <= free_bytes - fixed; };
  // The bytes grow with the runs, by at least a run's V and A each, so no more than `hi` runs
  // fit; bisect with fits(lo) and !fits(hi + 1).
  uint64_t lo = 0, hi = (free_bytes - fixed) / std::max<uint64_t>(1, 4ull * N * (uint64_t(N) + T));
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo + 1) / 2;
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

}  // namespace scb::cuda
