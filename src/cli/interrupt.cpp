// Interrupt handling (see interrupt.hpp): the handler only records the signal, which is all a
// signal handler may safely do; the engine looks at it between steps.
#include "scb/cli/interrupt.hpp"

#include <atomic>
#include <csignal>

namespace scb {

namespace {

// Lock-free, so safe to set in a signal handler, and read by every worker thread without a race.
std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_signal(int s) {
  if (g_signal != 0) {  // the second one: the default action, now
    std::signal(s, SIG_DFL);
    std::raise(s);
    return;
  }
  g_signal = s;
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a write in progress finishes; the engine stops after it
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int interrupt_signal() { return g_signal; }

void throw_if_interrupted() {
  if (g_signal != 0) throw Interrupted(g_signal);
}

const char* signal_name(int s) { return s == SIGINT ? "SIGINT" : s == SIGTERM ? "SIGTERM" : "a signal"; }

}  // namespace scb
