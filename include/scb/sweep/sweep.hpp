#pragma once
// Sweeps (SPEC 8, issue 3): a sweep file expands into runs (grid x zip x replicates), each
// named by a stable run_id; runs of one shape train together in RunPacks sized by a memory
// planner; every finished run is appended to runs.csv / curves.csv as whole lines with one
// write + fsync, so an interrupted sweep (SIGKILL included) resumes without losing or
// duplicating a row. Shards of a sweep can run separately and be merged afterwards.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scb/core/backend.hpp"
#include "scb/core/config.hpp"
#include "scb/sweep/expand.hpp"
#include "scb/sweep/plan.hpp"
#include "scb/sweep/run_id.hpp"
#include "scb/sweep/save_params.hpp"
#include "scb/sweep/shard.hpp"
#include "scb/sweep/tables.hpp"
#include "scb/sweep/validate.hpp"

namespace scb {

// ---------------------------------------------------------------------------------------
// Sweep directory: manifest.json, runs.csv, curves.csv, runs/<run_id>/

// Brings runs.csv and curves.csv back to a consistent state after an interruption: partial
// trailing lines are cut, curves rows of incomplete runs and duplicates are dropped (the file
// is replaced atomically), leftover temporaries and params of incomplete runs are removed.
// Rows of run_ids outside `known` are refused. Returns the complete run_ids.
std::set<std::string> recover_sweep_dir(const std::filesystem::path& dir, const std::vector<std::string>& axis_names,
                                        const std::set<std::string>& known);

// Appends finished runs: curves rows first, then runs rows, each with one write() of whole
// lines followed by fsync; a run counts as complete once its runs.csv line is on disk.
class SweepWriter {
 public:
  explicit SweepWriter(const std::filesystem::path& dir);  // files exist (headers written)
  ~SweepWriter();
  SweepWriter(const SweepWriter&) = delete;
  SweepWriter& operator=(const SweepWriter&) = delete;
  void append(const std::string& runs_lines, const std::string& curves_lines);

 private:
  int runs_fd_ = -1, curves_fd_ = -1;
};

// Writes `text` to `path` atomically (temporary file, fsync, rename, fsync of the directory).
void write_file_atomic(const std::filesystem::path& path, const std::string& text);

// ---------------------------------------------------------------------------------------
// Running a sweep

struct SweepOptions {
  std::filesystem::path sweep_file;
  std::filesystem::path out;
  bool resume = false;
  bool shard_given = false;
  ShardSpec shard;
  Device device = Device::auto_select;
  int threads = 0;
  uint64_t memory_budget = 0;  // 0: default_memory_budget
  size_t max_pack_runs = 0;    // 0: automatic (64 runs on the CPU, 4096 on a device)
  SaveParams save_params = SaveParams::best;
  bool save_params_given = false;  // on --resume, the manifest's mode unless given
  bool quiet = false;
  bool dry_run = false;
};

struct SweepSummary {
  size_t total = 0, skipped = 0, ok = 0, diverged = 0, packs = 0, workers = 0;
  double wall_seconds = 0;
  int64_t sample_tokens = 0;
  uint64_t budget = 0, largest_pack_bytes = 0;  // filled in by a dry run
};

// Validates everything (ConfigError, before any output exists), then trains the runs of the
// shard that are not complete yet. Progress goes to stderr when it is a terminal.
SweepSummary run_sweep(const SweepOptions& options);

// `scb merge OUT DIR...`: combines shard directories of one sweep (same sweep_id, disjoint
// run lists that together make the whole sweep) into OUT. ConfigError on any mismatch.
struct MergeSummary {
  size_t dirs = 0, runs = 0, complete = 0;
};
MergeSummary merge_sweep_dirs(const std::filesystem::path& out, const std::vector<std::filesystem::path>& dirs);

}  // namespace scb
