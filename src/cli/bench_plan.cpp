// `scb bench`, the plan: the options checked and resolved into the grid of cases (which N, T, B,
// pack sizes and thread counts), the training config each case runs, and what does not fit in
// memory. Everything here is decided before anything is timed.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "scb/cli/bench.hpp"
#include "scb/core/output.hpp"
#include "scb/cuda/cuda_backend.hpp"

namespace scb::bench {

namespace {

// 1000, 1e4, 10k, 1M, 4G (k/M/G are powers of 1000 for counts, of 1024 for bytes).
uint64_t parse_quantity(const std::string& text, const std::string& key, bool bytes) {
  std::string s = text;
  double mult = 1;
  if (!s.empty()) {
    const char c = s.back();
    const double base = bytes ? 1024.0 : 1000.0;
    if (c == 'k' || c == 'K') mult = base;
    if (c == 'm' || c == 'M') mult = base * base;
    if (c == 'g' || c == 'G') mult = base * base * base;
    if (mult != 1) s.pop_back();
  }
  size_t used = 0;
  double v = -1;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  v *= mult;
  if (used != s.size() || s.empty() || !(v >= 0) || v > 1.8e19 || std::floor(v) != v)
    throw ConfigError(fmt::format("{}: '{}' is not a non-negative integer (forms: 1000, 1e4, 10k{})", key, text,
                                  bytes ? ", 4G" : ""));
  return static_cast<uint64_t>(v);
}

std::vector<uint64_t> parse_list(const std::vector<std::string>& items, const std::string& key, uint64_t lo,
                                 uint64_t hi) {
  std::vector<uint64_t> out;
  for (const std::string& s : items) {
    const uint64_t v = parse_quantity(s, key, false);
    if (v < lo || v > hi) throw ConfigError(fmt::format("{}: {} is out of range [{}, {}]", key, v, lo, hi));
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  if (out.empty()) throw ConfigError(fmt::format("{}: expected a comma-separated list", key));
  return out;
}

void check_numbers(const BenchArgs& args) {
  if (args.reps < 1) throw ConfigError("--reps: expected an integer >= 1");
  if (args.steps < 0) throw ConfigError("--steps: expected an integer >= 0 (0 = from --seconds)");
  if (!(args.seconds > 0)) throw ConfigError("--seconds: expected a positive number");
  if (!(args.max_step_seconds > 0)) throw ConfigError("--max-step-seconds: expected a positive number");
  if (args.stage != "proximal" && args.stage != "sgd") throw ConfigError("--stage: expected proximal or sgd");
}

Device resolve_device(const std::string& text) {
  Device device = parse_device(text);
  if (device == Device::auto_select) device = cuda_device_count() > 0 ? Device::cuda : Device::cpu;
  if (device == Device::cuda && cuda_device_count() == 0)
    throw ConfigError("--device: cuda was requested but no CUDA device is visible (use cpu)");
  return device;
}

}  // namespace

BenchPlan resolve_plan(const BenchArgs& args) {
  BenchPlan plan;
  plan.Ns = parse_list(args.N, "--N", 2, 65535);
  plan.Ts = parse_list(args.T, "--T", 1, 0xFFFFFFFFull);
  plan.Bs = parse_list(args.B, "--B", 1, 1u << 24);
  plan.packs = parse_list(args.pack, "--pack", 1, 1000000);
  plan.thread_list = parse_list(args.threads, "--threads", 0, 4096);
  check_numbers(args);
  plan.device = resolve_device(args.device);
  const uint64_t avail = available_host_memory();
  plan.memory_cap = args.memory_cap.empty() ? (avail > 0 ? avail / 2 : (uint64_t(4) << 30))
                                            : parse_quantity(args.memory_cap, "--memory-cap", true);
  plan.sweep_runs = parse_list(args.sweep_runs, "--sweep-runs", 1, 100000);
  plan.sweep_Ns = parse_list(args.sweep_N, "--sweep-N", 2, 65535);
  plan.sweep_Ts = parse_list(args.sweep_T, "--sweep-T", 1, 0xFFFFFFFFull);
  plan.all_threads = omp_get_max_threads();
  return plan;
}

std::vector<BenchCase> case_grid(const BenchPlan& plan) {
  std::vector<BenchCase> cases;
  for (uint64_t N : plan.Ns)
    for (uint64_t T : plan.Ts)
      for (uint64_t B : plan.Bs)
        for (uint64_t R : plan.packs)
          for (uint64_t thr_req : plan.thread_list)
            cases.push_back({N, T, B, R, thr_req == 0 ? plan.all_threads : int(thr_req), int(thr_req)});
  return cases;
}

// The bench's training config: proximal stage from step 0 (threshold and renormalisation every
// step: the most expensive step, and where the paper's method spends most of its steps), or plain
// SGD. lambda = 0.5 / T keeps the threshold the same size relative to a_t = 1/T as the docs/model.md section 5
// reference point (N = 3, T = 100, lambda = 0.005). Defaults otherwise.
Config bench_config(uint64_t N, uint64_t T, uint64_t B, uint64_t seed, const std::string& stage, double lambda) {
  json doc = {{"problem", {{"N", N}, {"T", T}, {"Q", std::min<uint64_t>(T, 2)}, {"seed", 1}}},
              {"train",
               {{"algorithm", stage},
                {"steps", int64_t(1) << 40},
                {"batch_size", B},
                {"seed", seed},
                {"stage1_steps", 0},
                {"lambda", lambda < 0 ? 0.5 / double(T) : lambda}}},
              {"eval", {{"every", int64_t(1) << 40}}}};
  return resolve_config(doc, ".");
}

const char* device_name(Device device) { return device == Device::cuda ? "cuda" : "cpu"; }

std::string memory_skip(const BenchCase& c, const BenchArgs& args, const BenchPlan& plan, json& rec) {
  const RunFootprint fp = run_footprint(bench_config(c.N, c.T, c.B, 0, args.stage));
  const uint64_t bytes = c.R * (fp.parameters + fp.scratch) + fp.problem;
  rec["bytes"] = bytes;
  if (bytes > plan.memory_cap)
    return fmt::format("needs {:.2f} GiB > memory cap {:.2f} GiB (--memory-cap)", bytes / 1073741824.0,
                       plan.memory_cap / 1073741824.0);
  if (plan.device == Device::cuda) {
    uint64_t free_b = 0, total_b = 0;
    cuda_memory_info(free_b, total_b);
    if (bytes > free_b * 9 / 10)
      return fmt::format("needs {:.2f} GiB > 90% of free device memory", bytes / 1073741824.0);
  }
  return "";
}

}  // namespace scb::bench
