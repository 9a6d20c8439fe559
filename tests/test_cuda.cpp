// The CUDA backend. Host-side planning (launch geometry, index maps, memory footprints, metrics
// from column statistics) is tested everywhere; tests that need a device skip with a message
// when none is visible, and compile to skipping stubs in a build without CUDA.
// With a device: tokens bit-identical to the CPU path, metrics of 200-step runs within 1e-4 of
// the CPU backend (sgd, proximal, population, both dense paths), population noise projected like
// the CPU's (column sums kept, mixed packs), softmax attention close to the CPU's, a pack of
// 1,000 runs equal bit for bit to the same runs trained one by one (and at N = 128, on the cuBLAS
// path), divergence counted as on the CPU for every cause, a drained column leaving every column
// unscaled, and N = 500, T = 100,000.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "scb/core/backend.hpp"
#include "scb/cpu/cpu_backend.hpp"
#include "scb/sweep/device.hpp"
#include "scb/cuda/cuda_backend.hpp"
#include "scb/cuda/cuda_plan.hpp"
#include "scb/core/philox.hpp"
#include "scb/core/problem.hpp"
#include "scb/core/runpack.hpp"
#include "scb/cpu/sample.hpp"
#include "scb/core/trainer.hpp"

namespace {

using nlohmann::json;
using namespace scb;

json doc_for(uint32_t N, uint32_t T, const std::string& algorithm, int64_t steps, uint32_t B, uint64_t seed,
             const json& patch = json::object()) {
  json doc = {{"problem", {{"N", N}, {"T", T}, {"Q", 2}, {"seed", 1}}},
              {"train",
               {{"algorithm", algorithm}, {"steps", steps}, {"batch_size", B}, {"seed", seed}, {"stage1_steps", steps / 2}}},
              {"eval", {{"every", std::max<int64_t>(1, steps / 4)}}}};
  doc.merge_patch(patch);
  return doc;
}

Config config_for(const json& doc) { return resolve_config(doc, std::filesystem::current_path()); }

double rel_diff(double a, double b) { return std::fabs(a - b) / std::max({std::fabs(a), std::fabs(b), 1e-12}); }

// ---- Host-side planning (no device needed) -------------------------------------------------

TEST(CudaPlan, ForwardPlanModesAndCoverage) {
  for (uint32_t N : {2u, 3u, 16u, 17u, 20u, 100u, 500u, 3000u, 20000u, 65535u})
    for (uint32_t T : {1u, 3u, 100u, 101u, 1000u, 8192u, 10000u, 100000u, 1000000u}) {
      const cuda::ForwardPlan p = cuda::forward_plan(N, T);
      const uint32_t quads = (T + 3) / 4;
      EXPECT_GE(uint64_t(p.chunks) * p.chunk_quads, quads);
      EXPECT_LT(uint64_t(p.chunks - 1) * p.chunk_quads, quads) << "an empty chunk";
      EXPECT_LE(p.chunks, cuda::kMaxChunks);
      EXPECT_EQ(p.threads % 32, 0u);
      EXPECT_GE(p.threads, 32u);
      EXPECT_LE(p.threads, 256u);
      if (N <= cuda::kPrivateMaxN) EXPECT_EQ(p.mode, cuda::HistMode::private_hist);
      if (p.mode == cuda::HistMode::warp) EXPECT_LE(p.smem_bytes, cuda::kForwardSmemLimit);
      if (p.mode == cuda::HistMode::private_hist) EXPECT_EQ(p.smem_bytes, 8 * N + N * p.threads * 12);
    }
  EXPECT_EQ(cuda::forward_plan(3, 100).mode, cuda::HistMode::private_hist);
  EXPECT_EQ(cuda::forward_plan(500, 100000).mode, cuda::HistMode::warp);
  EXPECT_EQ(cuda::forward_plan(500, 100000).chunks, 13u);
  EXPECT_EQ(cuda::forward_plan(20000, 100000).mode, cuda::HistMode::global);
  EXPECT_EQ(cuda::forward_plan(3, 100).chunks, 1u);
}

TEST(CudaPlan, TilePlanCoversEveryPositionAndColumn) {
  for (uint32_t N : {2u, 3u, 20u, 64u, 65u, 500u, 65535u})
    for (uint32_t T : {1u, 4u, 5u, 100u, 513u, 2048u, 10000u, 100000u}) {
      const cuda::TilePlan p = cuda::a_tile_plan(N, T);
      EXPECT_EQ(p.tile_len, 4 * cuda::kUpdateThreads * p.quads_per_thread);
      EXPECT_GE(uint64_t(p.tiles) * p.tile_len, T);
      EXPECT_LT(uint64_t(p.tiles - 1) * p.tile_len, T);
      EXPECT_GE(uint64_t(p.col_groups) * p.col_group, N);
      EXPECT_LT(uint64_t(p.col_groups - 1) * p.col_group, N);
    }
}

TEST(CudaPlan, SampleMapNumbersSamplesRunByRun) {
  const cuda::SampleMap m = cuda::sample_map({3, 1, 0, 2});
  EXPECT_EQ(m.offset, (std::vector<uint64_t>{0, 3, 4, 4, 6}));
  EXPECT_EQ(m.run, (std::vector<uint32_t>{0, 0, 0, 1, 3, 3}));
  EXPECT_EQ(m.index, (std::vector<uint32_t>{0, 1, 2, 0, 0, 1}));
  EXPECT_EQ(m.total(), 6u);
}

TEST(CudaPlan, GemmOnlyForUniformBatchesAndLargeN) {
  using cuda::GemmMode;
  EXPECT_FALSE(cuda::use_gemm(GemmMode::automatic, Algorithm::proximal, 20, {64, 64}));
  EXPECT_TRUE(cuda::use_gemm(GemmMode::automatic, Algorithm::proximal, 500, {64, 64}));
  EXPECT_FALSE(cuda::use_gemm(GemmMode::automatic, Algorithm::proximal, 500, {64, 32}));
  EXPECT_FALSE(cuda::use_gemm(GemmMode::always, Algorithm::sgd, 500, {64, 32}));
  EXPECT_TRUE(cuda::use_gemm(GemmMode::always, Algorithm::sgd, 3, {8}));
  EXPECT_FALSE(cuda::use_gemm(GemmMode::never, Algorithm::sgd, 500, {64}));
  EXPECT_FALSE(cuda::use_gemm(GemmMode::always, Algorithm::population, 500, {64}));
}

TEST(CudaPlan, MemoryFootprintAndPackSizing) {
  // N = 500, T = 100,000: A alone is 200 MB; the scratch of B = 64 samples is small next to it.
  const uint64_t run = cuda::run_device_bytes(500, 100000, 64, Algorithm::proximal, true);
  EXPECT_GT(run, 200000000u);
  EXPECT_LT(run, 260000000u);
  const uint64_t fit = cuda::runs_that_fit(80ull << 30, 500, 100000, 64, Algorithm::proximal, 1000);
  EXPECT_GT(fit, 300u);
  EXPECT_LT(fit, 430u);
  EXPECT_EQ(cuda::runs_that_fit(100u << 20, 500, 100000, 64, Algorithm::proximal, 1000), 0u);
  EXPECT_GE(cuda::runs_that_fit(8ull << 30, 3, 100, 64, Algorithm::proximal, 6), 100000u);
  EXPECT_LT(cuda::run_device_bytes(100, 10000, 64, Algorithm::population, false),
            cuda::run_device_bytes(100, 10000, 64, Algorithm::sgd, false));
  // Softmax attention adds the attention cache (N x T floats) and small per-column/sample terms.
  // (Linear population packs are planned with the noise pre-pass's per-tile sums, which softmax
  // packs never run.)
  for (Algorithm alg : {Algorithm::sgd, Algorithm::population}) {
    const uint64_t lin = cuda::run_device_bytes(100, 10000, 64, alg, false);
    const uint64_t sm = cuda::run_device_bytes(100, 10000, 64, alg, false, true);
    const uint64_t noise_sums = alg == Algorithm::population ? 8ull * 100 * cuda::a_tile_plan(100, 10000).tiles : 0;
    EXPECT_GE(sm + noise_sums, lin + 4ull * 100 * 10000);
    EXPECT_LT(sm + noise_sums, lin + 4ull * 100 * 10000 + 4096);
  }
  EXPECT_LT(cuda::runs_that_fit(8ull << 30, 500, 100000, 64, Algorithm::sgd, 1000, 1, true),
            cuda::runs_that_fit(8ull << 30, 500, 100000, 64, Algorithm::sgd, 1000));
}

// The packs the plan tests below build: `runs` runs of one problem, batch sizes B, B+1, ... when
// `mixed`, else all B.
RunPack plan_pack(uint32_t N, uint32_t T, uint32_t B, uint32_t runs, const std::string& algorithm, bool mixed,
                  const json& patch = json::object()) {
  RunPack pack;
  std::shared_ptr<const Problem> pb;
  for (uint32_t r = 0; r < runs; ++r) {
    json p = patch;
    p["train"]["noise"] = algorithm == "population" && r % 2 ? 0.1 : 0.0;
    const Config cfg = config_for(doc_for(N, T, algorithm, 10, B + (mixed ? r : 0), r, p));
    if (!pb) pb = make_problem(cfg);
    pack.add_run(cfg, pb);
  }
  return pack;
}

// Every upload attach makes has the planned count of its buffer, for the pack's and the problems'
// buffers alike (attach throws on a mismatch; here it is checked without a device).
void expect_uploads_match_plan(const RunPack& pack, bool gemm) {
  const cuda::PackBufferCounts counts = cuda::pack_buffer_counts(cuda::pack_shape(pack, gemm));
  const cuda::SampleMap map = cuda::upload_sample_map(pack);
#define SCB_TEST_UPLOAD(name, source) EXPECT_EQ(counts.name, (source).size()) << #name;
  SCB_CUDA_PACK_UPLOADS(SCB_TEST_UPLOAD)
#undef SCB_TEST_UPLOAD
  EXPECT_EQ(counts.problems, pack.problems.size());
  const uint32_t N = pack.N;
  for (const auto& problem : pack.problems) {
    const Problem& pb = *problem;
    const uint64_t q = pb.q_pos.size();
#define SCB_TEST_UPLOAD(name, field, type, count, source) EXPECT_EQ(uint64_t(count), (source).size()) << #name;
    SCB_CUDA_PROBLEM_BUFFERS(SCB_TEST_UPLOAD)
#undef SCB_TEST_UPLOAD
  }
}

TEST(CudaPlan, AttachUploadsHaveThePlannedCounts) {
  for (const char* alg : {"sgd", "proximal", "population"})
    for (bool softmax : {false, true})
      for (bool mixed : {false, true}) {
        if (softmax && std::string(alg) == "proximal") continue;  // thresholds linear attention only
        const json patch = softmax ? json{{"model", {{"attention", "softmax"}}}} : json::object();
        const RunPack pack = plan_pack(7, 101, 5, 3, alg, mixed, patch);
        expect_uploads_match_plan(pack, !mixed && std::string(alg) != "population");
        expect_uploads_match_plan(pack, false);
      }
}

// Bytes of every buffer attach allocates for a sampled pack with linear attention on the plain
// path, counted by hand from the allocations: hyperparameters, state, parameters, per-sample
// scratch and the evaluation buffers (the run list and the V copy included).
uint64_t hand_counted_bytes(uint32_t N, uint32_t T, const std::vector<uint32_t>& batches) {
  const uint64_t n = N, tiles = cuda::a_tile_plan(N, T).tiles, chunks = cuda::forward_plan(N, T).chunks;
  uint64_t bytes = sizeof(cuda::DevProblem) + 8;  // one problem; sample_offset's last entry
  for (uint32_t B : batches) {
    const uint64_t b = B;
    bytes += 4 + 8 + 4 + 5 * 4 + 2 * 8 + 2;          // problem_index, seed, batch, rates.., steps, stage1, flags
    bytes += 8 + 8 + 1 + 8 + 4 + 4;                  // step, samples, status, diverged_step, vbad, abad
    bytes += 4 * n * n + 4 * n * T + 3 * 4 * n;      // V, A, scale, inv_mu, col_mean
    bytes += 24 * n + 24 * n * tiles;                // pstats, col_part
    bytes += 8 + 2 * 4 * b + 2 * b * T;              // sample_offset, sample_run/index, tokens
    bytes += b * chunks * n * 12 + b * n * (24 + 4);  // part_h/c, h, r, g, counts
    bytes += b * (4 + 4 + 8 + 4) + 4 * (n + 1);      // k, x_o, m, col_samples, col_start
    bytes += 4 + sizeof(cuda::ColumnStats) * n + 4 * n * n;  // run_list, stats, v_out
  }
  return bytes;
}

TEST(CudaPlan, DevicePlanAgreesWithTheBuffersAttachAllocates) {
  struct Case {
    uint32_t N, T, B, runs;
  };
  for (const Case c : {Case{3, 100, 8, 1}, Case{3, 100, 64, 7}, Case{20, 3001, 16, 3}, Case{100, 10001, 4, 2},
                       Case{17, 20003, 5, 4}}) {
    const std::string what = "N=" + std::to_string(c.N) + " T=" + std::to_string(c.T) + " B=" + std::to_string(c.B) +
                             " runs=" + std::to_string(c.runs);
    const RunPack pack = plan_pack(c.N, c.T, c.B, c.runs, "proximal", false);
    const cuda::PackShape shape = cuda::pack_shape(pack, false);
    const uint64_t pack_bytes = cuda::pack_device_bytes(shape);
    EXPECT_EQ(pack_bytes, hand_counted_bytes(c.N, c.T, pack.batch_size)) << what;
    // The per-run planner (pack sizing) counts the same buffers: runs x one run's bytes is the
    // pack's but for the problem table and sample_offset's one entry per extra run.
    const uint64_t per_run = cuda::run_device_bytes(c.N, c.T, c.B, Algorithm::proximal, false);
    EXPECT_EQ(c.runs * per_run + sizeof(cuda::DevProblem), pack_bytes + 8 * (c.runs - 1)) << what;
    // Mixed batch sizes: the hand count follows each run's B.
    const RunPack mixed = plan_pack(c.N, c.T, c.B, c.runs, "sgd", true);
    EXPECT_EQ(cuda::pack_device_bytes(cuda::pack_shape(mixed, false)), hand_counted_bytes(c.N, c.T, mixed.batch_size))
        << what << " mixed";
    // runs_that_fit: the largest pack whose buffers fit next to the problems and the headroom.
    const uint64_t q = pack.problems[0]->q_pos.size();
    const uint64_t fixed = cuda::kDeviceHeadroom + cuda::problem_device_bytes(c.N, q);
    for (uint64_t free_bytes : {fixed + 10 * per_run + 5, fixed + 1000 * per_run - 1, fixed + per_run - 1}) {
      const uint64_t fit = cuda::runs_that_fit(free_bytes, c.N, c.T, c.B, Algorithm::proximal, q);
      EXPECT_LE(cuda::runs_device_bytes(fit, c.N, c.T, c.B, Algorithm::proximal, false, false) + fixed, free_bytes);
      EXPECT_GT(cuda::runs_device_bytes(fit + 1, c.N, c.T, c.B, Algorithm::proximal, false, false) + fixed, free_bytes);
    }
  }
  // The problems' tables: alias tables, P, mu, q and the weight sums, as attach uploads them.
  const RunPack pack = plan_pack(20, 3001, 4, 1, "sgd", false);
  const uint64_t N = 20, q = pack.problems[0]->q_pos.size();
  EXPECT_EQ(cuda::problem_device_bytes(20, q), 4 * (2 * N + 2 * N * N + N + 1 + 3 * q) + 8 * (N + N * N + q + N));
}

// The GEMM path's operands are padded to whole calls of gemm_call_runs runs, each call's starting
// 256-byte aligned, so every run meets the same cuBLAS call alone or in a pack.
TEST(CudaPlan, GemmCallsCoverWholeAlignedBatches) {
  for (uint32_t N : {3u, 100u, 128u, 129u, 200u, 500u, 501u})
    for (uint32_t B : {1u, 7u, 16u, 64u, 100u}) {
      const uint32_t C = cuda::gemm_call_runs(N, B);
      EXPECT_TRUE(C == 8 || C == 16 || C == 32) << N << " " << B;
      EXPECT_EQ(uint64_t(C) * B * N * 8 % 256, 0u) << N << " " << B;
      EXPECT_EQ(uint64_t(C) * N * N * 8 % 256, 0u) << N << " " << B;
      for (uint32_t runs : {1u, 7u, 8u, 9u, 40u}) {
        const cuda::PackShape s = cuda::pack_shape(N, 50, Algorithm::proximal, false, true, runs, uint64_t(runs) * B, B, 1, false);
        EXPECT_EQ(s.gemm_runs % C, 0u);
        EXPECT_GE(s.gemm_runs, runs);
        EXPECT_LT(s.gemm_runs, runs + C);
        const cuda::PackBufferCounts c = cuda::pack_buffer_counts(s);
        EXPECT_EQ(c.h, s.gemm_runs * B * N);
        EXPECT_EQ(c.Vd, s.gemm_runs * N * N);
        EXPECT_EQ(c.counts, uint64_t(runs) * B * N);
      }
    }
  EXPECT_EQ(cuda::gemm_call_runs(128, 16), 8u);
  EXPECT_EQ(cuda::gemm_call_runs(129, 16), 32u);
}

// metrics_from_stats (the host half of the device metrics) against compute_metrics.
TEST(CudaPlan, MetricsFromColumnStatisticsMatchComputeMetrics) {
  for (uint32_t N : {3u, 7u})
    for (uint32_t T : {5u, 100u}) {
      const Config cfg = config_for(doc_for(N, T, "proximal", 10, 8, 3, {{"problem", {{"Q", 3}}}}));
      const auto pb = make_problem(cfg);
      std::vector<float> V(size_t(N) * N), A(size_t(N) * T);
      uint32_t i = 0;
      for (float& v : V) v = float(philox(9, i++, 0, 0, 0x7e57).v[0] * 0x1.0p-32 - 0.3);
      for (float& a : A) {
        const uint32_t w = philox(9, i++, 1, 0, 0x7e57).v[0];
        a = (w % 5 == 0) ? 0.0f : float(w * 0x1.0p-32 - 0.4);
      }
      for (uint32_t t = 0; t < T; ++t) A[t] = -std::fabs(A[t]);  // a column with no positive entry
      std::vector<cuda::ColumnStats> stats(N);
      for (uint32_t k = 0; k < N; ++k) stats[k] = cuda::column_stats(*pb, A.data(), k);
      const Metrics a = cuda::metrics_from_stats(*pb, V.data(), stats.data());
      const Metrics b = compute_metrics(*pb, V.data(), A.data());
      EXPECT_NEAR(a.loss, b.loss, 1e-12 * std::max(1.0, std::fabs(b.loss)));
      EXPECT_NEAR(a.excess_loss, b.excess_loss, 1e-12 * std::max(1.0, std::fabs(b.loss)));
      EXPECT_NEAR(a.dist_V, b.dist_V, 1e-12);
      EXPECT_NEAR(a.dist_V_norm, b.dist_V_norm, 1e-12);
      EXPECT_NEAR(a.dist_A, b.dist_A, 1e-10);
      EXPECT_NEAR(a.dist_A_norm, b.dist_A_norm, 1e-10);
      EXPECT_EQ(a.nnz_A, b.nnz_A);
    }
}

// ---- Without a device ------------------------------------------------------------------------

TEST(CudaNoDevice, DeviceCudaIsAConfigErrorAndTheCliExitsTwo) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is visible: this checks the behaviour without one";
  EXPECT_THROW(make_backend(Device::cuda, 1), ConfigError);
  EXPECT_EQ(make_backend(Device::auto_select, 1)->name(), "cpu");
  uint64_t free_bytes = 1, total = 1;
  cuda_memory_info(free_bytes, total);
  EXPECT_EQ(free_bytes, 0u);
  EXPECT_EQ(total, 0u);
#if defined(SCB_BINARY) && defined(SCB_SOURCE_DIR)
  const std::string cfg = std::string(SCB_SOURCE_DIR) + "/configs/quickstart.json";
  if (!std::filesystem::exists(cfg)) GTEST_SKIP() << "configs/quickstart.json is missing";
  const std::string cmd = std::string(SCB_BINARY) + " train " + cfg + " --device cuda > /dev/null 2>&1";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
#endif
}

// ---- With a device ---------------------------------------------------------------------------

#if defined(SCB_HAVE_CUDA)
#define SCB_REQUIRE_DEVICE()                                                                     \
  do {                                                                                           \
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device is visible: CUDA backend test skipped"; \
  } while (0)
#else
#define SCB_REQUIRE_DEVICE() GTEST_SKIP() << "built without CUDA (no nvcc): CUDA backend test skipped"
#endif

#if defined(SCB_HAVE_CUDA)

RunPack pack_of(const std::vector<Config>& cfgs, std::shared_ptr<const Problem> pb = nullptr) {
  RunPack pack;
  if (!pb) pb = make_problem(cfgs.at(0));
  for (const Config& c : cfgs) pack.add_run(c, pb);
  return pack;
}

// Tokens, queries, outputs and counts from the device forward equal the CPU's forward_sample.
void expect_forward_matches_cpu(const json& doc, cuda::GemmMode gemm) {
  const Config cfg = config_for(doc);
  RunPack pack = pack_of({cfg});
  const cuda::ForwardDebug dev = cuda::debug_forward(pack, cuda::Options{gemm});
  const uint32_t N = pack.N, T = pack.T, B = pack.batch_size[0];
  const ProblemView pv = pack.problem(0).view();
  std::vector<uint16_t> tokens(T);
  std::vector<double> h(N), r(N), g(N);
  std::vector<uint32_t> counts(N);
  for (uint32_t b = 0; b < B; ++b) {
    const SampleResult res = forward_sample(pv, pack.V_of(0), pack.A_of(0), pack.seed[0], 0, b, tokens.data(), h.data(),
                                            counts.data(), r.data(), g.data());
    ASSERT_EQ(0, std::memcmp(tokens.data(), dev.tokens.data() + size_t(b) * T, T * sizeof(uint16_t)))
        << "tokens of sample " << b << " differ (N=" << N << ", T=" << T << ")";
    EXPECT_EQ(res.k, dev.k[b]);
    EXPECT_EQ(res.x_o, dev.x_o[b]);
    for (uint32_t j = 0; j < N; ++j) {
      EXPECT_EQ(counts[j], dev.counts[size_t(b) * N + j]);
      EXPECT_NEAR(h[j], dev.h[size_t(b) * N + j], 1e-12 * std::max(1.0, std::fabs(h[j])));
      EXPECT_NEAR(g[j], dev.g[size_t(b) * N + j], 1e-10 * std::max(1.0, std::fabs(g[j])));
    }
    EXPECT_NEAR(res.a_mean, dev.m[b], 1e-12 + 1e-10 * std::fabs(res.a_mean));
  }
}

#endif

TEST(CudaDevice, TokensBitIdenticalToCpu) {
  SCB_REQUIRE_DEVICE();
#if defined(SCB_HAVE_CUDA)
  // private histograms (T % 4 != 0), warp histograms with several chunks, cuBLAS products,
  // and several seeds and steps' worth of counters.
  expect_forward_matches_cpu(doc_for(3, 101, "sgd", 10, 64, 7), cuda::GemmMode::never);
  expect_forward_matches_cpu(doc_for(3, 100, "sgd", 10, 64, 0xFFFFFFFF12345ull), cuda::GemmMode::never);
  expect_forward_matches_cpu(doc_for(20, 20003, "sgd", 10, 16, 11), cuda::GemmMode::never);
  expect_forward_matches_cpu(doc_for(100, 1000, "sgd", 10, 32, 5), cuda::GemmMode::never);
  expect_forward_matches_cpu(doc_for(100, 1000, "sgd", 10, 32, 5), cuda::GemmMode::always);
  expect_forward_matches_cpu(doc_for(500, 100000, "sgd", 10, 4, 2), cuda::GemmMode::automatic);
#endif
}

#if defined(SCB_HAVE_CUDA)
std::vector<RunResult> train_with(Backend& backend, const Config& cfg, RunPack* out = nullptr) {
  RunPack pack = pack_of({cfg});
  std::vector<RunResult> res = train_pack(pack, backend);
  if (out) *out = std::move(pack);
  return res;
}

void expect_metrics_close(const Metrics& a, const Metrics& b, double tol, const std::string& what) {
  EXPECT_EQ(a.step, b.step) << what;
  EXPECT_EQ(a.samples, b.samples) << what;
  EXPECT_LT(rel_diff(a.loss, b.loss), tol) << what << " loss " << a.loss << " vs " << b.loss;
  EXPECT_LT(std::fabs(a.excess_loss - b.excess_loss), tol * std::max(std::fabs(a.loss), 1e-3))
      << what << " excess " << a.excess_loss << " vs " << b.excess_loss;
  EXPECT_LT(rel_diff(a.dist_V, b.dist_V), tol) << what << " dist_V " << a.dist_V << " vs " << b.dist_V;
  EXPECT_LT(rel_diff(a.dist_A, b.dist_A), tol) << what << " dist_A " << a.dist_A << " vs " << b.dist_A;
  EXPECT_LT(rel_diff(a.dist_V_norm, b.dist_V_norm), tol) << what << " dist_V_norm";
  EXPECT_LT(rel_diff(a.dist_A_norm, b.dist_A_norm), tol) << what << " dist_A_norm " << a.dist_A_norm << " vs "
                                                          << b.dist_A_norm;
  // Soft-thresholding is discontinuous at |z| = tau: one coordinate may land on either side
  // when the two backends' roundings differ (FMA contraction on the device).
  EXPECT_LE(std::llabs(a.nnz_A - b.nnz_A), std::max<int64_t>(2, b.nnz_A / 1000)) << what << " nnz_A";
}

void expect_parity(const json& doc, cuda::GemmMode gemm, const std::string& what) {
  const Config cfg = config_for(doc);
  auto cpu = make_cpu_backend(0);
  auto gpu = cuda::make_backend(cuda::Options{gemm});
  RunPack cpu_pack, gpu_pack;
  const std::vector<RunResult> c = train_with(*cpu, cfg, &cpu_pack);
  const std::vector<RunResult> g = train_with(*gpu, cfg, &gpu_pack);
  ASSERT_EQ(c[0].curve.size(), g[0].curve.size()) << what;
  EXPECT_EQ(c[0].status, g[0].status) << what;
  for (size_t i = 0; i < c[0].curve.size(); ++i)
    expect_metrics_close(g[0].curve[i], c[0].curve[i], 1e-4, what + " @" + std::to_string(c[0].curve[i].step));
  // The downloaded parameters agree too.
  double dv = 0, da = 0, nv = 0, na = 0;
  for (size_t e = 0; e < cpu_pack.V.size(); ++e) {
    dv += std::pow(double(cpu_pack.V[e]) - gpu_pack.V[e], 2);
    nv += std::pow(double(cpu_pack.V[e]), 2);
  }
  for (size_t e = 0; e < cpu_pack.A.size(); ++e) {
    da += std::pow(double(cpu_pack.A[e]) - gpu_pack.A[e], 2);
    na += std::pow(double(cpu_pack.A[e]), 2);
  }
  EXPECT_LT(std::sqrt(dv / nv), 1e-4) << what << " V";
  EXPECT_LT(std::sqrt(da / na), 1e-4) << what << " A";
}
#endif

TEST(CudaDevice, MetricsOf200StepRunsMatchCpu) {
  SCB_REQUIRE_DEVICE();
#if defined(SCB_HAVE_CUDA)
  using cuda::GemmMode;
  // The paper's reference shape, then larger N (warp histograms, chunks), then the cuBLAS path.
  for (uint64_t seed : {0ull, 1ull}) {
    expect_parity(doc_for(3, 100, "sgd", 200, 64, seed), GemmMode::never, "sgd N=3");
    expect_parity(doc_for(3, 100, "proximal", 200, 64, seed, {{"train", {{"lambda", 0.005}, {"stage1_steps", 100}}}}),
                  GemmMode::never, "proximal N=3");
    expect_parity(doc_for(3, 100, "population", 200, 64, seed), GemmMode::never, "population N=3");
  }
  expect_parity(doc_for(3, 100, "population", 200, 64, 4, {{"train", {{"noise", 0.5}}}}), GemmMode::never,
                "population+noise N=3");
  expect_parity(doc_for(3, 100, "proximal", 200, 64, 2, {{"train", {{"renormalize", false}, {"lambda", 0.02}}}}),
                GemmMode::never, "proximal without renormalisation");
  expect_parity(doc_for(20, 10001, "proximal", 200, 32, 3, {{"train", {{"stage1_steps", 100}, {"lr_A", 0.5}}}}),
                GemmMode::never, "proximal N=20");
  expect_parity(doc_for(20, 1000, "population", 200, 32, 3, {{"train", {{"noise", 0.1}, {"lr_A", 0.5}}}}),
                GemmMode::never, "population N=20");
  expect_parity(doc_for(100, 2000, "proximal", 200, 32, 3, {{"train", {{"stage1_steps", 100}, {"lr_A", 5.0}}}}),
                GemmMode::always, "proximal N=100 cuBLAS");
  expect_parity(doc_for(100, 2000, "sgd", 200, 32, 3, {{"train", {{"lr_A", 5.0}}}}), GemmMode::never,
                "sgd N=100 plain");
#endif
}

// docs/model.md section 5 projects the noisy population gradient: the device sums the regenerated noise per
// column before the update pass (population_noise_kernel). Without thresholding or
// renormalisation the projection keeps every column sum at 1, which an unprojected noise would
// visibly break (a random walk of about 0.5 over these 200 steps); and the runs follow the CPU
// backend, also in a pack that mixes projected, unprojected and noiseless runs.
TEST(CudaDevice, PopulationNoiseIsProjectedLikeCpu) {
  SCB_REQUIRE_DEVICE();
#if defined(SCB_HAVE_CUDA)
  const json keep_sums = {{"train", {{"noise", 0.5}, {"lambda", 0.0}, {"renormalize", false}}}};
  // T % 4 != 0 (four positions span two noise blocks), one tile and several tiles per column.
  for (uint32_t T : {101u, 3001u}) {
    const json doc = doc_for(3, T, "population", 200, 64, 5, keep_sums);
    const std::string what = "population+noise projected T=" + std::to_string(T);
    auto gpu = cuda::make_backend(cuda::Options{});
    RunPack gp;
    train_with(*gpu, config_for(doc), &gp);
    EXPECT_NE(gp.status[0], RunStatus::diverged) << what;
    for (uint32_t k = 0; k < gp.N; ++k) {
      double sum = 0;
      for (uint32_t t = 0; t < T; ++t) sum += gp.A_of(0)[size_t(k) * T + t];
      EXPECT_NEAR(sum, 1.0, 1e-3) << what << ": column " << k << " lost its sum (noise not projected?)";
    }
    expect_parity(doc, cuda::GemmMode::never, what);
  }

  // One pack: projected noise (two strengths and batch sizes), unprojected noise (a small lr_A:
  // without the projection the column sums drift and the default rate diverges), no noise.
  std::vector<Config> cfgs;
  cfgs.push_back(config_for(doc_for(5, 1001, "population", 150, 64, 1, {{"train", {{"noise", 0.1}}}})));
  cfgs.push_back(config_for(doc_for(5, 1001, "population", 150, 16, 2, {{"train", {{"noise", 0.05}}}})));
  cfgs.push_back(config_for(doc_for(
      5, 1001, "population", 150, 64, 3,
      {{"train", {{"noise", 0.1}, {"project", false}, {"renormalize", false}, {"lr_A", 0.0005}}}})));
  cfgs.push_back(config_for(doc_for(5, 1001, "population", 150, 64, 4)));
  const auto pb = make_problem(cfgs[0]);
  RunPack cp = pack_of(cfgs, pb), gp = pack_of(cfgs, pb);
  auto cpu = make_cpu_backend(0);
  auto gpu = cuda::make_backend(cuda::Options{});
  const std::vector<RunResult> c = train_pack(cp, *cpu);
  const std::vector<RunResult> g = train_pack(gp, *gpu);
  for (size_t r = 0; r < cfgs.size(); ++r) {
    const std::string what = "mixed population pack, run " + std::to_string(r);
    EXPECT_EQ(c[r].status, RunStatus::done) << what;
    EXPECT_EQ(c[r].status, g[r].status) << what;
    ASSERT_EQ(c[r].curve.size(), g[r].curve.size()) << what;
    for (size_t i = 0; i < c[r].curve.size(); ++i)
      expect_metrics_close(g[r].curve[i], c[r].curve[i], 1e-4, what + " @" + std::to_string(c[r].curve[i].step));
    double da = 0, na = 0;
    const size_t NT = size_t(gp.N) * gp.T;
    for (size_t e = 0; e < NT; ++e) {
      da += std::pow(double(cp.A_of(r)[e]) - gp.A_of(r)[e], 2);
      na += std::pow(double(cp.A_of(r)[e]), 2);
    }
    EXPECT_LT(std::sqrt(da / na), 1e-4) << what << " A";
  }
#endif
}

// Softmax attention on the device (attention cache refreshed by a block-parallel softmax_column):
// the same metrics as the CPU backend, and the same change of the logits, to a tolerance (the
// device sums the exponentials in another order, and its expf rounds differently).
#if defined(SCB_HAVE_CUDA)
void expect_softmax_parity(const json& doc, cuda::GemmMode gemm, const std::string& what) {
  const Config cfg = config_for(doc);
  auto cpu = make_cpu_backend(0);
  auto gpu = cuda::make_backend(cuda::Options{gemm});
  RunPack initial = pack_of({cfg}), cpu_pack, gpu_pack;
  const std::vector<RunResult> c = train_with(*cpu, cfg, &cpu_pack);
  const std::vector<RunResult> g = train_with(*gpu, cfg, &gpu_pack);
  EXPECT_EQ(gpu->name(), "cuda") << what << ": softmax packs must not fall back to the CPU";
  EXPECT_EQ(c[0].status, RunStatus::done) << what;
  EXPECT_EQ(c[0].status, g[0].status) << what;
  ASSERT_EQ(c[0].curve.size(), g[0].curve.size()) << what;
  for (size_t i = 0; i < c[0].curve.size(); ++i)
    expect_metrics_close(g[0].curve[i], c[0].curve[i], 1e-3, what + " @" + std::to_string(c[0].curve[i].step));
  // The logits moved, and by the same amount on both backends.
  double dd = 0, nd = 0;
  for (size_t e = 0; e < cpu_pack.A.size(); ++e) {
    const double dc = double(cpu_pack.A[e]) - initial.A[e], dg = double(gpu_pack.A[e]) - initial.A[e];
    dd += (dc - dg) * (dc - dg);
    nd += dc * dc;
  }
  EXPECT_GT(nd, 0.0) << what << ": the logits did not change";
  EXPECT_LT(std::sqrt(dd / nd), 1e-3) << what << " change of the logits";
  double dv = 0, nv = 0;
  for (size_t e = 0; e < cpu_pack.V.size(); ++e) {
    dv += std::pow(double(cpu_pack.V[e]) - gpu_pack.V[e], 2);
    nv += std::pow(double(cpu_pack.V[e]), 2);
  }
  EXPECT_LT(std::sqrt(dv / nv), 1e-4) << what << " V";
}
#endif

TEST(CudaDevice, SoftmaxAttentionMatchesCpu) {
  SCB_REQUIRE_DEVICE();
#if defined(SCB_HAVE_CUDA)
  using cuda::GemmMode;
  const json softmax = {{"model", {{"attention", "softmax"}}}};
  auto with = [&](const json& train) {
    json patch = softmax;
    patch["train"] = train;
    return patch;
  };
  expect_softmax_parity(doc_for(3, 100, "sgd", 200, 64, 3, with({{"lr_A", 20.0}})), GemmMode::never, "softmax sgd N=3");
  expect_softmax_parity(doc_for(3, 101, "population", 200, 64, 3, with({{"lr_A", 20.0}})), GemmMode::never,
                        "softmax population N=3");
  // The noise is not projected for softmax (the logit gradient has zero mean only without it).
  expect_softmax_parity(doc_for(3, 100, "population", 200, 64, 3, with({{"lr_A", 20.0}, {"noise", 0.5}})),
                        GemmMode::never, "softmax population+noise N=3");
  // Several tiles per column, warp histograms; then the cuBLAS path (h.g from gemm_mean_kernel).
  expect_softmax_parity(doc_for(20, 3001, "sgd", 200, 32, 3, with({{"lr_A", 500.0}})), GemmMode::never,
                        "softmax sgd N=20");
  expect_softmax_parity(doc_for(20, 3001, "population", 200, 32, 3, with({{"lr_A", 100.0}, {"noise", 0.1}})),
                        GemmMode::never, "softmax population+noise N=20");
  expect_softmax_parity(doc_for(100, 2000, "sgd", 200, 32, 3, with({{"lr_A", 1000.0}})), GemmMode::always,
                        "softmax sgd N=100 cuBLAS");
#endif
}

#if defined(SCB_HAVE_CUDA)
// Trains `cfgs` as one pack and each alone on the device (one problem, the first config's) and
// expects every run's counters, parameters and curve to be the same bits; returns the pack.
RunPack expect_pack_equals_runs_alone(const std::vector<Config>& cfgs) {
  const auto pb = make_problem(cfgs[0]);
  RunPack pack = pack_of(cfgs, pb);
  auto gpu = cuda::make_backend(cuda::Options{});
  const std::vector<RunResult> together = train_pack(pack, *gpu);
  for (uint32_t r = 0; r < cfgs.size(); ++r) {
    RunPack single = pack_of({cfgs[r]}, pb);
    auto one = cuda::make_backend(cuda::Options{});
    const std::vector<RunResult> alone = train_pack(single, *one);
    EXPECT_EQ(single.step[0], pack.step[r]) << "run " << r;
    EXPECT_EQ(single.samples[0], pack.samples[r]) << "run " << r;
    EXPECT_EQ(single.status[0], pack.status[r]) << "run " << r;
    EXPECT_EQ(single.diverged_step[0], pack.diverged_step[r]) << "run " << r;
    EXPECT_EQ(0, std::memcmp(single.V.data(), pack.V_of(r), single.V.size() * sizeof(float))) << "V of run " << r;
    EXPECT_EQ(0, std::memcmp(single.A.data(), pack.A_of(r), single.A.size() * sizeof(float))) << "A of run " << r;
    EXPECT_EQ(alone[0].curve.size(), together[r].curve.size()) << "run " << r;
    for (size_t i = 0; i < std::min(alone[0].curve.size(), together[r].curve.size()); ++i) {
      EXPECT_EQ(alone[0].curve[i].loss, together[r].curve[i].loss) << "run " << r;
      EXPECT_EQ(alone[0].curve[i].dist_A_norm, together[r].curve[i].dist_A_norm) << "run " << r;
    }
    if (::testing::Test::HasFailure()) break;  // one run's report is enough
  }
  return pack;
}
#endif

TEST(CudaDevice, PackOfThousandRunsEqualsRunsOneByOne) {
  SCB_REQUIRE_DEVICE();
#if defined(SCB_HAVE_CUDA)
  const uint32_t R = 1000;
  std::vector<Config> cfgs;
  for (uint32_t r = 0; r < R; ++r) {
    json patch = {{"train",
                   {{"lambda", 0.001 * (r % 7)},
                    {"stage1_steps", 5 + r % 4},
                    {"renormalize", r % 5 != 0},
                    {"steps", 12 + r % 9}}}};
    if (r == 17) patch["train"]["lr_V"] = 1e5;  // diverges: must not disturb its neighbours
    if (r == 18) patch["train"]["divergence_limit"] = 0.05;
    cfgs.push_back(config_for(doc_for(3, 100, "proximal", 20, 8 + 8 * (r % 3), 1000 + r, patch)));
  }
  const RunPack pack = expect_pack_equals_runs_alone(cfgs);
  EXPECT_EQ(pack.status[17], RunStatus::diverged);
  EXPECT_EQ(pack.status[18], RunStatus::diverged);
#endif
}

// A diverged step counts on the device as on the CPU (step_rules.hpp): step, samples and
// diverged_step agree whatever the cause (V and A together, V alone, a drained column), and the
// A the diverged step left is the CPU's.
TEST(CudaDevice, DivergenceMatchesCpu) {
  SCB_REQUIRE_DEVICE();
#if defined(SCB_HAVE_CUDA)
  const json both = {{"train", {{"lr_V", 50.0}, {"lr_A", 50.0}}}};
  const json v_only = {{"train", {{"lr_V", 1e9}}}};
  const json drained = {{"train", {{"lambda", 1000.0}, {"stage1_steps", 0}}}};
  for (const char* alg : {"sgd", "proximal", "population"})
    for (const json& patch : {both, v_only, drained}) {
      if (patch == drained && std::string(alg) == "sgd") continue;  // SGD never renormalises
      const std::string what = std::string(alg) + " " + patch.dump();
      const Config cfg = config_for(doc_for(3, 100, alg, 60, 16, 3, patch));
      auto cpu = make_cpu_backend(0);
      auto gpu = cuda::make_backend(cuda::Options{});
      RunPack cp, gp;
      train_with(*cpu, cfg, &cp);
      train_with(*gpu, cfg, &gp);
      EXPECT_EQ(cp.status[0], RunStatus::diverged) << what;
      EXPECT_EQ(gp.status[0], cp.status[0]) << what;
      EXPECT_EQ(gp.diverged_step[0], cp.diverged_step[0]) << what;
      EXPECT_EQ(gp.step[0], cp.step[0]) << what;
      EXPECT_EQ(gp.samples[0], cp.samples[0]) << what;
    }
#endif
}

// A drained column diverges the run and leaves every column unscaled, the columns before it
// included (the device used to rescale those): the runs of StepRules.DrainedColumnLeavesEarlier-
// ColumnsUnscaled, where column 0 keeps a positive sum and a later column drains at step 5.
TEST(CudaDevice, DrainedColumnLeavesEarlierColumnsUnscaled) {
  SCB_REQUIRE_DEVICE();
#if defined(SCB_HAVE_CUDA)
  int cases = 0;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    const json doc = {{"problem", {{"N", 3}, {"T", 40}, {"Q", 2}, {"seed", 1}}},
                      {"train",
                       {{"algorithm", "proximal"}, {"steps", 20}, {"stage1_steps", 4}, {"batch_size", 1},
                        {"lr_A", 50.0}, {"lambda", 0.0006}, {"seed", seed}}},
                      {"eval", {{"every", 5}}}};
    const Config cfg = config_for(doc);
    auto cpu = make_cpu_backend(1);
    auto gpu = cuda::make_backend(cuda::Options{});
    RunPack cp, gp;
    train_with(*cpu, cfg, &cp);
    train_with(*gpu, cfg, &gp);
    double col0 = 0;
    for (uint32_t t = 0; t < cp.T; ++t) col0 += cp.A[t];
    if (cp.status[0] != RunStatus::diverged || cp.step[0] != 5 || !(col0 > 0)) continue;
    ++cases;
    EXPECT_EQ(gp.status[0], RunStatus::diverged) << seed;
    EXPECT_EQ(gp.step[0], 5) << seed;
    EXPECT_EQ(gp.diverged_step[0], 5) << seed;
    for (size_t e = 0; e < cp.A.size(); ++e)
      EXPECT_NEAR(gp.A[e], cp.A[e], 1e-6 + 1e-4 * std::fabs(cp.A[e])) << "seed " << seed << " entry " << e;
  }
  EXPECT_GE(cases, 3);
#endif
}

// At N >= 128 the dense products go through cuBLAS, which picks its kernel (and summation order)
// from the call: every call covers gemm_call_runs runs, so a pack (11 runs: two calls, the last
// padded) equals its runs trained one by one (one padded call each), bit for bit.
TEST(CudaDevice, PackEqualsRunsOneByOneAtN128) {
  SCB_REQUIRE_DEVICE();
#if defined(SCB_HAVE_CUDA)
  const uint32_t R = 11;
  std::vector<Config> cfgs;
  for (uint32_t r = 0; r < R; ++r)
    cfgs.push_back(config_for(doc_for(
        128, 256, "proximal", 12, 16, 2000 + r,
        {{"train", {{"lambda", 0.0005 * (r % 3)}, {"stage1_steps", 4 + r % 3}, {"lr_A", 2.0}}}, {"eval", {{"every", 4}}}})));
  ASSERT_TRUE(cuda::use_gemm(cuda::GemmMode::automatic, Algorithm::proximal, 128, std::vector<uint32_t>(R, 16)));
  expect_pack_equals_runs_alone(cfgs);
#endif
}

TEST(CudaDevice, LargestShapeTrainsAndMatchesCpu) {
  SCB_REQUIRE_DEVICE();
#if defined(SCB_HAVE_CUDA)
  // N = 500, T = 100,000 (A is 200 MB): three steps, thresholding and renormalisation from step 1.
  const json doc = doc_for(500, 100000, "proximal", 3, 64, 1,
                           {{"train", {{"stage1_steps", 1}, {"lambda", 1e-4}}}, {"eval", {{"every", 3}}}});
  expect_parity(doc, cuda::GemmMode::automatic, "proximal N=500 T=1e5");
#endif
}

}  // namespace
