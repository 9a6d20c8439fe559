// `scb train CONFIG.json --out DIR`: one run, the files of docs/formats.md section 4.
#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "scb/core/backend.hpp"
#include "scb/cli/cli.hpp"
#include "scb/cli/interrupt.hpp"
#include "scb/core/output.hpp"
#include "scb/core/progress.hpp"
#include "scb/sweep/run_id.hpp"
#include "scb/sweep/train_run.hpp"

namespace scb {

namespace {

struct TrainArgs {
  std::string config;
  std::string out;
  std::string device = "auto";
  int threads = 0;
  std::vector<std::string> sets;
  bool resume = false;
  CLI::Option* out_option = nullptr;
};

std::filesystem::path checkpoint_file(const std::string& out) { return out + ".checkpoint"; }

// --resume of a run whose output is already complete: nothing to do (a requeued job that had
// finished). ConfigError when DIR holds another run's output.
bool finished_output(const std::string& out, const Config& cfg) {
  std::error_code ec;
  if (out.empty() || !std::filesystem::exists(std::filesystem::path(out) / "summary.json", ec)) return false;
  const std::string have = run_id_of(load_json_file(std::filesystem::path(out) / "config.json"));
  if (have != run_id_of(cfg.resolved))
    throw ConfigError(fmt::format("--resume: {} holds the output of another run (run_id {}, this config's is {})", out, have,
                                  run_id_of(cfg.resolved)));
  return true;
}

// Everything that can be wrong with the input is checked before any output exists.
std::unique_ptr<SingleRun> prepare(const TrainArgs& args) {
  if (args.out_option->count() > 0 && args.out.empty()) throw ConfigError("--out: expected a directory, got an empty path");
  const Device device = parse_device(args.device);
  const Config cfg = resolve_run_config(load_json_file(args.config), std::filesystem::absolute(args.config).parent_path(),
                                        args.sets, std::filesystem::current_path());
  std::unique_ptr<SingleRun> run = prepare_single_run(cfg, device, args.threads);
  if (args.resume && args.out.empty()) throw ConfigError("--resume: needs --out DIR (the run's checkpoint is DIR.checkpoint)");
  std::error_code ec;
  if (!args.resume && !args.out.empty() && std::filesystem::exists(checkpoint_file(args.out), ec))
    throw ConfigError(fmt::format("--out {}: {} holds a run in flight; add --resume to go on with it, or remove it",
                                  args.out, checkpoint_file(args.out).string()));
  if (args.resume && finished_output(args.out, cfg)) return nullptr;
  if (!args.out.empty()) {
    prepare_atomic_output_dir(args.out);
    if (use_checkpoint_file(*run, checkpoint_file(args.out), args.resume))
      std::fprintf(stderr, "scb train: resuming from %s at step %lld\n", checkpoint_file(args.out).c_str(),
                   static_cast<long long>(run->pack.step[0]));
  }
  return run;
}

std::string result_line(const SingleRun& run, const std::string& out) {
  const RunResult& res = run.result;
  const RunPack& pack = run.pack;
  const Metrics& f = res.final_metrics;
  return fmt::format("{} steps={} samples={} loss={:.8g} excess_loss={:.4g} dist_A_norm={:.4g} dist_V_norm={:.4g} "
                     "best_dist_A_norm={:.4g}@{} wall={:.2f}s tokens/s={}{}",
                     res.status == RunStatus::diverged ? "diverged" : "ok", pack.step[0], pack.samples[0], f.loss,
                     f.excess_loss, f.dist_A_norm, f.dist_V_norm, res.best.dist_A_norm, res.best.step,
                     run.timing.wall_seconds,
                     format_rate(double(pack.samples[0]) * pack.T / std::max(run.timing.wall_seconds, 1e-9)),
                     out.empty() ? "" : " -> " + out);
}

std::string interrupted_message(const TrainArgs& args, const SingleRun& run, int signal) {
  const std::string head = fmt::format("scb train: stopped by {} at step {} of {}", signal_name(signal), run.pack.step[0],
                                       run.pack.steps[0]);
  std::error_code ec;
  if (!args.out.empty() && std::filesystem::exists(checkpoint_file(args.out), ec))
    return fmt::format("{}; its checkpoint (taken as it stopped) is in {}: continue with scb train {} --out {} --resume", head,
                       checkpoint_file(args.out).string(), args.config, args.out);
  return fmt::format("{}; nothing was written{}", head,
                     args.out.empty() ? "" : fmt::format(" ({} stays empty; run the command again)", args.out));
}

int run_train(const TrainArgs& args) {
  std::unique_ptr<SingleRun> run;
  try {
    run = prepare(args);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "scb train: %s\n", e.what());
    return 2;
  }
  if (!run) {
    std::printf("complete -> %s (already finished; nothing to do)\n", args.out.c_str());
    return 0;
  }
  ProgressLine line(stderr_is_terminal());
  const RunPack& pack = run->pack;
  auto progress = [&](const TrainProgress& p) {
    throw_if_interrupted();
    const double rate = p.elapsed_seconds > 0 ? double(pack.samples[0]) / p.elapsed_seconds : 0;
    line.update(double(p.steps_done) / double(std::max<int64_t>(1, p.steps_total)),
                fmt::format("step {}/{}  {} samples/s  loss {:.6f}", p.steps_done, p.steps_total, format_rate(rate),
                            p.last_loss));
  };
  try {
    train_single_run(*run, progress, [] { return interrupt_signal() != 0; });
  } catch (const Interrupted& e) {
    line.finish();
    std::fprintf(stderr, "%s\n", interrupted_message(args, *run, e.signal).c_str());
    return 128 + e.signal;
  }
  line.finish();
  if (!args.out.empty()) {
    write_run_outputs_atomically(args.out, run->config, pack, 0, run->result, run->timing, run->inputs);
    std::error_code ec;
    std::filesystem::remove(checkpoint_file(args.out), ec);  // the run is complete: its checkpoint is no longer state
    std::filesystem::remove(checkpoint_file(args.out).string() + ".tmp", ec);
  }
  std::printf("%s\n", result_line(*run, args.out).c_str());
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app, int& status) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train one SCB run from a JSON config (docs/formats.md section 4)");
  cmd->add_option("config", args->config, "Config file (JSON)")->required();
  args->out_option = cmd->add_option("--out", args->out, "Output directory (new or empty)");
  cmd->add_option("--device", args->device, "cpu, cuda or auto (default auto)");
  cmd->add_option("--threads", args->threads, "CPU threads (0 = up to all cores, as many as run fastest)");
  cmd->add_option("--set", args->sets, "Override a key: --set train.lambda=0.01 (repeatable)");
  cmd->add_flag("--resume", args->resume, "Go on from DIR.checkpoint (train.checkpoint_every) when there is one");
  cmd->callback([args, &status] {
    install_interrupt_handlers();
    status = run_train(*args);
  });
}

}  // namespace scb
