// One run from a config document (see scb/sweep/train_run.hpp for why it is shared).
#include "scb/sweep/train_run.hpp"

#include <omp.h>

#include <chrono>

#include <fmt/format.h>

#include "scb/core/checkpoint.hpp"
#include "scb/core/problem.hpp"
#include "scb/cuda/cuda_backend.hpp"
#include "scb/sweep/device.hpp"
#include "scb/sweep/run_id.hpp"

namespace scb {

namespace {

// On the CPU the whole run lives in host memory: refuse it before the problem's own N x N
// tables are allocated rather than fail part way.
void check_fits_in_host_memory(const Config& cfg, Device device) {
  if (device != Device::cpu && cuda_device_count() > 0) return;
  const RunFootprint f = run_footprint(cfg);
  const uint64_t avail = available_host_memory();
  if (avail > 0 && f.total() > avail)
    throw ConfigError(fmt::format(
        "problem: this run needs {:.2f} GiB (A is T x N floats, plus B x T tokens and N x N tables) but only {:.2f} GiB "
        "of memory is available; reduce problem.T, problem.N or train.batch_size",
        f.total() / 1073741824.0, avail / 1073741824.0));
}

}  // namespace

Config resolve_run_config(nlohmann::json document, const std::filesystem::path& base_dir,
                          const std::vector<std::string>& overrides, const std::filesystem::path& override_base) {
  for (const std::string& s : overrides) apply_override(document, s, override_base);
  return resolve_config(document, base_dir);
}

std::unique_ptr<SingleRun> prepare_single_run(const Config& config, Device device, int threads) {
  check_thread_count(threads);
  auto run = std::make_unique<SingleRun>();
  run->config = config;
  run->threads = threads;
  check_fits_in_host_memory(config, device);
  std::shared_ptr<const Problem> problem = make_problem(config);
  run->backend = make_backend(device, threads);
  run->pack.add_run(config, problem);  // loads model.init files: the last input check
  run->inputs.add(config);  // hashed once, right after they were read (summary.json records them)
  return run;
}

bool use_checkpoint_file(SingleRun& run, const std::filesystem::path& file, bool resume) {
  run.checkpoint = file;
  std::error_code ec;
  if (!resume || !std::filesystem::exists(file, ec)) return false;
  const RunCheckpoint c = read_checkpoint(file);
  if (c.run_id != run_id_of(run.config.resolved))
    throw ConfigError(fmt::format("--resume: {} is the checkpoint of another run (run_id {}, this config's is {}); remove it or use "
                                  "the config it was made with",
                                  file.string(), c.run_id, run_id_of(run.config.resolved)));
  restore_checkpoint(run.pack, 0, c);
  run.resumed = {c.result};
  return true;
}

void train_single_run(SingleRun& run, const ProgressFn& progress, const std::function<bool()>& stopping) {
  const auto start = std::chrono::steady_clock::now();
  TrainHooks hooks;
  hooks.resumed = run.resumed;
  CheckpointClock clock{run.config.train.checkpoint_every, run.pack.step[0], 0};
  const std::string id = run_id_of(run.config.resolved);
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  if (!run.checkpoint.empty() && clock.every.enabled()) {
    hooks.due = [&](size_t r) { return clock.due(run.pack.step[r], elapsed()); };
    hooks.save = [&](size_t r, const RunResult& res) {
      write_checkpoint(run.checkpoint, checkpoint_of(run.pack, r, res, id));
      clock.taken(run.pack.step[r], elapsed());
    };
    hooks.checkpointed = [](size_t) { return true; };
    hooks.stopping = stopping;
  }
  run.result = train_pack(run.pack, *run.backend, progress, {}, &hooks).at(0);
  run.timing.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.timing.device = run.backend->name();
  run.timing.threads = run.threads > 0 ? run.threads : omp_get_max_threads();
}

}  // namespace scb
