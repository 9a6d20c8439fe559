#pragma once
// How many threads the CPU backend's steps use when the caller left it to the backend (threads
// 0: all cores). All cores is the best choice only on an otherwise idle machine: beside another
// busy process a thread of the step shares its core, and each time the scheduler parks it in the
// middle of an item the other threads wait for it (two threads beside one busy process ran up to
// a third slower than one). Results never depend on the thread count, so the count may change at
// any step: this measures seconds per sample-position of the steps in windows of at least 50 ms,
// and now and then tries one thread fewer or more for one window (ended after a few steps when
// it is clearly slower), keeping more threads when they were at least 5% faster and fewer
// threads when they were not slower (a tie goes to fewer) than the mean of every window on the
// current count since the last try (beside a busy process single windows spread by +-20%).
// A confirmed choice doubles the time to the next try (0.2 s up to 5 s: under 1% of the time
// spent on the worse count); windows since the last try much slower than the rate the choice was
// made on (the load changed) try at once. Pure arithmetic on the timings it is given, so tests
// feed it timings.
namespace scb::cpu {

class ThreadChoice {
 public:
  explicit ThreadChoice(int most);
  // The threads for the next step.
  int threads() const { return probing_ ? probe_ : current_; }
  // The step just run on threads() took `seconds` for `work` sample-positions.
  void record(double seconds, double work);

 private:
  void start_probe();
  void end_probe(double rate);

  int most_, current_, probe_ = 0;
  bool probing_ = false;
  int direction_ = -1;     // the next try: one thread fewer (-1) or more (+1)
  int unmeasured_ = 2;     // the first steps touch fresh scratch: not measured
  double window_s_ = 0, window_work_ = 0;
  int window_steps_ = 0;
  double base_s_ = 0, base_work_ = 0;  // the windows on current_ since the last try, summed
  double recent_ = 0;      // their seconds per work: what a try must beat
  static constexpr int kWindowsToJudge = 3;  // windows that together tell a change of load
  int base_windows_ = 0;
  double last_s_[kWindowsToJudge] = {}, last_work_[kWindowsToJudge] = {};  // the last windows on current_
  double decided_ = 0;     // the rate current_ was chosen (or confirmed) on (0: none yet)
  double since_try_ = 0;   // seconds on current_ since the last try
  double interval_;        // seconds on current_ before the next try
};

}  // namespace scb::cpu
