// `scb bench --sweeps`: whole sweeps, the way a researcher runs them: R runs of one problem
// (N, T, B = 64, a lambda per run log-spaced a decade either side of configs/reference.json's
// 0.005) trained as one pack on the default thread count, beside the PyTorch peer's sweep mode
// (bench/peers/torch_scb.py --runs R: the same runs as one program with a leading run dimension)
// and the token-drawing limit on all cores, all measured in one run. Like the peer it times the
// two stages of the reference schedule apart (plain SGD steps, proximal steps) and reports
// runs/s = R / (4,000 SGD steps + 12,000 proximal steps), and sample-tokens/s of the proximal steps.
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "scb/cli/bench.hpp"

namespace scb::bench {

namespace {

constexpr int64_t kTrainSteps = 16000, kStage1Steps = 4000;  // configs/reference.json
constexpr uint64_t kSweepBatch = 64;

// bench/peers/peer_common.py's default lambdas: log-spaced from 5e-4 to 5e-2 over the runs.
double sweep_lambda(uint64_t r, uint64_t R) {
  const double lo = std::log(5e-4), hi = std::log(5e-2);
  return R == 1 ? 5e-4 : std::exp(lo + (hi - lo) * double(r) / double(R - 1));
}

// One stage's figures: a fresh pack of the R runs in that stage, timed like a grid case.
EngineFigures time_stage(const BenchCase& c, const std::string& stage, const BenchPlan& plan, const BenchArgs& args,
                         std::shared_ptr<const Problem> problem, LimitMeter& meter) {
  std::vector<Config> cfgs;
  for (uint64_t r = 0; r < c.R; ++r) cfgs.push_back(bench_config(c.N, c.T, c.B, r, stage, sweep_lambda(r, c.R)));
  LimitSamples limit;
  meter.sample(*problem, c.T, limit);
  CaseEngine engine;
  engine.attach_configs(cfgs, plan.device, problem, c.request);
  return engine.time(c, args, *problem, meter, std::move(limit));
}

json stage_json(const EngineFigures& f, const BenchCase& c) {
  return {{"step_seconds", f.step_seconds},
          {"step_seconds_median", f.step_s},
          {"steps_per_rep", f.steps_per_rep},
          {"run_steps_per_s", double(c.R) / f.step_s},
          {"sample_tokens_per_s", f.tokens_per_s},
          {"diverged_runs", f.diverged}};
}

// The peer's columns of the table, and its ratios in `rec`.
std::string peer_figures(const BenchArgs& args, const PeerInfo& peer, const BenchCase& c, uint64_t memory_cap,
                         json& rec) {
  if (!args.peer) return "";
  if (!peer.available) {
    rec["peer"] = {{"skipped", peer.message}};
    return fmt::format(" {:>9} {:>9} |", "no peer", "-");
  }
  json pj = run_sweep_peer(args, peer, c.N, c.T, c.R, memory_cap);
  std::string cols = fmt::format(" {:>9} {:>9} |", pj.contains("skipped") ? "skipped" : "failed", "-");
  if (pj.contains("runs_per_s") && pj["runs_per_s"].is_number()) {
    const double peer_runs = pj["runs_per_s"].get<double>();
    rec["engine_over_peer_runs_per_s"] = rec["runs_per_s"].get<double>() / peer_runs;
    rec["engine_over_peer_sample_tokens_per_s"] =
        rec["sample_tokens_per_s"].get<double>() / pj["sample_tokens_per_s"].get<double>();
    cols = fmt::format(" {:>9.4f} {:>8.1f}x |", peer_runs, rec["engine_over_peer_runs_per_s"].get<double>());
  }
  rec["peer"] = std::move(pj);
  return cols;
}

void print_head(const BenchArgs& args) {
  if (args.quiet) return;
  std::printf("\nscb bench --sweeps: R runs of one problem (B = %lu, a lambda per run), the default thread count; "
              "runs/s of %ld-step runs (%ld SGD)\n",
              (unsigned long)kSweepBatch, (long)kTrainSteps, (long)kStage1Steps);
  std::printf("%5s %5s %6s | %9s %9s %9s %9s | %9s %6s |%s\n", "N", "T", "runs", "sgd step", "prox step", "runs/s",
              "tok/s", "limAll/s", "%limA", args.peer ? "  peer r/s  eng/peer |" : "");
}

}  // namespace

void run_sweep_section(const BenchPlan& plan, const PeerInfo& peer, LimitMeter& meter, BenchReport& report) {
  const BenchArgs& args = report.args();
  print_head(args);
  for (uint64_t N : plan.sweep_Ns)
    for (uint64_t T : plan.sweep_Ts) {
      auto problem = make_problem(bench_config(N, T, kSweepBatch, 0, "proximal"));
      for (uint64_t R : plan.sweep_runs) {
        const BenchCase c{N, T, kSweepBatch, R, plan.all_threads, 0};
        const EngineFigures sgd = time_stage(c, "sgd", plan, args, problem, meter);
        const EngineFigures prox = time_stage(c, "proximal", plan, args, problem, meter);
        const double run_seconds = double(kStage1Steps) * sgd.step_s + double(kTrainSteps - kStage1Steps) * prox.step_s;
        std::vector<double> lim_all = sgd.limit.all_threads;
        lim_all.insert(lim_all.end(), prox.limit.all_threads.begin(), prox.limit.all_threads.end());
        const double limit_all = median(lim_all);
        json rec = {{"N", N}, {"T", T}, {"B", kSweepBatch}, {"runs", R}, {"threads", "default"},
                    {"max_threads", plan.all_threads}, {"device", device_name(plan.device)},
                    {"train_steps", kTrainSteps}, {"stage1_steps", kStage1Steps},
                    {"sgd", stage_json(sgd, c)}, {"proximal", stage_json(prox, c)},
                    {"runs_per_s", double(R) / run_seconds}, {"sample_tokens_per_s", prox.tokens_per_s},
                    {"limit_tokens_per_s_all_threads", limit_all},
                    {"limit_tokens_per_s_1thread", median(prox.limit.one_thread)},
                    {"fraction_of_limit_all_threads", prox.tokens_per_s / limit_all},
                    {"load_average", load_average()[0]}};
        const std::string peer_cols = peer_figures(args, peer, c, plan.memory_cap, rec);
        if (!args.quiet)
          std::printf("%5lu %5lu %6lu | %7.3fms %7.3fms %9.3f %9s | %9s %5.1f%% |%s\n", (unsigned long)N,
                      (unsigned long)T, (unsigned long)R, sgd.step_s * 1e3, prox.step_s * 1e3, double(R) / run_seconds,
                      rate(prox.tokens_per_s).c_str(), rate(limit_all).c_str(), 100 * prox.tokens_per_s / limit_all,
                      peer_cols.c_str());
        std::fflush(stdout);
        report.add_to("sweeps", std::move(rec));
      }
    }
}

}  // namespace scb::bench
