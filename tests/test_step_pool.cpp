// The CPU backend's thread pool (src/cpu/step_pool.hpp, private to the CPU layer, so included by
// path): every item of every phase runs exactly once, a phase starts only after the one before it
// is done, and pools built, used and destroyed at once (workers that start after jobs or the stop
// were published) neither hang nor lose work. No timing is asserted.
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "../src/cpu/step_pool.hpp"

namespace {

using scb::cpu::StepPool;

// A job of three dependent phases over `n` items: b[i] = a[i] + 1, c[i] = b[n - 1 - i] * 2, and a
// per-run count of each item. Returns whether every value and count came out right.
bool run_dependent_job(StepPool& pool, size_t n, size_t chunk, int threads, int job) {
  std::vector<int> a(n), b(n, -1), c(n, -1);
  std::vector<std::atomic<int>> runs(3 * n);
  for (size_t i = 0; i < n; ++i) a[i] = int(i) + job;
  std::atomic<int> bad_slot{0};
  auto first = [&](size_t i, int slot) {
    if (slot < 0 || slot >= pool.threads()) bad_slot = 1;
    b[i] = a[i] + 1;
    runs[i]++;
  };
  auto second = [&](size_t i, int) {
    c[i] = b[n - 1 - i] * 2;  // reads an item of the phase before, done by any thread
    runs[n + i]++;
  };
  auto third = [&](size_t i, int) {
    if (c[n - 1 - i] != (a[i] + 1) * 2) c[n - 1 - i] = -7;
    runs[2 * n + i]++;
  };
  const StepPool::Phase phases[4] = {StepPool::phase(n, chunk, first), StepPool::phase(0, 1, first),
                                     StepPool::phase(n, chunk, second), StepPool::phase(n, chunk, third)};
  pool.run(phases, 4, threads);
  bool ok = bad_slot == 0;
  for (size_t i = 0; i < n; ++i) ok = ok && c[i] == (a[n - 1 - i] + 1) * 2;
  for (auto& r : runs) ok = ok && r.load() == 1;
  return ok;
}

TEST(StepPool, EveryItemOnceAndPhasesInOrder) {
  StepPool pool(3);
  int failures = 0;
  for (int job = 0; job < 3000; ++job) {
    const size_t n = 1 + size_t(job * 7919) % 300;
    failures += !run_dependent_job(pool, n, 1 + size_t(job) % 5, job % 4 == 3 ? 1 : 3, job);
  }
  EXPECT_EQ(failures, 0);
}

TEST(StepPool, PoolsDestroyedRightAfterUseDoNotHang) {
  int failures = 0;
  for (int i = 0; i < 300; ++i) {
    StepPool pool(2 + i % 3);
    if (i % 3) failures += !run_dependent_job(pool, 64, 1, pool.threads(), i);
  }
  EXPECT_EQ(failures, 0);
}

TEST(StepPool, OneThreadRunsEverythingOnTheCaller) {
  StepPool pool(1);
  EXPECT_TRUE(run_dependent_job(pool, 100, 3, 4, 0));
  std::vector<int> slots;
  auto record = [&](size_t, int slot) { slots.push_back(slot); };
  const StepPool::Phase phase = StepPool::phase(10, 1, record);
  pool.run(&phase, 1, 1);
  EXPECT_EQ(slots, std::vector<int>(10, 0));
}

}  // namespace
