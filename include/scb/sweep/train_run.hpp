#pragma once
// One run from a config document: the path `scb train` and the Python `scb.train` share, so the
// two check the same things in the same order and train the same bits. Preparing validates every
// input (the config, whether the run fits in memory, the problem, the backend, model.init files)
// and throws ConfigError before any work; training then cannot fail on the input.
#include <functional>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scb/core/backend.hpp"
#include "scb/core/input_files.hpp"
#include "scb/core/output.hpp"
#include "scb/core/runpack.hpp"
#include "scb/core/trainer.hpp"

namespace scb {

// A user document with `--set`-style overrides ("train.lambda=0.01"; relative paths in their
// values resolve against `override_base`) applied, resolved against `base_dir`.
Config resolve_run_config(nlohmann::json document, const std::filesystem::path& base_dir,
                          const std::vector<std::string>& overrides, const std::filesystem::path& override_base);

struct SingleRun {
  Config config;
  RunPack pack;                      // one run
  std::unique_ptr<Backend> backend;
  int threads = 0;                   // as asked (0: every core)
  RunResult result;                  // filled in by train_single_run
  RunTiming timing;
  std::filesystem::path checkpoint;  // where train.checkpoint_every saves the run ("" = nowhere)
  std::vector<RunResult> resumed;    // the curve so far, when it goes on from a checkpoint
  InputHashes inputs;                // the files the config reads, hashed when the run was prepared
};

// ConfigError when the run cannot fit in memory, its problem or init files are wrong, or the
// device is unavailable.
std::unique_ptr<SingleRun> prepare_single_run(const Config& config, Device device, int threads);

// Checkpoints of the run go to `file` (train.checkpoint_every); with `resume` and an existing
// file, the run goes on from it (ConfigError when the file is damaged or another run's).
// Returns whether it resumed.
bool use_checkpoint_file(SingleRun& run, const std::filesystem::path& file, bool resume);
// Trains the prepared run to its end (or divergence); V and A are current on the host after it.
// stopping: as SweepOptions::stopping (a checkpoint at the step reached, when checkpointing).
void train_single_run(SingleRun& run, const ProgressFn& progress = {}, const std::function<bool()>& stopping = {});

}  // namespace scb
