// failpoint (see failpoint.hpp): the counter is per name because one test names one point.
#include "scb/core/failpoint.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace scb {

void failpoint(const char* name) {
  const char* spec = std::getenv("SCB_FAILPOINT");
  if (!spec || !*spec) return;
  const std::string s = spec;
  const size_t at = s.rfind('@');  // "<name>" or "<name>@<k>"
  if (s.substr(0, at) != name) return;
  static std::atomic<long> hits{0};
  const long want = at == std::string::npos ? 1 : std::atol(s.c_str() + at + 1);
  if (++hits == want) ::kill(::getpid(), SIGKILL);
}

bool failpoints_enabled() {
  const char* spec = std::getenv("SCB_FAILPOINT");
  return spec && *spec;
}

}  // namespace scb
