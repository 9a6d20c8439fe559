#pragma once
// SIGINT and SIGTERM while `scb train` or `scb sweep` works. The first signal asks the engine to
// stop at the next step boundary, through the same progress/poll path a Python Ctrl-C takes, so
// finished runs stay on disk and the command can say what was kept and how to go on; a second
// signal ends the process at once (the default action), for a user who does not want to wait.
#include <exception>

namespace scb {

// Thrown from a progress callback once a signal has arrived.
struct Interrupted : std::exception {
  int signal = 0;
  explicit Interrupted(int s) : signal(s) {}
  const char* what() const noexcept override { return "interrupted"; }
};

void install_interrupt_handlers();
// The signal that arrived (0: none yet).
int interrupt_signal();
void throw_if_interrupted();
// "SIGINT" / "SIGTERM".
const char* signal_name(int signal);

}  // namespace scb
