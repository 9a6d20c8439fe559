// Running a sweep (see runner.hpp). run_sweep is the list of its steps, each a function here:
// check everything, open or recover the directory, settle best mode's saved runs, plan what is
// left, train the packs (train_packs.cpp), sum up. The steps pass their results on explicitly,
// so the order in which a sweep touches the disk is the order of the lines in run_sweep.
#include "scb/sweep/runner.hpp"

#include <omp.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "scb/core/input_files.hpp"
#include "scb/core/progress.hpp"
#include "scb/cpu/cpu_backend.hpp"
#include "scb/sweep/device.hpp"
#include "scb/sweep/expand.hpp"
#include "scb/sweep/plan.hpp"
#include "scb/sweep/sweep_dir.hpp"
#include "scb/sweep/tables.hpp"
#include "scb/sweep/train_packs.hpp"
#include "scb/sweep/validate.hpp"

namespace scb {

namespace fs = std::filesystem;

namespace {

// The sweep, this shard's runs and what will train them, all checked.
struct CheckedSweep {
  Sweep sweep;
  ShardSpec shard;
  std::vector<size_t> mine;  // this shard's runs (sweep indexes)
  uint64_t budget = 0;
  ProblemCache cache;        // every problem of the shard, built once
  InputHashes inputs;        // the content of every input file the shard's runs read
  std::unique_ptr<Backend> backend;
  int threads = 1;
  bool cpu = true;
};

// The configs of some runs, and the names the planner gives them in errors.
struct RunSelection {
  std::vector<const Config*> configs;
  std::vector<std::string> names;
};

RunSelection select_runs(const Sweep& sw, const std::vector<size_t>& runs, bool with_point) {
  RunSelection s;
  for (size_t i : runs) {
    s.configs.push_back(&sw.runs[i].config);
    s.names.push_back(with_point ? fmt::format("{} ({})", sw.runs[i].run_id, describe_point(sw, sw.runs[i])) : sw.runs[i].run_id);
  }
  return s;
}

std::vector<std::string> run_ids(const Sweep& sw, const std::vector<size_t>& runs) {
  std::vector<std::string> ids;
  for (size_t i : runs) ids.push_back(sw.runs[i].run_id);
  return ids;
}

// Step 1: everything that can be wrong is checked before the output directory is touched.
CheckedSweep check_sweep(const SweepOptions& o) {
  check_thread_count(o.threads);
  CheckedSweep c;
  c.sweep = load_sweep(o.sweep_file);
  c.shard = o.shard_given ? o.shard : shard_from_environment();
  c.mine = shard_runs(c.sweep.runs.size(), c.shard);
  c.budget = o.memory_budget ? o.memory_budget : default_memory_budget(o.device);
  const RunSelection all = select_runs(c.sweep, c.mine, true);
  // Refuses a run that cannot fit alone (auto: the CPU backend's footprint, the larger).
  (void)plan_packs(all.configs, c.budget, o.max_pack_runs, all.names, o.device != Device::cuda);
  validate_runs(c.sweep, c.mine, c.cache);
  for (size_t i : c.mine) c.inputs.add(c.sweep.runs[i].config);
  c.backend = make_backend(o.device, o.threads);
  c.threads = o.threads > 0 ? o.threads : std::max(1, omp_get_max_threads());
  c.cpu = c.backend->name() == "cpu";
  return c;
}

// --dry-run: the plan of the whole shard, nothing written.
SweepSummary dry_run_summary(const SweepOptions& o, const CheckedSweep& c) {
  const RunSelection all = select_runs(c.sweep, c.mine, true);
  const ExecutionPlan e = plan_execution(all.configs, all.names, c.budget, o.max_pack_runs, c.cpu, c.threads);
  SweepSummary sum;
  sum.total = c.mine.size();
  sum.packs = e.packs.size();
  sum.workers = e.workers;
  sum.budget = c.budget;
  for (const PlannedPack& p : e.packs) sum.largest_pack_bytes = std::max(sum.largest_pack_bytes, p.bytes);
  return sum;
}

// What the directory holds before training: the complete runs and the save mode in force.
struct OpenedDir {
  std::set<std::string> done;
  SaveParams save = SaveParams::best;
};

// Step 2 on --resume of a sweep directory: its manifest must be this shard's, then it is recovered.
OpenedDir resume_sweep_dir(const SweepOptions& o, const CheckedSweep& c, SweepDir& dir) {
  dir.lock();
  const std::vector<std::string> ids = run_ids(c.sweep, c.mine);
  const nlohmann::json manifest = dir.resume_manifest(ids);
  dir.check_inputs(manifest, c.inputs.json());
  OpenedDir opened;
  opened.save = dir.resume_save_params(dir.read_manifest(), o.save_params, o.save_params_given);
  std::map<std::string, RunExpectation> expected;
  for (size_t i : c.mine) {
    const Config& cfg = c.sweep.runs[i].config;
    expected[c.sweep.runs[i].run_id] = {cfg.eval.every, cfg.eval.thresholds.size() + 1};
  }
  opened.done = dir.recover(c.sweep.axis_names(), expected, opened.save);
  return opened;
}

// Step 2: the directory, new, or the interrupted one brought back to its complete runs.
OpenedDir open_sweep_dir(const SweepOptions& o, const CheckedSweep& c, SweepDir& dir) {
  if (o.resume && dir.has_manifest()) return resume_sweep_dir(o, c, dir);
  std::error_code ec;
  if (o.resume && !dir.is_interrupted_creation() && fs::exists(dir.path(), ec) && fs::is_directory(dir.path(), ec) && !fs::is_empty(dir.path(), ec))
    throw ConfigError(fmt::format("--resume: {} is not a sweep directory (no manifest.json) and is not empty", dir.path().string()));
  dir.create(sweep_manifest(c.sweep, c.mine, c.shard, o.save_params, c.inputs.json()), c.sweep.axis_names());
  return OpenedDir{{}, o.save_params};
}

// Step 3, best mode: the best saved run of each algorithm among the complete runs. A kill
// between saving a new best and removing the old one leaves both: only the best is kept. A best
// run whose saved folder is gone (deleted, or damaged and removed by recovery) is trained again.
BestParams settle_best_params(const CheckedSweep& c, OpenedDir& opened, SweepDir& dir) {
  BestParams b;
  for (size_t i : c.mine) b.algorithm_of[c.sweep.runs[i].run_id] = to_string(c.sweep.runs[i].config.train.algorithm);
  if (opened.save != SaveParams::best) return b;
  const SweepTables t = read_sweep_tables(dir.path());
  b.best = best_from_rows(t.runs_header, t.run_rows, b.algorithm_of);
  std::set<std::string> keep, lost;
  for (auto it = b.best.begin(); it != b.best.end();) {
    std::error_code ec;
    const bool saved = it->second.run_id.empty() || fs::exists(dir.path() / "runs" / it->second.run_id, ec);
    (saved ? keep : lost).insert(it->second.run_id);
    it = saved ? std::next(it) : b.best.erase(it);
  }
  dir.keep_only_params(keep);
  dir.forget_runs(c.sweep.axis_names(), lost);
  for (const std::string& id : lost) opened.done.erase(id);
  return b;
}

std::vector<size_t> runs_left(const CheckedSweep& c, const std::set<std::string>& done) {
  std::vector<size_t> todo;
  for (size_t i : c.mine)
    if (!done.count(c.sweep.runs[i].run_id)) todo.push_back(i);
  return todo;
}

// One backend per worker: the checked one for a single worker, else one CPU backend each.
std::vector<std::unique_ptr<Backend>> worker_backends(CheckedSweep& c, const ExecutionPlan& plan) {
  std::vector<std::unique_ptr<Backend>> backends;
  if (plan.workers == 1) {
    backends.push_back(std::move(c.backend));
  } else {
    for (size_t w = 0; w < plan.workers; ++w) backends.push_back(make_cpu_backend(plan.backend_threads));
  }
  return backends;
}

}  // namespace

SweepSummary run_sweep(const SweepOptions& o) {
  CheckedSweep c = check_sweep(o);
  if (o.dry_run) return dry_run_summary(o, c);

  SweepDir dir(o.out);  // its lock and tables are released when the sweep returns
  OpenedDir opened = open_sweep_dir(o, c, dir);
  BestParams best = settle_best_params(c, opened, dir);
  SweepSummary sum;
  sum.total = c.mine.size();
  sum.skipped = opened.done.size();
  const std::vector<size_t> todo = runs_left(c, opened.done);
  if (todo.empty()) return sum;

  const RunSelection left = select_runs(c.sweep, todo, false);
  const ExecutionPlan plan = plan_execution(left.configs, left.names, c.budget, o.max_pack_runs, c.cpu, c.threads);
  sum.packs = plan.packs.size();
  sum.workers = plan.workers;
  std::vector<std::unique_ptr<Backend>> backends = worker_backends(c, plan);
  const PackTrainingJob job{c.sweep, todo, plan, c.cache, dir, opened.save, best, opened.done.size(), c.mine.size(),
                            !o.quiet && stderr_is_terminal(), &o.poll, &o.stopping, &c.inputs};
  const TrainedRuns trained = train_packs(job, backends);
  sum.ok = trained.ok;
  sum.diverged = trained.diverged;
  sum.wall_seconds = trained.wall_seconds;
  sum.sample_tokens = trained.sample_tokens;
  return sum;
}

}  // namespace scb
