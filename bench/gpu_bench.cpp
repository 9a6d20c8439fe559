// scb_gpu_bench: sample-tokens per second of whole training steps on the CUDA backend next to
// the CPU backend, over N in {3, 20, 100, 500}, T in {1e3, 1e4, 1e5} and packs of 1, 100 and
// 1,000 runs (B = 64, proximal past stage 1 so thresholding and renormalisation run), plus the
// cuBLAS-versus-plain dense products at large N and the population simulation.
// Shaped for a short lease on a GPU machine: cases run cheapest first under a wall-clock budget
// (--budget), a case predicted not to finish inside what is left is recorded as skipped with the
// reason, and the JSON file is rewritten after every case, so a run cut off by an outer timeout
// still leaves every figure measured so far. A combination is also skipped when its pack does
// not fit in device memory or would take too long to initialise on the host (R * N * T > 2e9
// parameters). Each GPU figure is timed over enough steps to last ~0.3 s after one warm-up step;
// the CPU (all cores) is timed over 1-3 steps where one takes at most ~2 s.
#include <cuda_runtime.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scb/core/backend.hpp"
#include "scb/core/problem.hpp"
#include "scb/core/runpack.hpp"
#include "scb/cpu/cpu_backend.hpp"
#include "scb/cuda/cuda_backend.hpp"

namespace {

using nlohmann::json;
using namespace scb;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kBatch = 64;
constexpr double kMaxParams = 2e9;      // larger packs take too long to initialise on the host
constexpr double kCpuMaxTokens = 2e8;   // sample-tokens per step beyond which the CPU is not timed
// Conservative costs for predicting a case's wall time: host fill per parameter; a step's token
// work, per-sample dense products (~N^2) and pass over A, on the GPU and on a 16-core CPU.
constexpr double kHostSecondsPerParam = 3e-9;
constexpr double kGpuTokensPerSecond = 1e10, kGpuSecondsPerParam = 1e-11;
constexpr double kCpuTokensPerSecond = 5e8, kCpuSecondsPerSampleN2 = 1e-10, kCpuSecondsPerParam = 1e-9;

const char* kUsage =
    "usage: scb_gpu_bench [--json PATH] [--budget SECONDS] [--N LIST] [--T LIST] [--runs LIST] [--no-cpu]\n"
    "       scb_gpu_bench PATH            (same as --json PATH)\n"
    "Whole training steps (B = 64, proximal stage) on the CUDA backend beside the CPU backend on all\n"
    "cores; LIST is comma-separated (defaults N 3,20,100,500  T 1000,10000,100000  runs 1,100,1000).\n"
    "Cases run cheapest first; those predicted to overrun --budget (default 600 s) are recorded as\n"
    "skipped. The JSON (default bench/results/gpu_step.json) is rewritten after every case.\n";

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Settings {
  std::string out_path = "bench/results/gpu_step.json";
  double budget = 600;
  std::vector<uint32_t> N{3, 20, 100, 500}, T{1000, 10000, 100000}, R{1, 100, 1000};
  bool cpu = true;
};

std::vector<uint32_t> parse_list(const std::string& text) {
  std::vector<uint32_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(static_cast<uint32_t>(std::stod(item)));  // 1e4 works
  if (out.empty()) throw std::invalid_argument("empty list");
  return out;
}

// Returns 0 to go on, else the exit status (1 for bad arguments, 0 after --help).
int parse_args(int argc, char** argv, Settings& s, bool& stop) {
  stop = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--help" || a == "-h") {
        std::fputs(kUsage, stdout);
        stop = true;
        return 0;
      } else if (a == "--json") s.out_path = value();
      else if (a == "--budget") s.budget = std::stod(value());
      else if (a == "--N") s.N = parse_list(value());
      else if (a == "--T") s.T = parse_list(value());
      else if (a == "--runs") s.R = parse_list(value());
      else if (a == "--no-cpu") s.cpu = false;
      else if (!a.empty() && a[0] != '-') s.out_path = a;
      else throw std::invalid_argument("unknown option " + a);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "scb_gpu_bench: %s\n%s", e.what(), kUsage);
      stop = true;
      return 1;
    }
  }
  return 0;
}

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
                 {{"algorithm", algorithm}, {"steps", 1000000}, {"batch_size", kBatch}, {"seed", r},
                  {"stage1_steps", 0}, {"lambda", 1e-4}, {"noise", algorithm == "population" ? 0.1 : 0.0}}}};
    const Config cfg = resolve_config(doc, ".");
    if (!pb) pb = make_problem(cfg);
    pack.add_run(cfg, pb);
  }
  return pack;
}

struct Case {
  uint32_t N, T, R;
  std::string algorithm;
  cuda::GemmMode gemm;
  double params() const { return double(R) * N * T; }
  double tokens_per_step() const { return double(R) * kBatch * T; }
  bool times_cpu(bool cpu) const { return cpu && tokens_per_step() <= kCpuMaxTokens && gemm == cuda::GemmMode::automatic; }
  // Predicted wall seconds: host packs, upload, GPU warm-up plus >= 0.3 s, CPU warm-up plus 1-3 steps.
  double predicted_seconds(bool cpu) const {
    const double gpu_step = tokens_per_step() / kGpuTokensPerSecond + params() * kGpuSecondsPerParam;
    double s = params() * kHostSecondsPerParam + std::max(0.3 + gpu_step, 4 * gpu_step) + 1e-4 * R;
    const double cpu_step = tokens_per_step() / kCpuTokensPerSecond +
                            double(R) * kBatch * N * N * kCpuSecondsPerSampleN2 + params() * kCpuSecondsPerParam;
    if (times_cpu(cpu)) s += params() * kHostSecondsPerParam + 4 * cpu_step;
    return s;
  }
};

std::vector<Case> make_cases(const Settings& s) {
  std::vector<Case> cases;
  for (uint32_t N : s.N)
    for (uint32_t T : s.T)
      for (uint32_t R : s.R) cases.push_back({N, T, R, "proximal", cuda::GemmMode::automatic});
  // Dense products: cuBLAS against the plain kernels where automatic picks the other.
  for (uint32_t R : {1u, 100u}) {
    cases.push_back({500, 10000, R, "proximal", cuda::GemmMode::never});
    cases.push_back({100, 10000, R, "proximal", cuda::GemmMode::always});
  }
  // The paper's large-N simulation: population gradient plus noise.
  for (uint32_t N : {100u, 500u})
    for (uint32_t R : {1u, 10u}) cases.push_back({N, 100000, R, "population", cuda::GemmMode::automatic});
  std::stable_sort(cases.begin(), cases.end(), [&](const Case& a, const Case& b) {
    return a.predicted_seconds(s.cpu) < b.predicted_seconds(s.cpu);
  });
  return cases;
}

const char* gemm_name(cuda::GemmMode m) {
  return m == cuda::GemmMode::never ? "never" : m == cuda::GemmMode::always ? "always" : "automatic";
}

// Why the case cannot run ("" when it can).
std::string skip_reason(const Case& c, const Settings& s, double seconds_left) {
  uint64_t free_bytes = 0, total = 0;
  cuda_memory_info(free_bytes, total);
  const Algorithm alg = c.algorithm == "population" ? Algorithm::population : Algorithm::proximal;
  if (cuda::runs_that_fit(free_bytes, c.N, c.T, kBatch, alg, 2 * c.N) < c.R) return "does not fit in device memory";
  if (c.params() > kMaxParams) return "pack too large to initialise within the bench budget (R*N*T > 2e9)";
  const double predicted = c.predicted_seconds(s.cpu);
  if (predicted > seconds_left) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "time budget: predicted %.0f s, %.0f s left of --budget %.0f", predicted,
                  seconds_left, s.budget);
    return buf;
  }
  return "";
}

void run_case(const Case& c, bool cpu, json& row) {
  std::shared_ptr<const Problem> pb;
  RunPack pack = make_pack(c.N, c.T, c.R, c.algorithm, pb);
  const double tokens_per_step = c.tokens_per_step();
  {
    auto gpu = cuda::make_backend(cuda::Options{c.gemm});
    const auto t0 = Clock::now();
    gpu->attach(pack);
    row["gpu_attach_seconds"] = seconds_since(t0);
    const Timing t = time_steps(*gpu, 0.3, 3, 200);
    row["gpu_steps"] = t.steps;
    row["gpu_seconds_per_step"] = t.seconds / t.steps;
    row["gpu_sample_tokens_per_s"] = tokens_per_step * t.steps / t.seconds;
    row["gpu_run_steps_per_s"] = double(c.R) * t.steps / t.seconds;
    row["dense"] = c.algorithm == "population"
                       ? "population"
                       : (cuda::use_gemm(c.gemm, Algorithm::proximal, c.N, pack.batch_size) ? "cublas" : "plain");
  }
  if (!c.times_cpu(cpu)) return;
  pack = RunPack{};
  std::shared_ptr<const Problem> pb2;
  RunPack cpu_pack = make_pack(c.N, c.T, c.R, c.algorithm, pb2);
  auto backend = make_cpu_backend(0);
  backend->attach(cpu_pack);
  const Timing t = time_steps(*backend, 0.5, 1, tokens_per_step <= 2e7 ? 3 : 1);
  row["cpu_steps"] = t.steps;
  row["cpu_sample_tokens_per_s"] = tokens_per_step * t.steps / t.seconds;
  row["speedup"] = row["gpu_sample_tokens_per_s"].get<double>() / row["cpu_sample_tokens_per_s"].get<double>();
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  bool stop = false;
  const int status = parse_args(argc, argv, settings, stop);
  if (stop) return status;
  if (cuda_device_count() == 0) {
    std::fprintf(stderr, "scb_gpu_bench: no CUDA device is visible\n");
    return 2;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  const auto bench_start = Clock::now();
  json doc = {{"benchmark", "whole training steps, sample-tokens/s (R runs x B samples x T positions per step)"},
              {"device", prop.name},
              {"cpu_threads", omp_get_max_threads()},
              {"budget_seconds", settings.budget},
              {"algorithm_note", "proximal with stage1_steps = 0: every step thresholds and renormalises"},
              {"results", json::array()}};
  auto save = [&] {
    doc["wall_seconds"] = seconds_since(bench_start);
    std::ofstream(settings.out_path) << doc.dump(2) << "\n";
  };
  int failures = 0;
  for (const Case& c : make_cases(settings)) {
    json row = {{"N", c.N}, {"T", c.T}, {"runs", c.R}, {"algorithm", c.algorithm}, {"batch_size", kBatch},
                {"gemm", gemm_name(c.gemm)}, {"predicted_seconds", c.predicted_seconds(settings.cpu)}};
    const std::string skip = skip_reason(c, settings, settings.budget - seconds_since(bench_start));
    if (!skip.empty()) {
      row["skipped"] = skip;
    } else {
      const auto t0 = Clock::now();
      try {
        run_case(c, settings.cpu, row);
      } catch (const std::exception& e) {
        row["error"] = e.what();
        ++failures;
      }
      row["case_seconds"] = seconds_since(t0);
    }
    std::fprintf(stderr, "%s\n", row.dump().c_str());
    doc["results"].push_back(row);
    save();
  }
  save();
  std::printf("%s\n", doc.dump(2).c_str());
  return failures ? 1 : 0;
}
