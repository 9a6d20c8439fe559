#pragma once
// Test-only fault injection. The fault tests (tests/faults/) must kill the engine at chosen
// instants, not at random ones, to show that each instant is survivable. With the environment
// variable SCB_FAILPOINT=<name> the process kills itself with SIGKILL the first time it reaches
// failpoint(<name>); SCB_FAILPOINT=<name>@<k> at the k-th time. Unset (always, outside tests)
// it costs one getenv per call. Names in use:
//   mid_write:<file name>   half of the file's bytes written (write_all), e.g. mid_write:runs.csv
//   before_rename:<file>    a temporary written and synced, not yet renamed into place
//   checkpoint_written      a run's checkpoint is in place (any run)
namespace scb {

void failpoint(const char* name);
// Whether SCB_FAILPOINT is set at all (callers that would change how they write to offer a point).
bool failpoints_enabled();

}  // namespace scb
