// Training the packs (see train_packs.hpp). One class holds what the workers share (the
// directory, best mode's state, the counters and the progress line) behind one mutex; a pack
// in flight keeps its finished runs until the next progress report, then flush() writes them.
// flush() is split into the steps whose order is the crash-safety contract: rows of the
// finished runs are formatted, the runs whose parameters are kept are chosen, those are saved,
// the rows are appended, and only then is a superseded best removed.
#include "scb/sweep/train_packs.hpp"

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "scb/core/checkpoint.hpp"
#include "scb/core/output.hpp"
#include "scb/core/progress.hpp"
#include "scb/core/runpack.hpp"
#include "scb/core/trainer.hpp"
#include "scb/sweep/tables.hpp"

namespace scb {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A pack being trained by one worker, and its runs finished since the last flush.
struct PackInFlight {
  size_t worker = 0;
  RunPack pack;
  std::vector<size_t> run_of;                           // pack index -> sweep run index
  std::vector<std::pair<size_t, RunResult>> pending;    // (pack index, result)
  Clock::time_point start = Clock::now();
};

// The rows of a flush and, in best mode, the best pending run of each algorithm.
struct PendingRows {
  std::string runs, curves, milestones;
  std::map<std::string, BestRun> candidate;
  std::map<std::string, size_t> candidate_at;  // algorithm -> index into pending
  size_t ok = 0, diverged = 0;
};

class PackTraining {
 public:
  PackTraining(const PackTrainingJob& job, std::vector<std::unique_ptr<Backend>>& backends);
  TrainedRuns run();

 private:
  void worker(size_t w);
  void train_one_pack(size_t w, const PlannedPack& plan);
  void flush(PackInFlight& f);
  TrainHooks checkpoint_hooks(PackInFlight& f, std::vector<CheckpointClock>& clocks);
  PendingRows format_pending(const PackInFlight& f) const;
  std::vector<size_t> choose_saves(const PackInFlight& f, const PendingRows& rows, std::vector<std::string>& old_best);
  void save_pending_params(PackInFlight& f, const std::vector<size_t>& to_save);
  void report_progress(size_t w, const TrainProgress& p);
  void poll_between_steps(size_t w, const TrainProgress& p);
  TrainProgress sweep_progress(size_t w, const TrainProgress& p);  // with mu_ held

  const PackTrainingJob& job_;
  std::vector<std::unique_ptr<Backend>>& backends_;
  const Clock::time_point start_ = Clock::now();
  int64_t steps_todo_ = 0, steps_before_ = 0, tokens_before_ = 0;
  std::vector<int64_t> live_steps_, live_tokens_;
  size_t runs_done_ = 0;
  TrainedRuns trained_;
  ProgressLine line_;
  std::mutex mu_;  // guards the directory, best mode's state, the counters and the line
  std::atomic<size_t> next_{0};
  std::atomic<bool> stop_{false};
  std::exception_ptr failure_;
};

PackTraining::PackTraining(const PackTrainingJob& job, std::vector<std::unique_ptr<Backend>>& backends)
    : job_(job),
      backends_(backends),
      live_steps_(job.plan.workers, 0),
      live_tokens_(job.plan.workers, 0),
      runs_done_(job.runs_done),
      line_(job.show_progress) {
  for (size_t i : job.todo) steps_todo_ += job.sweep.runs[i].config.train.steps;
  job_.dir.open_tables_for_append();
}

TrainedRuns PackTraining::run() {
  if (job_.plan.workers == 1) {
    worker(0);
  } else {
    std::vector<std::thread> pool;
    for (size_t w = 0; w < job_.plan.workers; ++w) pool.emplace_back(&PackTraining::worker, this, w);
    for (std::thread& t : pool) t.join();
  }
  line_.finish();
  if (failure_) std::rethrow_exception(failure_);
  trained_.wall_seconds = seconds_since(start_);
  trained_.sample_tokens = tokens_before_;
  return trained_;
}

void PackTraining::worker(size_t w) {
  try {
    while (!stop_.load()) {
      const size_t k = next_.fetch_add(1);
      if (k >= job_.plan.packs.size()) return;
      train_one_pack(w, job_.plan.packs[k]);
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failure_) failure_ = std::current_exception();
    stop_ = true;
  }
}

void PackTraining::train_one_pack(size_t w, const PlannedPack& plan) {
  PackInFlight f;
  f.worker = w;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t k : plan.runs) {
      const size_t i = job_.todo[k];
      f.pack.add_run(job_.sweep.runs[i].config, job_.cache.get(job_.sweep.runs[i].config));
      f.run_of.push_back(i);
    }
  }
  f.start = Clock::now();
  std::vector<CheckpointClock> clocks;
  const TrainHooks hooks = checkpoint_hooks(f, clocks);
  train_pack(
      f.pack, *backends_[w],
      [&](const TrainProgress& p) {
        flush(f);
        report_progress(w, p);
        poll_between_steps(w, p);
      },
      [&](size_t r, const RunResult& res) { f.pending.emplace_back(r, res); }, &hooks);
  flush(f);
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t r = 0; r < f.pack.size(); ++r) {
    steps_before_ += f.pack.steps[r];
    tokens_before_ += f.pack.samples[r] * int64_t(f.pack.T);
  }
  live_steps_[w] = live_tokens_[w] = 0;
}

// Runs with a checkpoint go on from it; runs with train.checkpoint_every save one at their
// evaluation points and when a stop is asked for (each file its own: no lock is needed to write it).
TrainHooks PackTraining::checkpoint_hooks(PackInFlight& f, std::vector<CheckpointClock>& clocks) {
  TrainHooks hooks;
  bool resumed = false, checkpointing = false;
  hooks.resumed.resize(f.pack.size());
  clocks.resize(f.pack.size());
  for (size_t r = 0; r < f.pack.size(); ++r) {
    const SweepRun& run = job_.sweep.runs[f.run_of[r]];
    clocks[r].every = run.config.train.checkpoint_every;
    checkpointing |= clocks[r].every.enabled();
    if (!job_.dir.has_checkpoint(run.run_id)) continue;
    const RunCheckpoint c = read_checkpoint(job_.dir.checkpoint_path(run.run_id));
    restore_checkpoint(f.pack, r, c);
    hooks.resumed[r] = c.result;
    clocks[r].taken(c.step, 0);
    resumed = true;
  }
  if (!resumed) hooks.resumed.clear();
  if (!checkpointing) return hooks;
  hooks.due = [&f, &clocks](size_t r) { return clocks[r].every.enabled() && clocks[r].due(f.pack.step[r], seconds_since(f.start)); };
  hooks.checkpointed = [&clocks](size_t r) { return clocks[r].every.enabled(); };
  if (job_.stopping && *job_.stopping) hooks.stopping = *job_.stopping;
  hooks.save = [this, &f, &clocks](size_t r, const RunResult& res) {
    job_.dir.save_checkpoint(checkpoint_of(f.pack, r, res, job_.sweep.runs[f.run_of[r]].run_id));
    clocks[r].taken(f.pack.step[r], seconds_since(f.start));
  };
  return hooks;
}

void PackTraining::flush(PackInFlight& f) {
  if (f.pending.empty()) return;
  const PendingRows rows = format_pending(f);
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> old_best;  // removed once the new rows are on disk
  const std::vector<size_t> to_save = choose_saves(f, rows, old_best);
  if (!to_save.empty()) save_pending_params(f, to_save);
  job_.dir.append(rows.runs, rows.curves, rows.milestones);
  for (const std::string& id : old_best) job_.dir.remove_params(id);
  for (const auto& [r, res] : f.pending) job_.dir.remove_checkpoint(job_.sweep.runs[f.run_of[r]].run_id);
  trained_.ok += rows.ok;
  trained_.diverged += rows.diverged;
  runs_done_ += f.pending.size();
  f.pending.clear();
}

// Outside the lock: reads only the pack and best mode's algorithm_of, which no one writes now.
PendingRows PackTraining::format_pending(const PackInFlight& f) const {
  PendingRows out;
  for (size_t j = 0; j < f.pending.size(); ++j) {
    const auto& [r, res] = f.pending[j];
    const SweepRun& run = job_.sweep.runs[f.run_of[r]];
    out.runs += runs_csv_row(run, f.pack, r, res);
    out.curves += curves_csv_rows(run, res);
    out.milestones += milestones_csv_rows(run, res);
    if (res.status == RunStatus::diverged) ++out.diverged;
    else ++out.ok;
    if (job_.save == SaveParams::best && res.status != RunStatus::diverged) {
      const std::string& alg = job_.best.algorithm_of.at(run.run_id);
      BestRun& c = out.candidate[alg];
      if (c.better(res.final_metrics.dist_A_norm, run.run_id)) {
        c.run_id = run.run_id;
        c.value = res.final_metrics.dist_A_norm;
        out.candidate_at[alg] = j;
      }
    }
  }
  return out;
}

// Under the lock: every pending run in all mode; in best mode, a candidate that beats the saved
// best of its algorithm (which becomes the new best, the old one to be removed).
std::vector<size_t> PackTraining::choose_saves(const PackInFlight& f, const PendingRows& rows, std::vector<std::string>& old_best) {
  std::vector<size_t> to_save;  // indexes into pending
  if (job_.save == SaveParams::all)
    for (size_t j = 0; j < f.pending.size(); ++j) to_save.push_back(j);
  for (const auto& [alg, c] : rows.candidate) {
    BestRun& b = job_.best.best[alg];
    if (c.run_id.empty() || !b.better(c.value, c.run_id)) continue;
    to_save.push_back(rows.candidate_at.at(alg));
    if (!b.run_id.empty()) old_best.push_back(b.run_id);
    b = c;
  }
  return to_save;
}

void PackTraining::save_pending_params(PackInFlight& f, const std::vector<size_t>& to_save) {
  Backend& be = *backends_[f.worker];
  be.download();
  RunTiming timing;
  timing.wall_seconds = seconds_since(f.start);
  timing.device = be.name();
  timing.threads = job_.plan.backend_threads;
  std::vector<std::string> ids;
  for (size_t j : to_save) ids.push_back(job_.sweep.runs[f.run_of[f.pending[j].first]].run_id);
  job_.dir.save_params(ids, [&](size_t k, const std::filesystem::path& folder) {
    const auto& [r, res] = f.pending[to_save[k]];
    const SweepRun& run = job_.sweep.runs[f.run_of[r]];
    Config config = run.config;
    config.resolved = job_.sweep.resolved_config(run);
    write_run_outputs(folder, config, f.pack, r, res, timing, *job_.inputs);
  });
}

TrainProgress PackTraining::sweep_progress(size_t w, const TrainProgress& p) {
  live_steps_[w] = p.steps_done;
  live_tokens_[w] = p.sample_tokens;
  TrainProgress s;
  s.steps_total = steps_todo_;
  s.steps_done = steps_before_;
  s.sample_tokens = tokens_before_;
  for (size_t v = 0; v < job_.plan.workers; ++v) s.steps_done += live_steps_[v], s.sample_tokens += live_tokens_[v];
  s.elapsed_seconds = seconds_since(start_);
  s.last_loss = p.last_loss;
  return s;
}

void PackTraining::report_progress(size_t w, const TrainProgress& p) {
  if (!line_.enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  const TrainProgress s = sweep_progress(w, p);
  const double t = s.elapsed_seconds;
  line_.update(double(s.steps_done) / double(std::max<int64_t>(1, s.steps_total)),
               fmt::format("runs {}/{}  {} sample-tokens/s", runs_done_, job_.runs_total,
                           format_rate(t > 0 ? double(s.sample_tokens) / t : 0)));
}

// Another worker failed (or the poll asked to stop): leave this pack at once, so that a Ctrl-C
// stops the sweep within a step rather than after every pack in flight has finished.
struct StopRequested : std::exception {
  const char* what() const noexcept override { return "sweep stopped"; }
};

void PackTraining::poll_between_steps(size_t w, const TrainProgress& p) {
  if (stop_.load()) throw StopRequested{};
  if (!job_.poll || !*job_.poll) return;
  std::lock_guard<std::mutex> lock(mu_);
  (*job_.poll)(sweep_progress(w, p));
}

}  // namespace

TrainedRuns train_packs(const PackTrainingJob& job, std::vector<std::unique_ptr<Backend>>& backends) {
  return PackTraining(job, backends).run();
}

}  // namespace scb
