#pragma once
// The backend-agnostic training driver: evaluates every `eval.every` steps and at the end,
// tracks the best point (lowest dist_A_norm: early stopping), isolates diverged runs.
#include <functional>
#include <string>
#include <vector>

#include "scb/core/backend.hpp"

namespace scb {

struct RunResult {
  std::vector<Metrics> curve;
  Metrics final_metrics;
  Metrics best;              // evaluated point with the lowest dist_A_norm
  RunStatus status = RunStatus::running;
  int64_t diverged_step = -1;
};

struct TrainProgress {
  int64_t steps_done = 0, steps_total = 0;   // summed over runs
  int64_t sample_tokens = 0;                 // samples * T summed over runs
  double elapsed_seconds = 0;
  double last_loss = 0;
};

using ProgressFn = std::function<void(const TrainProgress&)>;
// Called as each run of the pack finishes (done or diverged), with the run index.
using RunFinishedFn = std::function<void(size_t run, const RunResult&)>;

// Checkpointing and resuming (scb/core/checkpoint.hpp). `resumed`, when not empty, holds each
// run's curve and best point so far (its counters, V and A are already in the pack). At every
// evaluation point, the runs still going for which `due(r)` holds are handed to `save(r, result)`
// with the pack's host arrays current (the backend has downloaded).
struct TrainHooks {
  std::vector<RunResult> resumed;
  std::function<bool(size_t run)> due;
  std::function<void(size_t run, const RunResult&)> save;
  // A stop was asked for (a signal; checked after every step): every run that keeps checkpoints
  // (`checkpointed`) saves one at the step reached, before the progress callback ends training,
  // so a Ctrl-C or a scheduler's SIGTERM loses no steps. Resuming from a step between
  // evaluations is exact (the randomness is counter-based; evaluations change no state).
  std::function<bool()> stopping;
  std::function<bool(size_t run)> checkpointed;
};

std::vector<RunResult> train_pack(RunPack& pack, Backend& backend, const ProgressFn& progress = {},
                                  const RunFinishedFn& finished = {}, const TrainHooks* hooks = nullptr);

}  // namespace scb
