#pragma once
// Training the planned packs of a sweep: workers take packs in plan order, and each run is
// handed to the sweep directory as it finishes (its parameters saved first when the save mode
// wants them, then its rows appended). Separate from the runner because this is the only part
// of a sweep with threads, and its shared state is guarded by one mutex in one class.
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "scb/core/backend.hpp"
#include "scb/core/input_files.hpp"
#include "scb/sweep/expand.hpp"
#include "scb/sweep/plan.hpp"
#include "scb/sweep/save_params.hpp"
#include "scb/sweep/sweep_dir.hpp"
#include "scb/sweep/validate.hpp"

namespace scb {

// Best mode's state: each run's algorithm and the best run saved so far per algorithm.
struct BestParams {
  std::map<std::string, std::string> algorithm_of;  // run_id -> algorithm
  std::map<std::string, BestRun> best;              // algorithm -> saved run
};

struct PackTrainingJob {
  const Sweep& sweep;
  const std::vector<size_t>& todo;  // sweep run indexes; run k of the plan is todo[k]
  const ExecutionPlan& plan;
  ProblemCache& cache;
  SweepDir& dir;                    // locked, recovered, tables with their headers
  SaveParams save;
  BestParams& best;
  size_t runs_done = 0, runs_total = 0;  // for the progress line
  bool show_progress = false;
  const std::function<void(const TrainProgress&)>* poll = nullptr;  // SweepOptions::poll
  const std::function<bool()>* stopping = nullptr;                  // SweepOptions::stopping
  const InputHashes* inputs = nullptr;  // the input files' hashes, taken once at the start (saved runs' summary.json)
};

struct TrainedRuns {
  size_t ok = 0, diverged = 0;
  double wall_seconds = 0;
  int64_t sample_tokens = 0;
};

// Trains every pack of job.plan, worker w on backends[w] (one per plan worker). The first
// failure of any worker stops them all and is rethrown once they have stopped.
TrainedRuns train_packs(const PackTrainingJob& job, std::vector<std::unique_ptr<Backend>>& backends);

}  // namespace scb
