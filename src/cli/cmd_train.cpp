// `scb train CONFIG.json --out DIR`: one run, the files of docs/formats.md section 4.
#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "scb/core/backend.hpp"
#include "scb/cli/cli.hpp"
#include "scb/cli/interrupt.hpp"
#include "scb/core/output.hpp"
#include "scb/core/progress.hpp"
#include "scb/sweep/train_run.hpp"

namespace scb {

namespace {

struct TrainArgs {
  std::string config;
  std::string out;
  std::string device = "auto";
  int threads = 0;
  std::vector<std::string> sets;
  CLI::Option* out_option = nullptr;
};

// Everything that can be wrong with the input is checked before any output exists.
std::unique_ptr<SingleRun> prepare(const TrainArgs& args) {
  if (args.out_option->count() > 0 && args.out.empty()) throw ConfigError("--out: expected a directory, got an empty path");
  const Device device = parse_device(args.device);
  const Config cfg = resolve_run_config(load_json_file(args.config), std::filesystem::absolute(args.config).parent_path(),
                                        args.sets, std::filesystem::current_path());
  std::unique_ptr<SingleRun> run = prepare_single_run(cfg, device, args.threads);
  if (!args.out.empty()) prepare_atomic_output_dir(args.out);
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

int run_train(const TrainArgs& args) {
  std::unique_ptr<SingleRun> run;
  try {
    run = prepare(args);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "scb train: %s\n", e.what());
    return 2;
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
    train_single_run(*run, progress);
  } catch (const Interrupted& e) {
    line.finish();
    std::fprintf(stderr, "scb train: stopped by %s at step %lld of %lld; nothing was written%s\n", signal_name(e.signal),
                 static_cast<long long>(pack.step[0]), static_cast<long long>(pack.steps[0]),
                 args.out.empty() ? "" : fmt::format(" ({} stays empty; run the command again)", args.out).c_str());
    return 128 + e.signal;
  }
  line.finish();
  if (!args.out.empty()) write_run_outputs_atomically(args.out, run->config, pack, 0, run->result, run->timing);
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
  cmd->callback([args, &status] {
    install_interrupt_handlers();
    status = run_train(*args);
  });
}

}  // namespace scb
