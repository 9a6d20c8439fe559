// scb_gpu_bench: sample-tokens per second of whole training steps on the CUDA backend next to
// the CPU backend, over N in {3, 20, 100, 500}, T in {1e3, 1e4, 1e5} and packs of 1, 100 and
// 1,000 runs (B = 64, proximal past stage 1 so thresholding and renormalisation run), plus the
// cuBLAS-versus-plain dense products at large N and the population simulation.
// A combination is skipped when its pack does not fit in device memory or would take more
// than the host budget to initialise (R * N * T > 2e9 parameters). Each GPU figure is timed over
// enough steps to last ~0.3 s after one warm-up step; the CPU is timed over 1-3 steps where that
// takes a few seconds at most. Writes JSON to argv[1] (default bench/results/gpu_step.json).
#include <cuda_runtime.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scb/core/backend.hpp"
#include "scb/cpu/cpu_backend.hpp"
#include "scb/cuda/cuda_backend.hpp"
#include "scb/core/problem.hpp"
#include "scb/core/runpack.hpp"

namespace {

using nlohmann::json;
using namespace scb;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Timing {
  int steps = 0;
  double seconds = 0;
};

// Steps the attached backend; evaluate({}) synchronises the device without other work.
Timing time_steps(Backend& backend, double target_seconds, int min_steps, int max_steps) {
  backend.step();  // warm-up
  backend.evaluate({});
  Timing t;
  const auto t0 = Clock::now();
  while (t.steps < max_steps && (t.steps < min_steps || seconds_since(t0) < target_seconds)) {
    backend.step();
    ++t.steps;
    if (t.steps == 1) backend.evaluate({});
  }
  backend.evaluate({});
  t.seconds = seconds_since(t0);
  return t;
}

RunPack make_pack(uint32_t N, uint32_t T, uint32_t R, const std::string& algorithm,
                  std::shared_ptr<const Problem>& pb) {
  RunPack pack;
  for (uint32_t r = 0; r < R; ++r) {
    json doc = {{"problem", {{"N", N}, {"T", T}, {"Q", 2}, {"seed", 1}}},
                {"train",
                 {{"algorithm", algorithm}, {"steps", 1000000}, {"batch_size", 64}, {"seed", r},
                  {"stage1_steps", 0}, {"lambda", 1e-4}, {"noise", algorithm == "population" ? 0.1 : 0.0}}}};
    const Config cfg = resolve_config(doc, ".");
    if (!pb) pb = make_problem(cfg);
    pack.add_run(cfg, pb);
  }
  return pack;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string out_path = argc > 1 ? argv[1] : "bench/results/gpu_step.json";
  if (cuda_device_count() == 0) {
    std::fprintf(stderr, "scb_gpu_bench: no CUDA device is visible\n");
    return 2;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  const int threads = omp_get_max_threads();
  json results = json::array();
  const auto bench_start = Clock::now();

  struct Case {
    uint32_t N, T, R;
    std::string algorithm;
    cuda::GemmMode gemm;
  };
  std::vector<Case> cases;
  for (uint32_t N : {3u, 20u, 100u, 500u})
    for (uint32_t T : {1000u, 10000u, 100000u})
      for (uint32_t R : {1u, 100u, 1000u}) cases.push_back({N, T, R, "proximal", cuda::GemmMode::automatic});
  // Dense products: cuBLAS against the plain kernels where automatic picks cuBLAS.
  for (uint32_t R : {1u, 100u}) {
    cases.push_back({500, 10000, R, "proximal", cuda::GemmMode::never});
    cases.push_back({100, 10000, R, "proximal", cuda::GemmMode::always});
  }
  // The paper's large-N simulation: population gradient plus noise.
  for (uint32_t N : {100u, 500u})
    for (uint32_t R : {1u, 10u}) cases.push_back({N, 100000, R, "population", cuda::GemmMode::automatic});

  for (const Case& c : cases) {
    json row = {{"N", c.N}, {"T", c.T}, {"runs", c.R}, {"algorithm", c.algorithm}, {"batch_size", 64}};
    const uint64_t params = uint64_t(c.R) * c.N * c.T;
    uint64_t free_bytes = 0, total = 0;
    cuda_memory_info(free_bytes, total);
    const uint64_t fit = cuda::runs_that_fit(free_bytes, c.N, c.T, 64,
                                             c.algorithm == "population" ? Algorithm::population : Algorithm::proximal, 2 * c.N);
    if (params > 2000000000ull || fit < c.R) {
      row["skipped"] = fit < c.R ? "does not fit in device memory" : "pack too large to initialise within the bench budget";
      results.push_back(row);
      continue;
    }
    std::shared_ptr<const Problem> pb;
    RunPack pack = make_pack(c.N, c.T, c.R, c.algorithm, pb);
    const double tokens_per_step = double(c.R) * 64 * c.T;
    {
      auto gpu = cuda::make_backend(cuda::Options{c.gemm});
      const auto t0 = Clock::now();
      gpu->attach(pack);
      row["gpu_attach_seconds"] = seconds_since(t0);
      const Timing t = time_steps(*gpu, 0.3, 3, 200);
      row["gpu_steps"] = t.steps;
      row["gpu_seconds_per_step"] = t.seconds / t.steps;
      row["gpu_sample_tokens_per_s"] = tokens_per_step * t.steps / t.seconds;
      row["dense"] = c.algorithm == "population"
                         ? "population"
                         : (cuda::use_gemm(c.gemm, Algorithm::proximal, c.N, pack.batch_size) ? "cublas" : "plain");
    }
    // CPU: only where a step takes at most ~2 s (R * B * T <= 2e8 sample-tokens).
    if (tokens_per_step <= 2e8 && c.gemm == cuda::GemmMode::automatic) {
      std::shared_ptr<const Problem> pb2;
      RunPack cpu_pack = make_pack(c.N, c.T, c.R, c.algorithm, pb2);
      auto cpu = make_cpu_backend(0);
      cpu->attach(cpu_pack);
      const Timing t = time_steps(*cpu, 0.5, 1, tokens_per_step <= 2e7 ? 3 : 1);
      row["cpu_steps"] = t.steps;
      row["cpu_sample_tokens_per_s"] = tokens_per_step * t.steps / t.seconds;
      row["speedup"] = row["gpu_sample_tokens_per_s"].get<double>() / row["cpu_sample_tokens_per_s"].get<double>();
    }
    std::fprintf(stderr, "%s\n", row.dump().c_str());
    results.push_back(row);
  }
  json doc = {{"benchmark", "whole training steps, sample-tokens/s (R runs x B samples x T positions per step)"},
              {"device", prop.name},
              {"cpu_threads", threads},
              {"algorithm_note", "proximal with stage1_steps = 0: every step thresholds and renormalises"},
              {"wall_seconds", seconds_since(bench_start)},
              {"results", results}};
  std::ofstream(out_path) << doc.dump(2) << "\n";
  std::printf("%s\n", doc.dump(2).c_str());
  return 0;
}
