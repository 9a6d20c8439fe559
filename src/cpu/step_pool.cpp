// StepPool (see step_pool.hpp). Phases are numbered across jobs; a claim is a compare-and-swap on
// (phase, next item), so it succeeds only while that phase is under way, whatever the claiming
// thread read before. The thread whose items complete a phase opens the next one; a job is over
// when the phase number reaches end_.
#include "step_pool.hpp"

#include <algorithm>

namespace scb::cpu {

namespace {

constexpr uint64_t kItemMask = 0xffffffffull;
// Polls before a waiting thread sleeps: about 20-100 microseconds, enough to catch the next phase
// of a busy step without a futex round trip, short enough to leave a shared core to others.
constexpr int kSpinPolls = 2000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Returns once `a` no longer holds `old`: a short spin, then a futex sleep (std::atomic::wait).
void wait_for_change(const std::atomic<uint32_t>& a, uint32_t old) {
  for (int i = 0; i < kSpinPolls; ++i) {
    if (a.load(std::memory_order_acquire) != old) return;
    cpu_relax();
  }
  a.wait(old);
}

}  // namespace

StepPool::StepPool(int threads) : threads_(std::max(1, threads)) {}

StepPool::~StepPool() {
  stop_.store(true);
  job_.fetch_add(1);
  job_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void StepPool::start_workers() {
  // The job count as of now, not as of when a worker first runs: one that starts late must not
  // take the jobs (or the stop) published meanwhile for old news and sleep through them.
  const uint32_t seen = job_.load();
  for (int slot = 1; slot < threads_; ++slot) workers_.emplace_back(&StepPool::worker, this, slot, seen);
}

void StepPool::run(const Phase* phases, int count, int threads) {
  // One thread, or more phases or items than a claim word holds (never in practice): the caller alone.
  bool fits = count <= kMaxPhases;
  for (int i = 0; i < count; ++i) fits = fits && phases[i].items < (size_t(1) << 31) && phases[i].chunk < (size_t(1) << 31);
  if (threads <= 1 || threads_ <= 1 || !fits) {
    for (int i = 0; i < count; ++i)
      if (phases[i].items) phases[i].fn(phases[i].ctx, 0, phases[i].items, 0);
    return;
  }
  if (workers_.empty()) start_workers();
  const uint32_t base = end_.load();  // == phase_: no job is under way
  uint32_t n = 0;
  for (int i = 0; i < count; ++i) {
    if (phases[i].items == 0) continue;
    Slot& s = slots_[(base + n) % kMaxPhases];
    s.items.store(phases[i].items);
    s.chunk.store(std::max<size_t>(1, phases[i].chunk));
    s.fn.store(phases[i].fn);
    s.ctx.store(phases[i].ctx);
    ++n;
  }
  if (n == 0) return;
  done_.store(uint64_t(base) << 32);
  next_.store(uint64_t(base) << 32);
  end_.store(base + n);
  job_threads_.store(std::min(threads, threads_));
  job_.fetch_add(1);
  job_.notify_all();
  take_part(0);
}

void StepPool::worker(int slot, uint32_t seen) {
  for (;;) {
    wait_for_change(job_, seen);
    if (stop_.load()) return;
    seen = job_.load();
    if (slot < job_threads_.load()) take_part(slot);  // else this job is run by fewer threads
  }
}

void StepPool::take_part(int slot) {
  for (;;) {
    const uint32_t phase = phase_.load();
    if (phase == end_.load()) return;
    while (claim_and_run(phase, slot)) {
    }
    wait_for_change(phase_, phase);
  }
}

bool StepPool::claim_and_run(uint32_t phase, int slot) {
  uint64_t v = next_.load();
  for (;;) {
    if (uint32_t(v >> 32) != phase) return false;
    const Slot& s = slots_[phase % kMaxPhases];
    const size_t items = s.items.load(), chunk = s.chunk.load();
    const RangeFn fn = s.fn.load();
    void* ctx = s.ctx.load();
    const size_t first = size_t(v & kItemMask);
    if (first >= items) return false;
    if (next_.compare_exchange_weak(v, v + chunk)) {
      const size_t last = std::min(first + chunk, items);
      fn(ctx, first, last, slot);
      complete(phase, last - first, items);
      return true;
    }
  }
}

// `items`: the phase's, as read for the claim (the slot may be rewritten once the phase is over).
void StepPool::complete(uint32_t phase, size_t count, size_t items) {
  const uint64_t before = done_.fetch_add(count);
  if ((before & kItemMask) + count != items) return;
  // The phase's last item: open the next phase (or end the job) and wake whoever waits for it.
  const uint32_t next = phase + 1;
  done_.store(uint64_t(next) << 32);
  next_.store(uint64_t(next) << 32);
  phase_.store(next);
  phase_.notify_all();
}

}  // namespace scb::cpu
