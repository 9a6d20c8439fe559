#pragma once
// Planning: which runs train together (packs of one shape within a memory budget) and how the
// packs are spread over workers. Pure arithmetic on configs, so a dry run shows exactly the
// plan a real run would follow, and the first check of a sweep can refuse a run that never fits.
#include <cstdint>
#include <string>
#include <vector>

#include "scb/core/backend.hpp"
#include "scb/core/config.hpp"

namespace scb {

// "8G", "512M", "1.5GiB", "100000": bytes (K/M/G/T are powers of 1024).
uint64_t parse_byte_size(const std::string& text, const std::string& what = "--memory-budget");

struct PlannedPack {
  std::vector<size_t> runs;   // indexes into the configs given to plan_packs
  uint64_t bytes = 0;         // parameters + scratch of every run + each distinct problem once
};
// Groups runs of the same pack shape (in order of first appearance) and splits each group
// greedily so that every pack fits `budget` and holds at most `max_runs` runs (0: no cap).
// A run that cannot fit alone is refused with a ConfigError (--memory-budget: ...). cpu: the
// packs train on the CPU backend (run_footprint's cpu_backend).
std::vector<PlannedPack> plan_packs(const std::vector<const Config*>& configs, uint64_t budget,
                                    size_t max_runs, const std::vector<std::string>& names = {}, bool cpu = true);
// Default budget: half of the free memory of the device that will run the packs.
uint64_t default_memory_budget(Device device);

// The execution plan: how many packs train side by side and which runs each holds. On the
// CPU, packs train side by side, each on a one-thread backend: no barriers between threads
// at every step, so a run in a sweep costs what it costs alone (and a busy machine does not
// stall every step). Fewer runs than threads get the threads inside their pack instead. A
// device backend trains one pack at a time. Packs in flight share the memory budget.
struct ExecutionPlan {
  size_t workers = 1;
  int backend_threads = 0;
  std::vector<PlannedPack> packs;  // most expensive first
};
// `max_pack_runs` 0: 64 runs on the CPU, 4096 on a device; `threads`: the cores to use.
ExecutionPlan plan_execution(const std::vector<const Config*>& configs, const std::vector<std::string>& names, uint64_t budget,
                             size_t max_pack_runs, bool cpu, int threads);

}  // namespace scb
