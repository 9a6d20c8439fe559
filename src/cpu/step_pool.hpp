#pragma once
// The CPU backend's threads (private to src/cpu): a persistent pool that runs a step as one job of
// phases, in place of an OpenMP parallel region per phase. GNU OpenMP ends every region with a
// barrier that waits for every thread of the team to arrive, and its waiting threads spin: with
// another busy process on the machine, each phase of each step waited for a descheduled thread
// (two threads ran 3-5x slower than one). Here
//   - the items of a phase are claimed from a shared counter, chunk by chunk, and the phase ends
//     when its items are done, not when every thread has come: a thread the scheduler has not run
//     yet delays no one, and the calling thread alone can run a whole job;
//   - the thread that completes a phase's last item starts the next phase; the others wait for it
//     passively (a short spin, then a futex sleep), so a waiting thread leaves its core to others;
//   - the workers are woken once per job (a step), not once per phase.
// Only an item in progress on a descheduled thread is waited for, so phases keep their chunks a
// small fraction of the phase. Which thread runs an item never changes what it computes: results
// do not depend on the thread count.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace scb::cpu {

class StepPool {
 public:
  // Items [begin, end) of a phase, run by thread `slot` (0: the caller, 1 ..: the workers).
  using RangeFn = void (*)(void* ctx, size_t begin, size_t end, int slot);
  struct Phase {
    size_t items = 0, chunk = 1;
    RangeFn fn = nullptr;
    void* ctx = nullptr;
  };
  static constexpr int kMaxPhases = 8;

  // threads - 1 workers, started by the first job that uses them.
  explicit StepPool(int threads);
  ~StepPool();
  StepPool(const StepPool&) = delete;
  StepPool& operator=(const StepPool&) = delete;
  int threads() const { return threads_; }

  // Runs the phases in order, every item once, on `threads` threads (1: the caller alone; at
  // most threads()); returns when every item is done. At most kMaxPhases phases; the callables
  // behind them must not throw.
  void run(const Phase* phases, int count, int threads);

  // A phase calling f(item, slot) for each item, `chunk` items per claim (f must outlive run).
  template <typename F>
  static Phase phase(size_t items, size_t chunk, F& f) {
    return Phase{items, chunk == 0 ? 1 : chunk, &call_each<F>, &f};
  }

 private:
  template <typename F>
  static void call_each(void* ctx, size_t begin, size_t end, int slot) {
    F& f = *static_cast<F*>(ctx);
    for (size_t i = begin; i < end; ++i) f(i, slot);
  }
  // Atomic fields: a thread late from an earlier phase may read a slot while it is rewritten; its
  // claim then fails (the phase number in `next_` has moved on) and it never runs what it read.
  struct Slot {
    std::atomic<size_t> items{0}, chunk{1};
    std::atomic<RangeFn> fn{nullptr};
    std::atomic<void*> ctx{nullptr};
  };
  void start_workers();
  void worker(int slot, uint32_t seen);
  void take_part(int slot);  // claim and run items until the job is over
  bool claim_and_run(uint32_t phase, int slot);  // false: nothing left to claim in `phase`
  void complete(uint32_t phase, size_t count, size_t items);

  int threads_;
  Slot slots_[kMaxPhases];
  std::atomic<uint64_t> next_{0};   // (phase << 32) | next item to claim
  std::atomic<uint64_t> done_{0};   // (phase << 32) | items done
  std::atomic<uint32_t> phase_{0};  // the phase under way
  std::atomic<uint32_t> end_{0};    // the phase the job ends at (phase_ == end_: no job)
  std::atomic<uint32_t> job_{0};    // counts the jobs: wakes the workers
  std::atomic<int> job_threads_{0};  // threads of the job: the workers of slots below it take part
  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;
};

}  // namespace scb::cpu
