// ThreadChoice (see thread_choice.hpp): windows of steps, a try of a neighbouring thread count
// for one window, the interval between tries doubling while the choice stands.
#include "thread_choice.hpp"

#include <algorithm>

namespace scb::cpu {

namespace {

constexpr double kWindowSeconds = 0.05;  // a window: at least this long ...
constexpr int kWindowSteps = 3;          // ... and this many steps
constexpr double kFirstInterval = 0.2;   // seconds before the first try, and after a change
constexpr double kLongestInterval = 5.0;
constexpr double kBetter = 0.95;    // a try of more threads wins when at least 5% faster ...
constexpr double kNoWorse = 1.0;    // ... one of fewer threads when it is not slower: on a tie the
                                    // fewer threads win (they leave a core to the other process and
                                    // cannot lose to one thread by the noise of a near-tie)
constexpr double kDegraded = 1.3;   // the last few windows (ThreadChoice::kWindowsToJudge) together
                                    // this much slower than the rate the choice was made on: the
                                    // load changed, try at once
constexpr double kEarlySeconds = 0.005;  // a try this long ...
constexpr double kClearlyWorse = 1.25;   // ... and this much slower than the count it tries to
                                         // replace ends at once: a losing try costs a few steps,
                                         // not a whole window (a third of a failed try's cost)

}  // namespace

ThreadChoice::ThreadChoice(int most) : most_(std::max(1, most)), current_(most_), interval_(kFirstInterval) {}

void ThreadChoice::record(double seconds, double work) {
  if (most_ == 1 || work <= 0) return;
  if (unmeasured_ > 0) {
    --unmeasured_;
    return;
  }
  window_s_ += seconds;
  window_work_ += work;
  ++window_steps_;
  if (!probing_) since_try_ += seconds;
  const bool long_enough = window_s_ >= kWindowSeconds && window_steps_ >= kWindowSteps;
  const bool lost_early = probing_ && window_s_ >= kEarlySeconds && window_steps_ >= kWindowSteps &&
                          window_s_ / window_work_ > kClearlyWorse * recent_;
  if (!long_enough && !lost_early) return;
  const double rate = window_s_ / window_work_, seconds_window = window_s_, work_window = window_work_;
  window_s_ = window_work_ = 0;
  window_steps_ = 0;
  if (probing_) {
    end_probe(rate);
    return;
  }
  // The baseline a try is judged against: every window on current_ since the last try, not the
  // last one alone (beside a busy process a window's rate spreads by +-20%: judged against single
  // windows, the choice followed the noise and the default lost 7% to the better fixed count).
  // The load changed when the last few windows together are much slower than the rate the
  // choice was made on (a single window against the best one tried again at every noisy window;
  // the mean since the last try reacts seconds late after a long interval).
  base_s_ += seconds_window;
  base_work_ += work_window;
  last_s_[base_windows_ % kWindowsToJudge] = seconds_window;
  last_work_[base_windows_ % kWindowsToJudge] = work_window;
  ++base_windows_;
  recent_ = base_s_ / base_work_;
  if (decided_ == 0) decided_ = recent_;
  bool degraded = false;
  if (base_windows_ >= kWindowsToJudge) {
    double s = 0, w = 0;
    for (int i = 0; i < kWindowsToJudge; ++i) s += last_s_[i], w += last_work_[i];
    degraded = s / w > kDegraded * decided_;
  }
  if (since_try_ >= interval_ || degraded) start_probe();
}

void ThreadChoice::start_probe() {
  int candidate = current_ + direction_;
  if (candidate < 1 || candidate > most_) {
    direction_ = -direction_;
    candidate = current_ + direction_;
  }
  probe_ = candidate;
  probing_ = true;
}

void ThreadChoice::end_probe(double rate) {
  probing_ = false;
  since_try_ = 0;
  base_s_ = base_work_ = 0;
  base_windows_ = 0;
  const double needed = probe_ < current_ ? kNoWorse : kBetter;
  if (rate <= needed * recent_) {  // keep going the same way next time
    current_ = probe_;
    decided_ = recent_ = rate;
    interval_ = kFirstInterval;
  } else {
    decided_ = recent_;  // the baseline of the load as it is now
    interval_ = std::min(2 * interval_, kLongestInterval);
    direction_ = -direction_;
  }
}

}  // namespace scb::cpu
