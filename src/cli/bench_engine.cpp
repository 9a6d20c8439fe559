// `scb bench`, timing one case on a backend: the pack of R runs attached to a fresh backend, two
// warm-up steps, then --reps repetitions of K steps with a limit measurement between repetitions,
// so the limit is taken as close in time to the steps as it can be. Figures are medians.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "scb/cli/bench.hpp"
#include "scb/sweep/device.hpp"

namespace scb::bench {

void CaseEngine::attach(const BenchCase& c, const BenchArgs& args, Device device,
                        std::shared_ptr<const Problem> problem) {
  std::vector<Config> cfgs;
  for (uint64_t r = 0; r < c.R; ++r) cfgs.push_back(bench_config(c.N, c.T, c.B, r, args.stage));
  attach_configs(cfgs, device, std::move(problem), c.request);
}

void CaseEngine::attach_configs(const std::vector<Config>& cfgs, Device device, std::shared_ptr<const Problem> problem,
                                int threads) {
  for (const Config& cfg : cfgs) pack_.add_run(cfg, problem);
  backend_ = make_backend(device, threads);
  backend_->attach(pack_);
  sync_ = device != Device::cpu;
}

double CaseEngine::step_seconds(int64_t K) {
  std::vector<double> cpu;
  return timed_steps(K, cpu);
}

void CaseEngine::release() {
  backend_.reset();
  pack_ = RunPack{};
}

// Wall seconds per step of K steps; their CPU seconds per step go to `cpu_per_step`.
double CaseEngine::timed_steps(int64_t K, std::vector<double>& cpu_per_step) {
  static const std::vector<uint32_t> run0{0};
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = process_cpu_seconds();
  for (int64_t i = 0; i < K; ++i) backend_->step();
  if (sync_) backend_->evaluate(run0);  // a device backend's steps are asynchronous
  cpu_per_step.push_back((process_cpu_seconds() - c0) / double(K));
  return seconds_since(t0) / double(K);
}

EngineFigures CaseEngine::time(const BenchCase& c, const BenchArgs& args, const Problem& problem, LimitMeter& meter,
                               LimitSamples limit) {
  EngineFigures fig;
  timed_steps(1, fig.cpu_seconds_per_step);  // first touch of the scratch, thread pool start-up
  const double warm = timed_steps(1, fig.cpu_seconds_per_step);
  fig.cpu_seconds_per_step.clear();
  fig.reps = args.reps;
  fig.steps_per_rep = args.steps > 0 ? args.steps
                                     : std::max<int64_t>(1, std::llround(args.seconds / args.reps / std::max(warm, 1e-7)));
  if (warm > args.max_step_seconds) {
    fig.reps = 1;
    fig.steps_per_rep = 1;
    fig.capped = fmt::format("one step took {:.2f} s > --max-step-seconds: one repetition of one step", warm);
  }
  for (int rep = 0; rep < fig.reps; ++rep) {
    fig.step_seconds.push_back(timed_steps(fig.steps_per_rep, fig.cpu_seconds_per_step));
    if (rep + 1 < fig.reps || fig.reps == 1) meter.sample(problem, c.T, limit);  // between repetitions
  }
  for (size_t r = 0; r < pack_.size(); ++r) fig.diverged += pack_.status[r] == RunStatus::diverged;
  fig.backend = backend_->name();
  fig.limit = std::move(limit);
  fig.summarise(c);
  return fig;
}

void EngineFigures::summarise(const BenchCase& c) {
  tokens = double(c.R) * c.B * c.T;
  step_s = median(step_seconds);
  tokens_per_s = tokens / step_s;
  tokens_per_cpu_s = tokens / median(cpu_seconds_per_step);
  limit_1thread = median(limit.one_thread);
  limit_all = median(limit.all_threads);
}

}  // namespace scb::bench
