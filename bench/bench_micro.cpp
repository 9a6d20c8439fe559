// Google Benchmark microbenchmarks of the hot pieces of a CPU step (issue 6):
//   DrawTokens     Philox + alias token drawing over T positions, nothing else, in each
//                  schedule (scalar, AVX2, AVX-512): the "token-drawing limit" of `scb bench`;
//   DrawTokensOmp  the same over B samples on all threads (the multi-thread limit);
//   Philox         the generator alone;
//   ForwardSample  one sample of phase 1: tokens, scatter h = X a^(k), counts, residual;
//   Phase1Omp      phase 1 on all threads, per-sample rows packed or padded (false sharing);
//   GatherTiles    the backward gather of phase 3 (g[x_t] into per-column tiles);
//   ShrinkColumn   the fused update of a column without gradient (threshold, rescale, sums);
//   CpuStep        the whole CPU step (make_cpu_backend) at 1 and all threads, packs of 1..;
//   OmpForkJoin    an empty `parallel for` (the fixed cost each parallel phase pays per step);
//   PopulationLoss / ComputeMetrics   the exact loss and the metrics of an evaluation.
// Rates: items_per_second = sample-tokens/s (sampled pieces) or entries/s (A updates).
//
//   build-bench/bench/scb_bench_micro --benchmark_filter=DrawTokens
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "scb/core/backend.hpp"
#include "scb/cpu/cpu_backend.hpp"
#include "scb/cpu/cpu_kernels.hpp"
#include "scb/core/model.hpp"
#include "scb/core/population.hpp"
#include "scb/core/problem.hpp"
#include "scb/core/runpack.hpp"
#include "scb/cpu/sample.hpp"
#include "scb/cpu/small_vocab.hpp"
#include "scb/cpu/noise_draw.hpp"
#include "scb/cpu/token_draw.hpp"

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

// range: N, T, schedule (0 = scalar, 1 = AVX2 with loads, 2 = AVX-512, 3 = AVX2 with gathers;
// skipped where the CPU lacks it).
void BM_DrawTokens(benchmark::State& state) {
  const uint32_t N = uint32_t(state.range(0)), T = uint32_t(state.range(1));
  const auto isa = static_cast<scb::DrawIsa>(state.range(2));
  if (!scb::draw_isa_supported(isa)) {
    state.SkipWithError("this CPU lacks the instruction set");
    return;
  }
  const auto pb = cached_problem(N, std::max<uint32_t>(T, 2));
  const scb::ProblemView pv = pb->view();
  std::vector<uint32_t> x(256);
  uint32_t sample = 0, sink = 0;
  for (auto _ : state) {
    for (uint32_t t0 = 0; t0 < T; t0 += 256) {  // forward_sample's chunks
      const uint32_t n = std::min(256u, T - t0);
      scb::draw_tokens_with(isa, pv, 7, 0, sample, t0, n, x.data());
      for (uint32_t i = 0; i < n; ++i) sink += x[i];
    }
    ++sample;
    benchmark::DoNotOptimize(sink);
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * T);
  state.SetLabel(scb::draw_isa_name(isa));
}
BENCHMARK(BM_DrawTokens)->ArgNames({"N", "T", "isa"})->ArgsProduct({{3, 20, 100, 500}, {100, 1000, 100000}, {0, 1, 3, 2}});

// The same tokens kSamplesPerDraw samples at a time (draw_sample_tokens: the AVX2 rounds cross
// sample boundaries), as the engine draws samples of T <= kTokenChunk.
void BM_DrawSampleTokens(benchmark::State& state) {
  const uint32_t N = uint32_t(state.range(0)), T = uint32_t(state.range(1));
  const auto isa = static_cast<scb::DrawIsa>(state.range(2));
  if (!scb::draw_isa_supported(isa)) {
    state.SkipWithError("this CPU lacks the instruction set");
    return;
  }
  const auto pb = cached_problem(N, std::max<uint32_t>(T, 2));
  const scb::ProblemView pv = pb->view();
  std::vector<uint32_t> x(size_t(scb::kSamplesPerDraw) * T);
  uint32_t sample = 0, sink = 0;
  for (auto _ : state) {
    scb::draw_sample_tokens_with(isa, pv, 7, 0, sample, scb::kSamplesPerDraw, x.data());
    for (uint32_t v : x) sink += v;
    sample += scb::kSamplesPerDraw;
    benchmark::DoNotOptimize(sink);
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * scb::kSamplesPerDraw * T);
  state.SetLabel(scb::draw_isa_name(isa));
}
BENCHMARK(BM_DrawSampleTokens)->ArgNames({"N", "T", "isa"})->ArgsProduct({{3, 20}, {100, 256}, {0, 1, 3, 2}});

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
      uint32_t x[256], s = 0;
      for (uint32_t t0 = 0; t0 < T; t0 += 256) {
        const uint32_t n = std::min(256u, T - t0);
        scb::draw_tokens(pv, 7, step, b, t0, n, x);
        for (uint32_t i = 0; i < n; ++i) s += x[i];
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

// The population noise (normals per second): draw_noise in each form (isa 0 scalar, 1 AVX2 =
// x86-64-v3, 2 AVX-512 = x86-64-v4), 64 normals per call as a tile asks, against the scalar
// gradient_noise one coordinate at a time (isa 9: Philox per block and the same Box-Muller).
void BM_DrawNoise(benchmark::State& state) {
  const auto isa = static_cast<scb::DrawIsa>(state.range(0));
  const bool one_by_one = state.range(0) == 9;
  if (!one_by_one && !scb::noise_isa_supported(isa)) {
    state.SkipWithError("this CPU lacks the instruction set");
    return;
  }
  double z[64], sink = 0;
  uint64_t index = 0;
  for (auto _ : state) {
    if (one_by_one) {
      scb::NoiseCursor noise(7, 3);
      for (uint32_t i = 0; i < 64; ++i) z[i] = noise.at(index + i);
    } else {
      scb::draw_noise_with(isa, 7, 3, 0, index, 64, z);
    }
    sink += z[index & 63u];
    index += 64;
    benchmark::DoNotOptimize(sink);
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * 64);
  state.SetLabel(one_by_one ? "gradient_noise" : scb::draw_isa_name(isa));
}
BENCHMARK(BM_DrawNoise)->ArgName("isa")->Arg(9)->Arg(0)->Arg(1)->Arg(2);

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

// The scatter of h and the counts alone (small_vocab.hpp), one 256-position chunk at a time, as
// forward_sample calls it at N <= 4; pair 1: two samples' chunks at once (scatter_small_vocab_pair).
void BM_ScatterSmallVocab(benchmark::State& state) {
  const uint32_t N = uint32_t(state.range(0)), n = 256;
  const bool pair = state.range(1) != 0;
  std::vector<uint16_t> x(2 * n);
  std::vector<float> a(2 * n);
  for (uint32_t i = 0; i < 2 * n; ++i) x[i] = uint16_t((i * 2654435761u >> 7) % N), a[i] = 1e-4f * float(i % 97);
  double part[2][4 * scb::kSmallVocabMaxN];
  uint64_t count[2][4 * scb::kSmallVocabMaxN];
  const scb::ScatterStream streams[2] = {{x.data(), a.data(), 1.0f, part[0], count[0]},
                                         {x.data() + n, a.data() + n, 0.5f, part[1], count[1]}};
  bool fresh = true;
  for (auto _ : state) {
    if (pair)
      scb::scatter_small_vocab_pair(streams, n, N, fresh);
    else
      for (const auto& q : streams) scb::scatter_small_vocab(q.x, q.a, q.scale, n, N, q.part, q.count, fresh);
    fresh = !fresh;
    benchmark::DoNotOptimize(part);
    benchmark::DoNotOptimize(count);
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * 2 * n);
}
BENCHMARK(BM_ScatterSmallVocab)->ArgNames({"N", "pair"})->ArgsProduct({{2, 3, 4}, {0, 1}});

// Phase 1 on every thread, as the CPU backend schedules it (dynamic chunks of 4 samples), with the
// per-sample h, r, g and counts either packed (stride N, as src/cpu_backend.cpp lays them out) or
// padded to whole 64-byte lines. Packed with small N, neighbouring samples of different threads
// share cache lines that every token's h[x] += a_t writes: false sharing.
void BM_Phase1Omp(benchmark::State& state) {
  const uint32_t N = uint32_t(state.range(0)), T = uint32_t(state.range(1)), B = uint32_t(state.range(2));
  const bool padded = state.range(3) != 0;
  const int threads = state.range(4) > 0 ? int(state.range(4)) : omp_get_max_threads();
  const auto pb = cached_problem(N, T);
  const scb::ProblemView pv = pb->view();
  std::vector<float> V(size_t(N) * N), A(size_t(N) * T);
  scb::initial_parameters(bench_config(N, T, B), *pb, V.data(), A.data());
  const size_t sd = padded ? (N + 7) / 8 * 8 : N, su = padded ? (N + 15) / 16 * 16 : N;
  std::vector<uint16_t> tokens(size_t(B) * T);
  std::vector<double> h(B * sd), r(B * sd), g(B * sd);
  std::vector<uint32_t> counts(B * su);
  uint32_t step = 0;
  for (auto _ : state) {
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
    for (uint32_t b = 0; b < B; ++b)
      scb::forward_sample(pv, V.data(), A.data(), 7, step, b, tokens.data() + size_t(b) * T, h.data() + b * sd,
                          counts.data() + b * su, r.data() + b * sd, g.data() + b * sd);
    ++step;
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * B * T);
  state.SetLabel(padded ? "padded to 64 B" : "packed (stride N)");
}
BENCHMARK(BM_Phase1Omp)
    ->ArgNames({"N", "T", "B", "pad", "thr"})
    ->ArgsProduct({{3, 20}, {10000}, {128}, {0, 1}, {1, 0}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------- phase 3: gather and update

// The backward gather of phase 3: B samples' g[x_t] added into the tile row of their query
// column for every 64 positions (src/cpu_backend.cpp, update_a_block), tokens from a real phase 1.
void BM_GatherTiles(benchmark::State& state) {
  const uint32_t N = uint32_t(state.range(0)), T = uint32_t(state.range(1)), B = uint32_t(state.range(2));
  const auto pb = cached_problem(N, T);
  const scb::ProblemView pv = pb->view();
  std::vector<float> V(size_t(N) * N), A(size_t(N) * T);
  scb::initial_parameters(bench_config(N, T, B), *pb, V.data(), A.data());
  std::vector<uint16_t> tokens(size_t(B) * T);
  std::vector<double> h(N), r(N), g(size_t(B) * N);
  std::vector<uint32_t> counts(N), k(B);
  for (uint32_t b = 0; b < B; ++b)
    k[b] = scb::forward_sample(pv, V.data(), A.data(), 7, 0, b, tokens.data() + size_t(b) * T, h.data(),
                               counts.data(), r.data(), g.data() + size_t(b) * N).k;
  std::vector<double> tile(size_t(N) * scb::kTileLength);
  for (auto _ : state) {
    for (uint32_t t0 = 0; t0 < T; t0 += scb::kTileLength) {
      const uint32_t len = std::min(T - t0, scb::kTileLength);
      for (uint32_t b = 0; b < B; ++b) std::fill_n(tile.data() + size_t(k[b]) * scb::kTileLength, len, 0.0);
      for (uint32_t b = 0; b < B; ++b) {
        const uint16_t* tok = tokens.data() + size_t(b) * T + t0;
        const double* gb = g.data() + size_t(b) * N;
        double* row = tile.data() + size_t(k[b]) * scb::kTileLength;
        if (state.range(3)) {
          __builtin_prefetch(tok + 8 * scb::kTileLength);
          __builtin_prefetch(tok + 8 * scb::kTileLength + 32);
        }
        for (uint32_t i = 0; i < len; ++i) row[i] += gb[tok[i]];
      }
      benchmark::DoNotOptimize(tile.data());
    }
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * B * T);  // sample-tokens gathered
}
BENCHMARK(BM_GatherTiles)->ArgNames({"N", "T", "B", "pf"})->ArgsProduct({{3, 500}, {10000, 100000}, {64}, {0, 1}});

// The fused proximal update of a column without gradient (pending rescale, soft-threshold, tile
// sums, divergence test): scb::shrink_column as the backend calls it, on one column of length
// T (in cache) or on N = 500 columns of T = 100,000 (200 MB: memory-bound, as in a real step).
void BM_ShrinkColumn(benchmark::State& state) {
  const uint32_t T = uint32_t(state.range(0)), columns = uint32_t(state.range(1));
  std::vector<float> A(size_t(columns) * T, 1.0f / float(T));
  const uint32_t tiles = (T + scb::kTileLength - 1) / scb::kTileLength;
  std::vector<double> sums(size_t(tiles) * columns);
  const scb::AUpdateRule rule{0.02f, 3.0f, 0.0f, 0.02f * 0.5f / float(T), true};
  for (auto _ : state) {
    bool bad = false;
    for (uint32_t k = 0; k < columns; ++k)
      bad |= scb::shrink_column(A.data() + size_t(k) * T, T, 1.0000001f, rule, 1e6f, sums.data() + k, columns);
    benchmark::DoNotOptimize(bad);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * columns * T);  // entries updated
  state.SetBytesProcessed(int64_t(state.iterations()) * columns * T * 8);  // read + written
}
BENCHMARK(BM_ShrinkColumn)->ArgNames({"T", "cols"})->Args({10000, 1})->Args({100000, 500});


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
    ->ArgsProduct({{3}, {100}, {64}, {1000}, {1}})  // the reference sweep's step
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
