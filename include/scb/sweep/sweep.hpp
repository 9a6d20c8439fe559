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

namespace scb {

// ---------------------------------------------------------------------------------------
// Expansion

struct SweepAxis {
  std::string name;                   // dotted config key
  std::vector<nlohmann::json> values;
  bool zip = false;                   // false: a grid axis
};

struct SweepRun {
  size_t index = 0;                   // position in the full expansion
  std::string run_id;                 // run_id_of(config.resolved)
  std::vector<nlohmann::json> axis_values;  // one per Sweep::axes entry
  uint32_t replicate = 0;
  Config config;
};

struct Sweep {
  std::filesystem::path file;         // the sweep file (absolute), empty when built from a document
  nlohmann::ordered_json document;    // the sweep file as read (key order kept)
  nlohmann::json base;                // the base config document (loaded when given as a path)
  nlohmann::json resolved_base;       // the base with defaults filled in
  std::filesystem::path base_dir;     // relative paths in configs resolve against it
  std::vector<SweepAxis> axes;        // grid axes (file order), then zip axes
  size_t grid_points = 1, zip_length = 1;
  uint32_t replicates = 1;
  std::vector<SweepRun> runs;         // every run, in expansion order
  std::string sweep_id;               // hash of every run_id in order

  std::vector<std::string> axis_names() const;
};

// Expands a sweep document: the cartesian product of `grid` (the last axis varies fastest),
// each point with every index of the `zip` lists, each repeated `replicates` times with
// train.seed + replicate. Every run's config is validated; errors are ConfigErrors naming
// the sweep key (grid.train.lambda[2]: ...). `dir` resolves a `base` given as a path.
Sweep expand_sweep(const nlohmann::ordered_json& document, const std::filesystem::path& dir);
// Reads and expands a sweep file (key order of grid and zip as written in the file).
Sweep load_sweep(const std::filesystem::path& file);

// A stable name for a resolved config: 16 hex digits of a 64-bit hash of its canonical
// JSON (sorted keys; 1.0 and 1 print alike).
std::string run_id_of(const nlohmann::json& resolved_config);
std::string canonical_json(const nlohmann::json& value);
uint64_t hash64(const std::string& text);

// Validates what expansion cannot: builds every distinct problem once (shared by the runs
// with the same resolved "problem" object) and loads model.init files once per distinct
// file set. Throws ConfigError naming the run and key.
struct ProblemCache {
  std::map<std::string, std::shared_ptr<const Problem>> by_key;
  std::shared_ptr<const Problem> get(const Config& cfg);
};
std::string problem_key(const Config& cfg);
void validate_runs(const Sweep& sweep, const std::vector<size_t>& runs, ProblemCache& cache);

// ---------------------------------------------------------------------------------------
// Shards

struct ShardSpec {
  uint32_t index = 0, count = 1;
  std::string text() const;
};
// "i/n" with 0 <= i < n; `what` names the option or variable in errors.
ShardSpec parse_shard(const std::string& text, const std::string& what = "--shard");
// From SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT (minus SLURM_ARRAY_TASK_MIN) when set, else 0/1.
ShardSpec shard_from_environment();
// The runs of a shard: indexes i in [0, total) with i % count == index.
std::vector<size_t> shard_runs(size_t total, const ShardSpec& shard);

// ---------------------------------------------------------------------------------------
// Memory planner

// "8G", "512M", "1.5GiB", "100000": bytes (K/M/G/T are powers of 1024).
uint64_t parse_byte_size(const std::string& text, const std::string& what = "--memory-budget");

struct PlannedPack {
  std::vector<size_t> runs;   // indexes into the configs given to plan_packs
  uint64_t bytes = 0;         // parameters + scratch of every run + each distinct problem once
};
// Groups runs of the same pack shape (in order of first appearance) and splits each group
// greedily so that every pack fits `budget` and holds at most `max_runs` runs (0: no cap).
// A run that cannot fit alone is refused with a ConfigError (--memory-budget: ...).
std::vector<PlannedPack> plan_packs(const std::vector<const Config*>& configs, uint64_t budget,
                                    size_t max_runs, const std::vector<std::string>& names = {});
// Default budget: half of the free memory of the device that will run the packs.
uint64_t default_memory_budget(Device device);

// ---------------------------------------------------------------------------------------
// Sweep directory: manifest.json, runs.csv, curves.csv, runs/<run_id>/

std::string runs_csv_header(const std::vector<std::string>& axis_names);
std::string curves_csv_header();
// One CSV field: JSON strings unquoted, other values as JSON, quoted when needed.
std::string csv_field(const nlohmann::json& value);
// Splits one CSV line (RFC 4180 quoting).
std::vector<std::string> split_csv_line(const std::string& line);

// The rows of a sweep directory: complete lines only (a partial trailing line is ignored),
// the curves rows of runs without a runs.csv row are left out.
struct SweepTables {
  std::string runs_header, curves_header;
  std::vector<std::string> run_ids;                      // runs.csv order, first occurrence kept
  std::map<std::string, std::string> run_rows;           // run_id -> runs.csv line (no newline)
  std::map<std::string, std::vector<std::string>> curve_rows;  // run_id -> lines, file order
  bool runs_partial_line = false, curves_partial_line = false;
  size_t dropped_curve_rows = 0, duplicate_rows = 0;
};
SweepTables read_sweep_tables(const std::filesystem::path& dir);

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

enum class SaveParams { none, best, all };
SaveParams parse_save_params(const std::string& text);
std::string to_string(SaveParams s);

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
