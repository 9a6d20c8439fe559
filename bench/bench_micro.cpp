// Google Benchmark microbenchmarks of the hot pieces of a CPU step (issue 6):
//   DrawTokens     Philox + alias token drawing over T positions, nothing else: the
//                  "token-drawing limit" every whole-step figure is compared with;
//   DrawTokensOmp  the same over B samples on all threads (the multi-thread limit);
//   ForwardSample  one sample of phase 1: tokens, scatter h = X a^(k), counts, residual;
//   Phase2/3/4     single-thread replicas of the CPU backend's phases 2-4 (src/cpu_backend.cpp),
//                  fed by a real phase 1, so a step's cost can be split by phase;
//   CpuStep        the whole CPU step (make_cpu_backend) at 1 and all threads, packs of 1..;
//   OmpForkJoin    an empty `parallel for` (the fixed cost each of the 4 phases pays per step);
//   PopulationLoss / ComputeMetrics   the exact loss and the metrics of an evaluation.
// Rates: items_per_second = sample-tokens/s (sampled pieces) or positions/s (A updates).
//
//   build-bench/bench/scb_bench_micro --benchmark_filter=DrawTokens
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "scb/backend.hpp"
#include "scb/model.hpp"
#include "scb/population.hpp"
#include "scb/problem.hpp"
#include "scb/runpack.hpp"
#include "scb/sample.hpp"

namespace {

using scb::Config;
using scb::Problem;

// A proximal-stage config (stage1_steps = 0: threshold and renormalisation every step, the
// most expensive step and where the paper's method spends most of its steps). lambda scales
// as 1/T so the threshold keeps the same size relative to a_t = 1/T as the reference N=3,T=100.
Config bench_config(uint32_t N, uint32_t T, uint32_t B, uint64_t seed = 0, bool proximal = true) {
  nlohmann::json doc = {
      {"problem", {{"N", N}, {"T", T}, {"Q", std::min<uint32_t>(T, 2)}, {"seed", 1}}},
      {"train",
       {{"algorithm", proximal ? "proximal" : "sgd"},
        {"steps", 1000000000},
        {"batch_size", B},
        {"seed", seed},
        {"stage1_steps", 0},
        {"lambda", 0.5 / T}}},
      {"eval", {{"every", 1000000000}}}};
  return scb::resolve_config(doc, ".");
}

std::shared_ptr<const Problem> cached_problem(uint32_t N, uint32_t T) {
  static std::vector<std::shared_ptr<const Problem>> cache;
  for (const auto& p : cache)
    if (p->N == N && p->T == T) return p;
  cache.push_back(scb::make_problem(bench_config(N, T, 64)));
  return cache.back();
}

// ---------------------------------------------------------------- token drawing (the limit)

void BM_DrawTokens(benchmark::State& state) {
  const uint32_t N = uint32_t(state.range(0)), T = uint32_t(state.range(1));
  const auto pb = cached_problem(N, std::max<uint32_t>(T, 2));
  const scb::ProblemView pv = pb->view();
  uint32_t sample = 0, sink = 0;
  for (auto _ : state) {
    uint32_t x[4];
    for (uint32_t blk = 0; blk < (T + 3) / 4; ++blk) {
      scb::draw_token_block(pv, 7, 0, sample, blk, x);
      sink += x[0] + x[1] + x[2] + x[3];
    }
    ++sample;
    benchmark::DoNotOptimize(sink);
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * T);
}
BENCHMARK(BM_DrawTokens)->ArgNames({"N", "T"})->ArgsProduct({{3, 20, 100, 500}, {1000, 100000}});

// B samples of T positions on every thread (omp parallel for over samples, static schedule).
void BM_DrawTokensOmp(benchmark::State& state) {
  const uint32_t N = uint32_t(state.range(0)), T = uint32_t(state.range(1)), B = uint32_t(state.range(2));
  const int threads = state.range(3) > 0 ? int(state.range(3)) : omp_get_max_threads();
  const auto pb = cached_problem(N, T);
  const scb::ProblemView pv = pb->view();
  uint32_t step = 0;
  std::vector<uint32_t> sinks(size_t(B) * 16);
  for (auto _ : state) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (uint32_t b = 0; b < B; ++b) {
      uint32_t x[4], s = 0;
      for (uint32_t blk = 0; blk < T / 4; ++blk) {
        scb::draw_token_block(pv, 7, step, b, blk, x);
        s += x[0] + x[1] + x[2] + x[3];
      }
      sinks[size_t(b) * 16] = s;
    }
    ++step;
    benchmark::DoNotOptimize(sinks.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * B * T);
  state.counters["threads"] = threads;
}
BENCHMARK(BM_DrawTokensOmp)
    ->ArgNames({"N", "T", "B", "thr"})
    ->ArgsProduct({{3, 500}, {10000}, {64}, {1, 0}})
    ->UseRealTime();

// Philox alone (no alias lookup): how much of the limit is the generator.
void BM_Philox(benchmark::State& state) {
  uint32_t c = 0, sink = 0;
  for (auto _ : state) {
    for (int i = 0; i < 256; ++i) {
      const scb::Philox4 w = scb::philox(7, c++, 0, 0, 0);
      sink += w.v[0] ^ w.v[1] ^ w.v[2] ^ w.v[3];
    }
    benchmark::DoNotOptimize(sink);
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * 256 * 4);  // 32-bit words = tokens
}
BENCHMARK(BM_Philox);

// What a SIMD-friendly Philox would give: 16 independent counters per call in a loop the
// compiler vectorises (AVX2 vpmuludq; AVX-512 where the target allows), same words as philox().
template <int L>
__attribute__((always_inline)) inline void philox_lanes(const uint32_t* c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                                        uint64_t seed, uint32_t out[4][L]) {
  uint32_t v0[L], v1[L], v2[L], v3[L];
  for (int l = 0; l < L; ++l) v0[l] = c0[l], v1[l] = c1, v2[l] = c2, v3[l] = c3;
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    for (int l = 0; l < L; ++l) {
      const uint64_t p0 = uint64_t(0xD2511F53u) * v0[l], p1 = uint64_t(0xCD9E8D57u) * v2[l];
      const uint32_t n0 = uint32_t(p1 >> 32) ^ v1[l] ^ k0, n2 = uint32_t(p0 >> 32) ^ v3[l] ^ k1;
      v1[l] = uint32_t(p1);
      v3[l] = uint32_t(p0);
      v0[l] = n0;
      v2[l] = n2;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  for (int l = 0; l < L; ++l) out[0][l] = v0[l], out[1][l] = v1[l], out[2][l] = v2[l], out[3][l] = v3[l];
}

template <int L>
__attribute__((noinline)) uint32_t draw_tokens_simd(const scb::ProblemView& pv, uint32_t sample, uint32_t T) {
  uint32_t sink = 0, c0[L], w[4][L];
  for (uint32_t blk0 = 0; blk0 < T / 4; blk0 += L) {
    for (int l = 0; l < L; ++l) c0[l] = blk0 + uint32_t(l);
    philox_lanes<L>(c0, sample, 0, scb::kStreamTokens, 7, w);
    for (int lane = 0; lane < 4; ++lane)
      for (int l = 0; l < L; ++l) sink += scb::alias_sample(pv.mu_threshold, pv.mu_alias, pv.N, w[lane][l]);
  }
  return sink;
}

__attribute__((target("avx2"), noinline)) uint32_t draw_tokens_avx2(const scb::ProblemView& pv, uint32_t sample,
                                                                     uint32_t T) {
  return draw_tokens_simd<16>(pv, sample, T);
}

void BM_DrawTokensSimd(benchmark::State& state) {
  const uint32_t N = uint32_t(state.range(0)), T = uint32_t(state.range(1));
  const auto pb = cached_problem(N, T);
  const scb::ProblemView pv = pb->view();
  // Check once that the lanes reproduce draw_token_block (same contract).
  {
    uint32_t c0[16], w[4][16];
    for (int l = 0; l < 16; ++l) c0[l] = uint32_t(l);
    philox_lanes<16>(c0, 3, 0, scb::kStreamTokens, 7, w);
    uint32_t x[4];
    scb::draw_token_block(pv, 7, 0, 3, 5, x);
    for (int lane = 0; lane < 4; ++lane)
      if (scb::alias_sample(pv.mu_threshold, pv.mu_alias, pv.N, w[lane][5]) != x[lane]) {
        state.SkipWithError("SIMD Philox lanes differ from draw_token_block");
        return;
      }
  }
  uint32_t sample = 0, sink = 0;
  for (auto _ : state) {
    sink += state.range(2) ? draw_tokens_avx2(pv, sample++, T) : draw_tokens_simd<16>(pv, sample++, T);
    benchmark::DoNotOptimize(sink);
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * (T / 64 * 64));
}
BENCHMARK(BM_DrawTokensSimd)->ArgNames({"N", "T", "avx2"})->ArgsProduct({{3, 500}, {10000}, {0, 1}});

// ---------------------------------------------------------------- phase 1: one sample

void BM_ForwardSample(benchmark::State& state) {
  const uint32_t N = uint32_t(state.range(0)), T = uint32_t(state.range(1));
  const auto pb = cached_problem(N, T);
  const scb::ProblemView pv = pb->view();
  const Config cfg = bench_config(N, T, 64);
  std::vector<float> V(size_t(N) * N), A(size_t(N) * T);
  scb::initial_parameters(cfg, *pb, V.data(), A.data());
  std::vector<uint16_t> tokens(T);
  std::vector<double> h(N), r(N), g(N);
  std::vector<uint32_t> counts(N);
  uint32_t sample = 0;
  for (auto _ : state) {
    const scb::SampleResult res = scb::forward_sample(pv, V.data(), A.data(), 7, 0, sample++, tokens.data(), h.data(),
                                                      counts.data(), r.data(), g.data());
    benchmark::DoNotOptimize(res);
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * T);
}
BENCHMARK(BM_ForwardSample)->ArgNames({"N", "T"})->ArgsProduct({{3, 20, 100, 500}, {1000, 10000, 100000}});

// ---------------------------------------------------------------- phases 2-4 (replicas)

// Single-thread copy of the CPU backend's step for one run, proximal stage (threshold and
// renormalisation on), with the phases callable separately. Same loops as src/cpu_backend.cpp.
struct ReplicaRun {
  static constexpr uint32_t kBlock = 64;
  uint32_t N, T, B;
  std::shared_ptr<const Problem> pb;
  std::vector<float> V, A;
  std::vector<uint16_t> tokens;
  std::vector<double> h, r, g, m, dV, tile, col_sum;
  std::vector<uint32_t> counts, k, touched;
  std::vector<float> col_mean, inv_mu;
  float lr_V = 1.0f, lr_A = 0.02f, lambda;
  uint32_t step = 0;

  ReplicaRun(uint32_t n, uint32_t t, uint32_t b) : N(n), T(t), B(b), pb(cached_problem(n, t)), lambda(0.5f / float(t)) {
    const Config cfg = bench_config(N, T, B);
    V.resize(size_t(N) * N);
    A.resize(size_t(N) * T);
    scb::initial_parameters(cfg, *pb, V.data(), A.data());
    tokens.resize(size_t(B) * T);
    h.resize(size_t(B) * N), r.resize(size_t(B) * N), g.resize(size_t(B) * N), counts.resize(size_t(B) * N);
    k.resize(B), m.resize(B), dV.resize(size_t(N) * N), tile.resize(size_t(N) * kBlock);
    col_sum.resize(size_t((T + kBlock - 1) / kBlock) * N);
    col_mean.resize(N), inv_mu.resize(N);
    for (uint32_t j = 0; j < N; ++j) inv_mu[j] = float(1.0 / pb->mu[j]);
  }
  void phase1() {
    const scb::ProblemView pv = pb->view();
    for (uint32_t b = 0; b < B; ++b) {
      const scb::SampleResult res =
          scb::forward_sample(pv, V.data(), A.data(), 7, step, b, tokens.data() + size_t(b) * T, h.data() + size_t(b) * N,
                              counts.data() + size_t(b) * N, r.data() + size_t(b) * N, g.data() + size_t(b) * N);
      m[b] = res.a_mean;
      k[b] = res.k;
    }
  }
  void phase2() {
    std::fill(dV.begin(), dV.end(), 0.0);
    for (uint32_t b = 0; b < B; ++b)
      for (uint32_t i = 0; i < N; ++i)
        for (uint32_t j = 0; j < N; ++j) dV[size_t(i) * N + j] += r[size_t(b) * N + i] * h[size_t(b) * N + j];
    std::vector<double> mean(N, 0.0);
    std::vector<uint8_t> hit(N, 0);
    for (uint32_t b = 0; b < B; ++b) mean[k[b]] += m[b], hit[k[b]] = 1;
    touched.clear();
    for (uint32_t j = 0; j < N; ++j) {
      col_mean[j] = float(mean[j] / B);
      if (hit[j]) touched.push_back(j);
    }
    const double lr = lr_V / double(B);
    for (size_t e = 0; e < dV.size(); ++e) V[e] = float(V[e] - lr * dV[e]);
  }
  // Phase 3 for every block of positions; the gather alone when update = false.
  void phase3(bool update = true) {
    const uint32_t nblocks = (T + kBlock - 1) / kBlock;
    bool bad = false;
    for (uint32_t blk = 0; blk < nblocks; ++blk) {
      const uint32_t t0 = blk * kBlock, len = std::min(T, t0 + kBlock) - t0;
      for (uint32_t c : touched) std::fill(tile.data() + size_t(c) * kBlock, tile.data() + size_t(c) * kBlock + len, 0.0);
      for (uint32_t b = 0; b < B; ++b) {
        const uint16_t* tok = tokens.data() + size_t(b) * T + t0;
        const double* gb = g.data() + size_t(b) * N;
        double* row = tile.data() + size_t(k[b]) * kBlock;
        for (uint32_t i = 0; i < len; ++i) row[i] += gb[tok[i]];
      }
      if (!update) continue;
      size_t next = 0;
      for (uint32_t c = 0; c < N; ++c) {
        const bool hit = next < touched.size() && touched[next] == c;
        next += hit;
        float* a = A.data() + size_t(c) * T + t0;
        const scb::AUpdateRule rule{lr_A, inv_mu[c], col_mean[c], lr_A * lambda, true};
        const double* row = tile.data() + size_t(c) * kBlock;
        double colsum = 0;
        for (uint32_t i = 0; i < len; ++i) {
          const float grad = hit ? float(row[i] / B) : 0.0f;
          a[i] = scb::update_attention(a[i], grad, rule);
          colsum += a[i];
          bad |= !(std::fabs(a[i]) <= 1e6f);
        }
        col_sum[size_t(blk) * N + c] = colsum;
      }
    }
    benchmark::DoNotOptimize(bad);
  }
  void phase4() {
    const uint32_t nblocks = (T + kBlock - 1) / kBlock;
    for (uint32_t c = 0; c < N; ++c) {
      double sum = 0;
      for (uint32_t blk = 0; blk < nblocks; ++blk) sum += col_sum[size_t(blk) * N + c];
      const float scale = sum > 0 ? float(1.0 / sum) : 1.0f;
      float* a = A.data() + size_t(c) * T;
      for (uint32_t t = 0; t < T; ++t) a[t] *= scale;
    }
    ++step;
  }
};

// range: N, T, B, which (0 = whole replica step, 1 = phase 1, 2 = phase 2, 3 = phase 3 gather only,
// 4 = phase 3 gather + update, 5 = phase 4).
void BM_ReplicaPhase(benchmark::State& state) {
  const uint32_t N = uint32_t(state.range(0)), T = uint32_t(state.range(1)), B = uint32_t(state.range(2));
  const int which = int(state.range(3));
  ReplicaRun run(N, T, B);
  run.phase1();
  run.phase2();
  run.phase3();
  for (auto _ : state) {
    switch (which) {
      case 0: run.phase1(); run.phase2(); run.phase3(); run.phase4(); break;
      case 1: run.phase1(); break;
      case 2: run.phase2(); break;
      case 3: run.phase3(false); break;
      case 4: run.phase3(true); break;
      default: run.phase4(); break;
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * B * T);  // sample-tokens of a step
  static const char* names[] = {"step", "p1_draw_scatter", "p2_dV", "p3_gather", "p3_gather_update", "p4_renorm"};
  state.SetLabel(names[which]);
}
BENCHMARK(BM_ReplicaPhase)
    ->ArgNames({"N", "T", "B", "phase"})
    ->ArgsProduct({{3}, {100, 10000}, {64, 128}, {0, 1, 2, 3, 4, 5}})
    ->ArgsProduct({{500}, {100000}, {64}, {0, 1, 2, 3, 4, 5}})
    ->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------- the whole CPU step

// range: N, T, B, pack size, threads (0 = all).
void BM_CpuStep(benchmark::State& state) {
  const uint32_t N = uint32_t(state.range(0)), T = uint32_t(state.range(1)), B = uint32_t(state.range(2));
  const uint32_t R = uint32_t(state.range(3));
  const int threads = int(state.range(4));
  const auto pb = cached_problem(N, T);
  scb::RunPack pack;
  for (uint32_t r = 0; r < R; ++r) pack.add_run(bench_config(N, T, B, r), pb);
  auto backend = scb::make_cpu_backend(threads);
  backend->attach(pack);
  backend->step();  // warm-up
  for (auto _ : state) backend->step();
  for (uint32_t r = 0; r < R; ++r)
    if (pack.status[r] != scb::RunStatus::running) {
      state.SkipWithError("a run diverged during the benchmark (timings would be wrong)");
      break;
    }
  state.SetItemsProcessed(int64_t(state.iterations()) * R * B * T);
  state.counters["threads"] = threads > 0 ? threads : omp_get_max_threads();
}
BENCHMARK(BM_CpuStep)
    ->ArgNames({"N", "T", "B", "R", "thr"})
    ->ArgsProduct({{3}, {100, 1000, 10000}, {64, 128}, {1}, {1, 0}})
    ->ArgsProduct({{20, 100, 500}, {10000}, {64}, {1}, {1, 0}})
    ->ArgsProduct({{500}, {100000}, {64}, {1}, {0}})
    ->ArgsProduct({{3}, {1000}, {64}, {100}, {1, 0}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// The fixed cost of one `#pragma omp parallel for schedule(dynamic)` over `items` empty items.
void BM_OmpForkJoin(benchmark::State& state) {
  const int threads = state.range(0) > 0 ? int(state.range(0)) : omp_get_max_threads();
  const int64_t items = state.range(1);
  std::vector<int64_t> out(static_cast<size_t>(items));
  for (auto _ : state) {
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (int64_t i = 0; i < items; ++i) out[size_t(i)] = i;
    benchmark::ClobberMemory();
  }
  state.counters["threads"] = threads;
}
BENCHMARK(BM_OmpForkJoin)->ArgNames({"thr", "items"})->ArgsProduct({{1, 0}, {1, 64}})->UseRealTime();

// ---------------------------------------------------------------- evaluation

void BM_PopulationLoss(benchmark::State& state) {
  const uint32_t N = uint32_t(state.range(0)), T = uint32_t(state.range(1));
  const auto pb = cached_problem(N, T);
  std::vector<float> V(size_t(N) * N), A(size_t(N) * T);
  scb::initial_parameters(bench_config(N, T, 64), *pb, V.data(), A.data());
  for (auto _ : state) benchmark::DoNotOptimize(scb::population_loss(*pb, V.data(), A.data()));
  state.SetItemsProcessed(int64_t(state.iterations()) * N * T);  // entries of A
}
BENCHMARK(BM_PopulationLoss)->ArgNames({"N", "T"})->ArgsProduct({{3, 100, 500}, {1000, 100000}});

void BM_ComputeMetrics(benchmark::State& state) {
  const uint32_t N = uint32_t(state.range(0)), T = uint32_t(state.range(1));
  const auto pb = cached_problem(N, T);
  std::vector<float> V(size_t(N) * N), A(size_t(N) * T);
  scb::initial_parameters(bench_config(N, T, 64), *pb, V.data(), A.data());
  for (auto _ : state) benchmark::DoNotOptimize(scb::compute_metrics(*pb, V.data(), A.data()));
  state.SetItemsProcessed(int64_t(state.iterations()) * N * T);
}
BENCHMARK(BM_ComputeMetrics)->ArgNames({"N", "T"})->ArgsProduct({{3, 100, 500}, {1000, 100000}});

}  // namespace

BENCHMARK_MAIN();
