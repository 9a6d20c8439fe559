// `scb bench`: whole training steps of a backend across N, T, B and pack size (sample-tokens/s,
// steps/s), each figure beside the token-drawing limit (Philox + alias drawing of the same
// tokens and nothing else, single thread and all threads) measured in the same run, on the same
// machine, interleaved with the step repetitions, so every figure is also a fraction of that
// limit. `--peer` runs the PyTorch peer (bench/peers/torch_scb.py) on the same configs right
// after the engine and prints engine/peer. Results go to stdout as a table and to --json.
// `--sweeps` adds whole sweeps beside the peer's sweep mode (bench_sweep.cpp), `--contention` the
// default thread count against one thread beside a busy process (bench_contention.cpp); `--no-grid`
// leaves out the grid, `--memory-pass` sets each step beside one pass over A's bytes (bench_limit.cpp). This file is the command and the order of its steps; each step is a
// bench_*.cpp file (include/scb/cli/bench.hpp lists them).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "scb/cli/bench.hpp"
#include "scb/cli/cli.hpp"

namespace scb {

namespace {

using namespace bench;

// One problem alive at a time (the N x N tables of the largest N are big); the grid runs the cases
// of one N and T together, so each is made once.
class ProblemCache {
 public:
  explicit ProblemCache(const std::string& stage) : stage_(stage) {}
  std::shared_ptr<const Problem> get(uint64_t N, uint64_t T) {
    if (!problem_ || problem_->N != N || problem_->T != T) {
      problem_.reset();
      problem_ = make_problem(bench_config(N, T, 64, 0, stage_));
    }
    return problem_;
  }

 private:
  std::string stage_;
  std::shared_ptr<const Problem> problem_;
};

// The cases of one bench, each through the same steps; what lasts across cases (the problem,
// the limit's draw counter, the report) lives here.
class CaseRunner {
 public:
  CaseRunner(const BenchArgs& args, const BenchPlan& plan, const PeerInfo& peer, BenchReport& report)
      : args_(args), plan_(plan), peer_(peer), report_(report), problems_(args.stage), meter_(args, plan.all_threads) {}

  // False when the case could not be set up (a failure of the bench); skipped cases are not.
  bool run(const BenchCase& c) {
    json rec = report_.case_record(c);
    const auto load_start = load_average();
    std::shared_ptr<const Problem> problem;
    LimitSamples limit;
    std::string skip = memory_skip(c, args_, plan_, rec);
    if (skip.empty()) {
      problem = problems_.get(c.N, c.T);
      meter_.sample(*problem, c.T, limit);
      skip = predicted_skip(c, args_, limit, rec);
    }
    if (!skip.empty()) {
      report_.skipped(c, std::move(rec), skip);
      return true;
    }
    CaseEngine engine;
    try {
      engine.attach(c, args_, plan_.device, problem);
    } catch (const std::exception& e) {
      report_.failed(c, std::move(rec), e.what());
      return false;
    }
    EngineFigures fig = engine.time(c, args_, *problem, meter_, std::move(limit));
    engine.release();
    if (args_.memory_pass) fig.memory_pass_s = memory_pass_seconds(c.R * c.N * c.T, plan_.all_threads, args_.reps);
    report_.engine_figures(c, fig, rec);
    const std::string peer_cols = add_peer_figures(args_, peer_, c, fig, plan_.memory_cap, rec);
    report_.measured(c, std::move(rec), fig, peer_cols, load_start);
    return true;
  }
  LimitMeter& meter() { return meter_; }

 private:
  const BenchArgs& args_;
  const BenchPlan& plan_;
  const PeerInfo& peer_;
  BenchReport& report_;
  ProblemCache problems_;
  LimitMeter meter_;
};

int run_bench(const BenchArgs& args) {
  BenchPlan plan;
  try {
    plan = resolve_plan(args);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "scb bench: %s\n", e.what());
    return 2;
  }
  PeerInfo peer;
  if (args.peer) {
    peer = probe_peer(args);
    if (!peer.available) std::fprintf(stderr, "scb bench: --peer skipped: %s\n", peer.message.c_str());
  }
  BenchReport report(args, plan, peer);
  if (!report.begin_run()) return 2;
  CaseRunner runner(args, plan, peer, report);
  int failures = 0;
  if (args.grid) {
    report.print_table_head();
    for (const BenchCase& c : case_grid(plan))
      if (!runner.run(c)) ++failures;
  }
  if (args.sweeps) run_sweep_section(plan, peer, runner.meter(), report);
  if (args.contention) run_contention_section(plan, report);
  report.finish();
  return failures ? 1 : 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int& status) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Benchmark whole training steps (sample-tokens/s, steps/s) beside the token-drawing limit");
  cmd->add_option("--N", args->N, "Vocabulary sizes (comma-separated; default 3,20,100,500)")->delimiter(',');
  cmd->add_option("--T", args->T, "Context lengths (default 1000,10000,100000; 1e4 and 10k work)")->delimiter(',');
  cmd->add_option("--B", args->B, "Batch sizes (default 64,256)")->delimiter(',');
  cmd->add_option("--pack", args->pack, "Runs per pack (default 1,100,1000)")->delimiter(',');
  cmd->add_option("--threads", args->threads, "CPU thread counts to try (0 = all cores; default 0)")->delimiter(',');
  cmd->add_option("--steps", args->steps, "Steps per repetition (default: from --seconds)");
  cmd->add_option("--seconds", args->seconds, "Timed seconds per configuration, split over the repetitions (default 1)");
  cmd->add_option("--reps", args->reps, "Repetitions; figures are medians (default 5)");
  cmd->add_option("--max-step-seconds", args->max_step_seconds,
                  "Skip configurations predicted to take longer per step (default 5)");
  cmd->add_option("--memory-cap", args->memory_cap,
                  "Skip configurations needing more memory (bytes, 4G, 512M; default half the available memory)");
  cmd->add_option("--device", args->device, "cpu, cuda or auto (default cpu)");
  cmd->add_option("--stage", args->stage, "proximal (threshold + renormalisation every step, default) or sgd");
  cmd->add_option("--json", args->json_path, "Write every figure to this JSON file");
  cmd->add_flag("--append", args->append,
                "Add this run's figures to an existing --json file (each run's machine and settings kept under runs)");
  cmd->add_flag("--peer", args->peer, "Also run the PyTorch peer (bench/peers/torch_scb.py) on the same configs");
  cmd->add_option("--peer-python", args->peer_python, "Python for the peer (default /usr/bin/python3)");
  cmd->add_option("--peer-script", args->peer_script, "Path of torch_scb.py (default: found from the source tree)");
  cmd->add_flag("--quiet", args->quiet, "No table on stdout");
  cmd->add_flag("!--no-grid", args->grid, "Leave out the N x T x B x pack grid (with --sweeps or --contention)");
  cmd->add_flag("--sweeps", args->sweeps,
                "Also time whole sweeps: R runs (--sweep-runs) of N, T (--sweep-N, --sweep-T), B = 64, a lambda per "
                "run, runs/s and sample-tokens/s beside the limit on all cores (and the peer's --runs R with --peer)");
  cmd->add_option("--sweep-runs", args->sweep_runs, "Runs per sweep (default 100,1000)")->delimiter(',');
  cmd->add_option("--sweep-N", args->sweep_N, "Vocabulary sizes of the sweeps (default 3,20)")->delimiter(',');
  cmd->add_option("--sweep-T", args->sweep_T, "Context lengths of the sweeps (default 100,1000)")->delimiter(',');
  cmd->add_flag("--contention", args->contention,
                "Also time the default thread count against one thread, idle and beside a busy process the bench "
                "starts on one core (a single run N=3 T=1e4 B=128 and 1,000 runs N=3 T=100 B=64)");
  cmd->add_flag("--memory-pass", args->memory_pass,
                "Also time one read+write pass over the bytes of each case's A on all cores (a[i] *= c, like "
                "STREAM's scale) and report the step time over it");
  cmd->callback([args, &status] { status = run_bench(*args); });
}

}  // namespace scb
