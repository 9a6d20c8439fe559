// `scb train CONFIG.json --out DIR`: one run, the files of SPEC 8.
#include <omp.h>

#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "scb/core/backend.hpp"
#include "scb/cli/cli.hpp"
#include "scb/core/output.hpp"
#include "scb/core/progress.hpp"
#include "scb/cuda/cuda_backend.hpp"
#include "scb/sweep/device.hpp"

namespace scb {

namespace {

struct TrainArgs {
  std::string config;
  std::string out;
  std::string device = "auto";
  int threads = 0;
  std::vector<std::string> sets;
};

// Everything that can be wrong with the input is checked here, before any output exists.
Config load_config(const TrainArgs& args) {
  nlohmann::json doc = load_json_file(args.config);
  for (const std::string& s : args.sets) apply_override(doc, s, std::filesystem::current_path());
  return resolve_config(doc, std::filesystem::absolute(args.config).parent_path());
}

void check_fits(const Config& cfg, Device device) {
  const RunFootprint f = run_footprint(cfg);
  if (device == Device::cpu || cuda_device_count() == 0) {
    const uint64_t avail = available_host_memory();
    if (avail > 0 && f.total() > avail)
      throw ConfigError(fmt::format(
          "problem: this run needs {:.2f} GiB (A is T x N floats, plus B x T tokens and N x N tables) but only {:.2f} GiB "
          "of memory is available; reduce problem.T, problem.N or train.batch_size",
          f.total() / 1073741824.0, avail / 1073741824.0));
  }
}

int run_train(const TrainArgs& args) {
  Config cfg;
  std::shared_ptr<const Problem> pb;
  Device device;
  std::unique_ptr<Backend> backend;
  RunPack pack;
  try {
    device = parse_device(args.device);
    if (args.threads < 0) throw ConfigError("--threads: expected a positive integer (0 = all cores)");
    cfg = load_config(args);
    check_fits(cfg, device);  // before the problem's own N x N tables are allocated
    pb = make_problem(cfg);
    backend = make_backend(device, args.threads);
    pack.add_run(cfg, pb);  // loads model.init files: the last input check
    if (!args.out.empty()) prepare_output_dir(args.out);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "scb train: %s\n", e.what());
    return 2;
  }

  ProgressLine line(stderr_is_terminal());
  const auto start = std::chrono::steady_clock::now();
  auto progress = [&](const TrainProgress& p) {
    const double rate = p.elapsed_seconds > 0 ? double(pack.samples[0]) / p.elapsed_seconds : 0;
    line.update(double(p.steps_done) / double(std::max<int64_t>(1, p.steps_total)),
                fmt::format("step {}/{}  {} samples/s  loss {:.6f}", p.steps_done, p.steps_total, format_rate(rate),
                            p.last_loss));
  };
  const std::vector<RunResult> results = train_pack(pack, *backend, progress);
  line.finish();
  RunTiming timing;
  timing.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  timing.device = backend->name();
  timing.threads = args.threads > 0 ? args.threads : omp_get_max_threads();
  const RunResult& res = results[0];
  if (!args.out.empty()) write_run_outputs(args.out, cfg, pack, 0, res, timing);
  const Metrics& f = res.final_metrics;
  std::printf("%s\n", fmt::format("{} steps={} samples={} loss={:.8g} excess_loss={:.4g} dist_A_norm={:.4g} dist_V_norm={:.4g} "
                                  "best_dist_A_norm={:.4g}@{} wall={:.2f}s tokens/s={}{}",
                                  res.status == RunStatus::diverged ? "diverged" : "ok", pack.step[0], pack.samples[0],
                                  f.loss, f.excess_loss, f.dist_A_norm, f.dist_V_norm, res.best.dist_A_norm,
                                  res.best.step, timing.wall_seconds,
                                  format_rate(double(pack.samples[0]) * pack.T / std::max(timing.wall_seconds, 1e-9)),
                                  args.out.empty() ? "" : " -> " + args.out)
                          .c_str());
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app, int& status) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train one SCB run from a JSON config (SPEC 8)");
  cmd->add_option("config", args->config, "Config file (JSON)")->required();
  cmd->add_option("--out", args->out, "Output directory (new or empty)");
  cmd->add_option("--device", args->device, "cpu, cuda or auto (default auto)");
  cmd->add_option("--threads", args->threads, "CPU threads (0 = all cores)");
  cmd->add_option("--set", args->sets, "Override a key: --set train.lambda=0.01 (repeatable)");
  cmd->callback([args, &status] { status = run_train(*args); });
}

}  // namespace scb
