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
