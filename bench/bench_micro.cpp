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
#include <immintrin.h>
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

// ---------------------------------------------------------------- what-ifs for the limit
// Measured alternatives (same tokens, same contract) behind the optimisation suggestions.

// Alias lookup without a data-dependent branch (the accept/alias choice is ~50% unpredictable
// when mu is far from uniform, e.g. N = 3).
inline uint32_t alias_sample_branchless(const uint32_t* threshold, const uint32_t* alias, uint32_t n, uint32_t u) {
  const uint64_t x = static_cast<uint64_t>(u) * n;
  const uint32_t idx = static_cast<uint32_t>(x >> 32), frac = static_cast<uint32_t>(x);
  const uint32_t keep = 0u - static_cast<uint32_t>(frac < threshold[idx]);
  return (idx & keep) | (alias[idx] & ~keep);
}

void BM_DrawTokensBranchless(benchmark::State& state) {
  const uint32_t N = uint32_t(state.range(0)), T = uint32_t(state.range(1));
  const auto pb = cached_problem(N, T);
  const scb::ProblemView pv = pb->view();
  uint32_t sample = 0, sink = 0;
  for (auto _ : state) {
    for (uint32_t blk = 0; blk < T / 4; ++blk) {
      const scb::Philox4 w = scb::philox(7, blk, sample, 0, scb::kStreamTokens);
      for (int lane = 0; lane < 4; ++lane)
        sink += alias_sample_branchless(pv.mu_threshold, pv.mu_alias, pv.N, w.v[lane]);
    }
    ++sample;
    benchmark::DoNotOptimize(sink);
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * (T / 4 * 4));
}
BENCHMARK(BM_DrawTokensBranchless)->ArgNames({"N", "T"})->ArgsProduct({{3, 20, 100, 500}, {100000}});

// Eight Philox4x32-10 blocks per call with AVX2 (vpmuludq on even and odd lanes), and the alias
// lookup with two gathers: 32 tokens per iteration, bit-identical to draw_token_block.
__attribute__((target("avx2"))) inline void mulhilo8(__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
  const __m256i even = _mm256_mul_epu32(a, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

__attribute__((target("avx2"))) inline void philox8(__m256i c0, uint32_t c1, uint32_t c2, uint32_t c3, uint64_t seed,
                                                     __m256i out[4]) {
  __m256i v0 = c0, v1 = _mm256_set1_epi32(int(c1)), v2 = _mm256_set1_epi32(int(c2)), v3 = _mm256_set1_epi32(int(c3));
  const __m256i m0 = _mm256_set1_epi32(int(0xD2511F53u)), m1 = _mm256_set1_epi32(int(0xCD9E8D57u));
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    __m256i hi0, lo0, hi1, lo1;
    mulhilo8(v0, m0, hi0, lo0);
    mulhilo8(v2, m1, hi1, lo1);
    v0 = _mm256_xor_si256(_mm256_xor_si256(hi1, v1), _mm256_set1_epi32(int(k0)));
    v1 = lo1;
    v2 = _mm256_xor_si256(_mm256_xor_si256(hi0, v3), _mm256_set1_epi32(int(k1)));
    v3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = v0, out[1] = v1, out[2] = v2, out[3] = v3;
}

__attribute__((target("avx2"))) inline __m256i alias8(const scb::ProblemView& pv, __m256i u) {
  __m256i idx, frac;
  mulhilo8(u, _mm256_set1_epi32(int(pv.N)), idx, frac);
  const __m256i thr = _mm256_i32gather_epi32(reinterpret_cast<const int*>(pv.mu_threshold), idx, 4);
  const __m256i al = _mm256_i32gather_epi32(reinterpret_cast<const int*>(pv.mu_alias), idx, 4);
  const __m256i sign = _mm256_set1_epi32(int(0x80000000u));
  const __m256i accept = _mm256_cmpgt_epi32(_mm256_xor_si256(thr, sign), _mm256_xor_si256(frac, sign));
  return _mm256_blendv_epi8(al, idx, accept);
}

// Tokens of blocks blk0 .. blk0+7 of one sample: lane l of out[j] is token 4*(blk0+l)+j.
__attribute__((target("avx2"))) inline void draw_token_blocks8(const scb::ProblemView& pv, uint64_t seed, uint32_t step,
                                                               uint32_t sample, uint32_t blk0, __m256i out[4]) {
  const __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32(int(blk0)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256i w[4];
  philox8(c0, sample, step, scb::kStreamTokens, seed, w);
  for (int j = 0; j < 4; ++j) out[j] = alias8(pv, w[j]);
}

__attribute__((target("avx2"), noinline)) uint32_t draw_tokens_avx2(const scb::ProblemView& pv, uint32_t sample,
                                                                     uint32_t T) {
  __m256i acc = _mm256_setzero_si256(), x[4];
  for (uint32_t blk0 = 0; blk0 + 8 <= T / 4; blk0 += 8) {
    draw_token_blocks8(pv, 7, 0, sample, blk0, x);
    acc = _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_add_epi32(x[0], x[1]), _mm256_add_epi32(x[2], x[3])));
  }
  alignas(32) uint32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc);
  uint32_t s = 0;
  for (uint32_t v : lanes) s += v;
  return s;
}

__attribute__((target("avx2"))) bool avx2_matches_contract(const scb::ProblemView& pv) {
  for (uint32_t blk0 : {0u, 8u, 1000u}) {
    __m256i x[4];
    draw_token_blocks8(pv, 7, 5, 3, blk0, x);
    alignas(32) uint32_t lanes[4][8];
    for (int j = 0; j < 4; ++j) _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[j]), x[j]);
    for (uint32_t l = 0; l < 8; ++l) {
      uint32_t ref[4];
      scb::draw_token_block(pv, 7, 5, 3, blk0 + l, ref);
      for (int j = 0; j < 4; ++j)
        if (ref[j] != lanes[j][l]) return false;
    }
  }
  return true;
}

void BM_DrawTokensAvx2(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx2")) {
    state.SkipWithError("no AVX2 on this CPU");
    return;
  }
  const uint32_t N = uint32_t(state.range(0)), T = uint32_t(state.range(1));
  const auto pb = cached_problem(N, T);
  const scb::ProblemView pv = pb->view();
  if (!avx2_matches_contract(pv)) {
    state.SkipWithError("AVX2 tokens differ from draw_token_block");
    return;
  }
  uint32_t sample = 0, sink = 0;
  for (auto _ : state) {
    sink += draw_tokens_avx2(pv, sample++, T);
    benchmark::DoNotOptimize(sink);
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * (T / 32 * 32));
}
BENCHMARK(BM_DrawTokensAvx2)->ArgNames({"N", "T"})->ArgsProduct({{3, 20, 100, 500}, {100000}});

// Phase 1's scatter with one h (and counts) per Philox lane, summed in a fixed order at the
// end: breaks the store-to-load dependency through h[x] when tokens repeat (small N).
void BM_ForwardScatterSplit(benchmark::State& state) {
  const uint32_t N = uint32_t(state.range(0)), T = uint32_t(state.range(1));
  const bool split = state.range(2) != 0;
  const auto pb = cached_problem(N, T);
  const scb::ProblemView pv = pb->view();
  std::vector<float> A(T, 1.0f / float(T));
  std::vector<uint16_t> tokens(T);
  std::vector<double> h4(size_t(4) * N), h(N);
  std::vector<uint32_t> c4(size_t(4) * N), counts(N);
  uint32_t sample = 0;
  for (auto _ : state) {
    std::fill(h4.begin(), h4.end(), 0.0);
    std::fill(c4.begin(), c4.end(), 0u);
    uint32_t x[4];
    for (uint32_t blk = 0; blk < T / 4; ++blk) {
      scb::draw_token_block(pv, 7, 0, sample, blk, x);
      for (uint32_t l = 0; l < 4; ++l) {
        const uint32_t t = 4 * blk + l, lane = split ? l : 0;
        tokens[t] = uint16_t(x[l]);
        h4[lane * N + x[l]] += double(A[t]);
        ++c4[lane * N + x[l]];
      }
    }
    for (uint32_t j = 0; j < N; ++j) {
      h[j] = ((h4[j] + h4[N + j]) + h4[2 * N + j]) + h4[3 * N + j];
      counts[j] = c4[j] + c4[N + j] + c4[2 * N + j] + c4[3 * N + j];
    }
    ++sample;
    benchmark::DoNotOptimize(h.data());
    benchmark::DoNotOptimize(tokens.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * (T / 4 * 4));
  state.SetLabel(split ? "4 accumulators" : "1 accumulator");
}
BENCHMARK(BM_ForwardScatterSplit)->ArgNames({"N", "T", "split"})->ArgsProduct({{3, 20, 500}, {10000}, {0, 1}});

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

// ---------------------------------------------------------------- phases 2-4 (replicas)

// soft_threshold without branches, exact (tau > 0): max(z - tau, 0) + min(z + tau, 0) is z - tau,
// z + tau or +0 exactly where soft_threshold gives them; the branchy form mispredicts when many
// entries sit near the threshold (the proximal stage's whole point).
inline float update_attention_branchless(float a, float grad, const scb::AUpdateRule& rule) {
  const float z = a - rule.lr * ((grad - rule.mean) * rule.inv_mu);
  return rule.threshold ? std::max(z - rule.tau, 0.0f) + std::min(z + rule.tau, 0.0f) : z;
}

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
  // Phase 3 for every block of positions; the gather alone when update = false; with
  // `partial` the column sum is kept in 8 partial sums (fixed order, so still deterministic),
  // which lets the update loop vectorise instead of waiting on one double accumulator.
  void phase3(bool update = true, bool partial = false, bool branchless = false, bool two_pass = false) {
    phase3_body(update, partial, branchless, two_pass);
  }
  // The same loops compiled for AVX2 (what a -march=x86-64-v3 build or a dispatched kernel gives).
  __attribute__((target("avx2,fma"))) void phase3_avx2(bool partial, bool branchless, bool two_pass = false) {
    phase3_body(true, partial, branchless, two_pass);
  }
  // two_pass: update the 64 entries of the tile first (branchless threshold, no accumulator: the
  // loop vectorises), then sum them into 8 double partial sums while they are still in L1.
  __attribute__((always_inline)) inline void phase3_body(bool update, bool partial, bool branchless,
                                                         bool two_pass = false) {
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
        const double invB = 1.0 / B;
        double colsum = 0;
        if (two_pass && len == kBlock) {
          int badv = 0;
          const float lr = rule.lr, mean = rule.mean, imu = rule.inv_mu, tau = rule.tau;
          if (hit) {
            for (uint32_t i = 0; i < kBlock; ++i) {
              const float grad = static_cast<float>(row[i] * invB);
              const float z = a[i] - lr * ((grad - mean) * imu);
              const float v = std::max(z - tau, 0.0f) + std::min(z + tau, 0.0f);
              a[i] = v;
              badv |= std::fabs(v) <= 1e6f ? 0 : 1;
            }
          } else {
            for (uint32_t i = 0; i < kBlock; ++i) {
              const float z = a[i] - lr * ((0.0f - mean) * imu);
              const float v = std::max(z - tau, 0.0f) + std::min(z + tau, 0.0f);
              a[i] = v;
              badv |= std::fabs(v) <= 1e6f ? 0 : 1;
            }
          }
          double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
          for (uint32_t i = 0; i < kBlock; i += 8)
            for (uint32_t l = 0; l < 8; ++l) part[l] += a[i + l];
          colsum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
          bad |= badv != 0;
        } else if (partial && len == kBlock) {
          double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
          int badv = 0;
          for (uint32_t i = 0; i < kBlock; i += 8)
            for (uint32_t l = 0; l < 8; ++l) {
              const float grad = hit ? static_cast<float>(row[i + l] * invB) : 0.0f;
              const float v = branchless ? update_attention_branchless(a[i + l], grad, rule)
                                         : scb::update_attention(a[i + l], grad, rule);
              a[i + l] = v;
              part[l] += v;
              badv |= !(std::fabs(v) <= 1e6f);
            }
          colsum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
          bad |= badv != 0;
        } else {
          for (uint32_t i = 0; i < len; ++i) {
            const float grad = hit ? static_cast<float>(row[i] * invB) : 0.0f;
            a[i] = scb::update_attention(a[i], grad, rule);
            colsum += a[i];
            bad |= !(std::fabs(a[i]) <= 1e6f);
          }
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
// 4 = phase 3 gather + update, 5 = phase 4; what-ifs: 6 = phase 3 with 8 partial column sums,
// 7 = the same with a branchless soft-threshold, 8 and 9 = 6 and 7 compiled for AVX2,
// 10 = two passes per tile (vectorisable update, then 8 partial sums), 11 = 10 for AVX2,
// 12 = the whole step with phase 3 as in 10).
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
      case 6: run.phase3(true, true); break;
      case 7: run.phase3(true, true, true); break;
      case 8: run.phase3_avx2(true, false); break;
      case 9: run.phase3_avx2(true, true); break;
      case 10: run.phase3(true, false, false, true); break;
      case 11: run.phase3_avx2(false, false, true); break;
      case 12: run.phase1(); run.phase2(); run.phase3(true, false, false, true); run.phase4(); break;
      default: run.phase4(); break;
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * B * T);  // sample-tokens of a step
  static const char* names[] = {"step", "p1_draw_scatter", "p2_dV", "p3_gather", "p3_gather_update", "p4_renorm",
                                "p3_gather_update_8sums", "p3_gather_update_8sums_branchless",
                                "p3_8sums_avx2", "p3_8sums_branchless_avx2", "p3_two_pass", "p3_two_pass_avx2",
                                "step_with_two_pass_p3"};
  state.SetLabel(names[which]);
}
BENCHMARK(BM_ReplicaPhase)
    ->ArgNames({"N", "T", "B", "phase"})
    ->ArgsProduct({{3}, {100, 10000}, {64, 128}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}})
    ->ArgsProduct({{100}, {10000}, {64}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}})
    ->ArgsProduct({{500}, {100000}, {64}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}})
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
