// The CPU backend's choice of thread count (src/cpu/thread_choice.hpp, included by path), fed
// made-up step timings: it stays on all threads where they are faster, moves to one thread where
// that is faster (a busy machine), and follows the load when it changes. Nothing is timed.
#include <gtest/gtest.h>

#include <functional>

#include "../src/cpu/thread_choice.hpp"

namespace {

using scb::cpu::ThreadChoice;

// Runs `steps` steps of 1e6 sample-positions, each taking seconds_of(threads); returns the
// fraction of them that ran on `threads_of_interest`.
double share_on(ThreadChoice& choice, int steps, const std::function<double(int)>& seconds_of, int threads_of_interest) {
  int on = 0;
  for (int i = 0; i < steps; ++i) {
    const int t = choice.threads();
    on += t == threads_of_interest;
    choice.record(seconds_of(t), 1e6);
  }
  return double(on) / steps;
}

TEST(ThreadChoice, KeepsAllThreadsWhereTheyAreFaster) {
  ThreadChoice choice(2);
  const double share = share_on(choice, 5000, [](int t) { return t == 2 ? 0.005 : 0.009; }, 2);
  EXPECT_GT(share, 0.97);
  EXPECT_EQ(choice.threads(), 2);
}

TEST(ThreadChoice, MovesToOneThreadWhereThatIsFaster) {
  ThreadChoice choice(2);
  const double share = share_on(choice, 5000, [](int t) { return t == 2 ? 0.013 : 0.010; }, 1);
  EXPECT_GT(share, 0.95);
}

// Beside a busy process two threads may be about as fast as one (the parked thread's share is
// taken by the other): a tie must end on one thread, or the default is slower than one thread by
// the overhead and the noise of every near-tie.
TEST(ThreadChoice, ATieGoesToFewerThreads) {
  ThreadChoice choice(2);
  const double share = share_on(choice, 5000, [](int) { return 0.010; }, 1);
  EXPECT_GT(share, 0.9);
  EXPECT_EQ(choice.threads(), 1);
}

TEST(ThreadChoice, FollowsTheLoadWhenItChanges) {
  ThreadChoice choice(4);
  auto idle = [](int t) { return 0.02 / t; };
  auto busy = [](int t) { return t == 3 ? 0.008 : t == 4 ? 0.02 : 0.02 / t; };  // one core taken
  share_on(choice, 3000, idle, 4);
  EXPECT_EQ(choice.threads(), 4);
  EXPECT_GT(share_on(choice, 6000, busy, 3), 0.8);
  EXPECT_GT(share_on(choice, 6000, idle, 4), 0.8);
}

TEST(ThreadChoice, OneThreadStaysOne) {
  ThreadChoice choice(1);
  EXPECT_EQ(share_on(choice, 100, [](int) { return 0.01; }, 1), 1.0);
}

}  // namespace

namespace {

// Seconds spent on `threads` over `steps` steps of seconds_of(threads) each.
double seconds_on(ThreadChoice& choice, int steps, const std::function<double(int)>& seconds_of, int threads) {
  double on = 0;
  for (int i = 0; i < steps; ++i) {
    const int t = choice.threads();
    const double s = seconds_of(t);
    if (t == threads) on += s;
    choice.record(s, 1e6);
  }
  return on;
}

// The periodic try of the other count is what the default costs where its choice is right: a
// try that is clearly slower ends after a few steps, not a whole 50 ms window (idle: one thread
// 1.8x slower; 20 s of 1 ms steps hold about seven tries).
TEST(ThreadChoice, AClearlySlowerTryEndsEarly) {
  ThreadChoice choice(2);
  const int steps = 20000;
  const double on_one = seconds_on(choice, steps, [](int t) { return t == 2 ? 0.001 : 0.0018; }, 1);
  EXPECT_LT(on_one, 0.004 * steps * 0.001) << "seconds on the slower count: " << on_one;
  EXPECT_EQ(choice.threads(), 2);
}

}  // namespace

namespace {

// Beside a busy process the two-thread steps are noisy: each step may wait for the parked
// thread's item (a scheduler slice, milliseconds). Step times drawn from a fixed generator: the
// one-thread step `one` +-2%, the two-thread step `two` plus `stall` with probability `p`.
struct NoisySteps {
  double one, two, stall, p;
  uint64_t state = 12345;
  double uniform() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return double(state >> 11) * 0x1.0p-53;
  }
  double operator()(int t) {
    if (t == 1) return one * (0.98 + 0.04 * uniform());
    return two + (uniform() < p ? stall : 0.0);
  }
  double mean(int t) const { return t == 1 ? one : two + p * stall; }
};

// Mean seconds per step of the default over `steps` steps, over the better fixed count's mean.
double over_best_fixed(NoisySteps steps_of, int steps) {
  ThreadChoice choice(2);
  double total = 0;
  for (int i = 0; i < steps; ++i) {
    const double s = steps_of(choice.threads());
    total += s;
    choice.record(s, 1e6);
  }
  return total / steps / std::min(steps_of.mean(1), steps_of.mean(2));
}

// A single small run beside a busy process: two threads 5% slower on average, their 50 ms
// windows spread by +-15%; one run's wrong window must not keep the default on two threads.
TEST(ThreadChoice, NoisyTwoThreadsSlowerOnAverageEndOnOne) {
  const double ratio = over_best_fixed({0.00233, 0.00125, 0.003, 0.4}, 20000);
  EXPECT_LT(ratio, 1.015);
}

// 1,000 small runs beside a busy process: two threads 10% faster on average, their windows
// spread by +-20%.
TEST(ThreadChoice, NoisyTwoThreadsFasterOnAverageStayOnTwo) {
  const double ratio = over_best_fixed({0.0155, 0.008, 0.012, 0.5}, 4000);
  EXPECT_LT(ratio, 1.015);
}

// A load that arrives after the choice has stood for the longest interval (5 s between tries) is
// noticed within a few windows, not at the next periodic try: two threads 2x faster idle, then a
// busy process makes them 1.6x slower than one.
TEST(ThreadChoice, NoticesALoadChangeWithinAFewWindows) {
  ThreadChoice choice(2);
  share_on(choice, 40000, [](int t) { return t == 2 ? 0.0005 : 0.001; }, 2);  // 20 s idle
  ASSERT_EQ(choice.threads(), 2);
  int steps = 0;
  while (choice.threads() == 2 && steps < 10000) {
    choice.record(0.0016, 1e6);
    ++steps;
  }
  EXPECT_LT(steps * 0.0016, 0.3) << "seconds on two threads after the load came";
}

}  // namespace
