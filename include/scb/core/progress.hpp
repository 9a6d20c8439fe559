#pragma once
// A live one-line progress display on stderr, shown only when stderr is a terminal,
// redrawn at most ten times a second.
#include <chrono>
#include <string>

namespace scb {

class ProgressLine {
 public:
  explicit ProgressLine(bool enabled);
  ~ProgressLine();
  // fraction in [0, 1]; `text` is the line without the ETA, which is added here.
  void update(double fraction, const std::string& text, bool force = false);
  void finish();  // clears the line
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

bool stderr_is_terminal();
std::string format_duration(double seconds);
std::string format_rate(double per_second);  // 1.23M, 456k

}  // namespace scb
