#include "scb/core/trainer.hpp"

#include <chrono>
#include <cmath>

namespace scb {

namespace {

bool finite_metrics(const Metrics& m) {
  return std::isfinite(m.loss) && std::isfinite(m.dist_V) && std::isfinite(m.dist_A);
}

// The runs just evaluated that are still going and due for a checkpoint, with the host arrays
// made current first (a device backend copies the pack back only when one is due).
void save_checkpoints(const std::vector<uint32_t>& evaluated, const std::vector<uint8_t>& reported,
                      const std::vector<RunResult>& results, Backend& backend, const TrainHooks& hooks) {
  std::vector<uint32_t> due;
  for (uint32_t r : evaluated)
    if (!reported[r] && hooks.due(r)) due.push_back(r);
  if (due.empty()) return;
  backend.download();
  for (uint32_t r : due) hooks.save(r, results[r]);
}

// A stop was asked for: a checkpoint of every run not yet reported that keeps checkpoints, those
// that finished or diverged in the last step included (a resume evaluates and closes them).
void save_before_stop(const RunPack& pack, const std::vector<uint8_t>& reported, const std::vector<RunResult>& results,
                      Backend& backend, const TrainHooks& hooks) {
  std::vector<uint32_t> keep;
  for (size_t r = 0; r < pack.size(); ++r)
    if (!reported[r] && hooks.checkpointed(r)) keep.push_back(uint32_t(r));
  if (keep.empty()) return;
  backend.download();
  for (uint32_t r : keep) hooks.save(r, results[r]);
}

// The pack's progress after a step, handed to the caller's callback.
void report_progress(const RunPack& pack, const std::vector<RunResult>& results, int64_t steps_total,
                     std::chrono::steady_clock::time_point start, const ProgressFn& progress) {
  const size_t R = pack.size();
  TrainProgress pr;
  pr.steps_total = steps_total;
  for (size_t r = 0; r < R; ++r) {
    pr.steps_done += pack.status[r] == RunStatus::diverged ? pack.steps[r] : pack.step[r];
    pr.sample_tokens += pack.samples[r] * int64_t(pack.T);
  }
  pr.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (size_t r = R; r-- > 0;)
    if (!results[r].curve.empty()) {
      pr.last_loss = results[r].curve.back().loss;
      break;
    }
  progress(pr);
}

}  // namespace

std::vector<RunResult> train_pack(RunPack& pack, Backend& backend, const ProgressFn& progress,
                                  const RunFinishedFn& finished, const TrainHooks* hooks) {
  const size_t R = pack.size();
  std::vector<RunResult> results(R);
  if (hooks && !hooks->resumed.empty()) results = hooks->resumed;
  std::vector<uint8_t> reported(R, 0);
  backend.attach(pack);
  const auto start = std::chrono::steady_clock::now();
  int64_t steps_total = 0;
  for (size_t r = 0; r < R; ++r) steps_total += pack.steps[r];

  auto record = [&](size_t r, const Metrics& m) {
    RunResult& res = results[r];
    res.curve.push_back(m);
    if (res.curve.size() == 1 || (std::isfinite(m.dist_A_norm) && !(m.dist_A_norm >= res.best.dist_A_norm)))
      res.best = m;
  };
  auto close = [&](size_t r) {
    RunResult& res = results[r];
    res.final_metrics = res.curve.empty() ? Metrics{} : res.curve.back();
    res.status = pack.status[r] == RunStatus::diverged ? RunStatus::diverged : RunStatus::done;
    res.diverged_step = pack.diverged_step[r];
    if (pack.status[r] == RunStatus::running) pack.status[r] = RunStatus::done;
    reported[r] = 1;
    if (finished) finished(r, res);
  };

  std::vector<uint32_t> due;
  bool stop_saved = false;
  for (;;) {
    // Evaluate runs at their eval points and at their last step; close finished runs.
    due.clear();
    for (size_t r = 0; r < R; ++r) {
      if (reported[r]) continue;
      const bool diverged = pack.status[r] == RunStatus::diverged;
      const bool at_end = pack.step[r] >= pack.steps[r];
      if (diverged || at_end || pack.step[r] % pack.eval_every[r] == 0) due.push_back(uint32_t(r));
    }
    if (!due.empty()) {
      const std::vector<Metrics> ms = backend.evaluate(due);
      for (size_t i = 0; i < due.size(); ++i) {
        const size_t r = due[i];
        const bool seen = !results[r].curve.empty() && results[r].curve.back().step == ms[i].step;
        if (!seen) record(r, ms[i]);
        if (!finite_metrics(ms[i]) && pack.status[r] != RunStatus::diverged) {
          pack.status[r] = RunStatus::diverged;
          pack.diverged_step[r] = pack.step[r];
        }
        if (pack.status[r] == RunStatus::diverged || pack.step[r] >= pack.steps[r]) close(r);
      }
      if (hooks && hooks->save) save_checkpoints(due, reported, results, backend, *hooks);
    }
    bool any = false;
    for (size_t r = 0; r < R; ++r) any |= pack.active(r);
    if (!any) break;
    backend.step();
    // Before the progress callback ends training, and again if it throws for a stop that came
    // after the check (another worker saw the signal first, or it arrived in between).
    auto save_if_stopping = [&] {
      if (!hooks || !hooks->stopping || !hooks->save || stop_saved || !hooks->stopping()) return;
      save_before_stop(pack, reported, results, backend, *hooks);
      stop_saved = true;
    };
    save_if_stopping();
    if (progress) try {
        report_progress(pack, results, steps_total, start, progress);
      } catch (...) {
        save_if_stopping();
        throw;
      }
  }
  backend.download();
  return results;
}

}  // namespace scb
