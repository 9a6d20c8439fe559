#pragma once
// Running a sweep, `scb sweep`: the options, the summary, and run_sweep, which reads as its
// steps (check, open or recover the directory, plan, train the packs, finish).
#include <cstdint>
#include <filesystem>
#include <functional>

#include "scb/core/backend.hpp"
#include "scb/core/trainer.hpp"
#include "scb/sweep/save_params.hpp"
#include "scb/sweep/shard.hpp"

namespace scb {

struct SweepOptions {
  std::filesystem::path sweep_file;
  std::filesystem::path out;
  bool resume = false;
  bool shard_given = false;
  ShardSpec shard;
  Device device = Device::auto_select;
  int threads = 0;
  uint64_t memory_budget = 0;  // 0: default_memory_budget
  size_t max_pack_runs = 0;    // 0: automatic (64 runs on the CPU, 4096 on a device)
  SaveParams save_params = SaveParams::best;
  bool save_params_given = false;  // on --resume, the manifest's mode unless given
  bool quiet = false;
  bool dry_run = false;
  // Called after every step of every pack, one call at a time, with the progress of the whole
  // sweep (steps and sample-tokens of the runs left to train; the Python binding draws its bar and
  // checks for Ctrl-C here). An exception it throws stops every worker at its next step and
  // run_sweep rethrows it: the finished runs are on disk and --resume continues, as after a kill.
  std::function<void(const TrainProgress&)> poll;
  // Whether a stop has been asked for (checked after every step, before poll): runs with
  // train.checkpoint_every then save a checkpoint at the step reached, so that --resume loses
  // nothing (the CLI: a SIGINT or SIGTERM has arrived).
  std::function<bool()> stopping;
};

struct SweepSummary {
  size_t total = 0, skipped = 0, ok = 0, diverged = 0, packs = 0, workers = 0;
  double wall_seconds = 0;
  int64_t sample_tokens = 0;
  uint64_t budget = 0, largest_pack_bytes = 0;  // filled in by a dry run
};

// Validates everything (ConfigError, before any output exists), then trains the runs of the
// shard that are not complete yet. Progress goes to stderr when it is a terminal.
SweepSummary run_sweep(const SweepOptions& options);

}  // namespace scb
