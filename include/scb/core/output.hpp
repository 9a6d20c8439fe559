#pragma once
// The files of docs/formats.md section 4: config.json, curves.csv, summary.json and the .npy matrices of a run.
#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "scb/core/input_files.hpp"
#include "scb/core/trainer.hpp"

namespace scb {

// The section 6 columns, in order, as written in curves.csv.
extern const char* const kCurveHeader;
// One curves.csv row (no newline); non-finite values print as nan/inf.
std::string curve_row(const Metrics& m);
// A metrics object for summary.json (non-finite values become null).
nlohmann::json metrics_json(const Metrics& m);

// Refuses an existing non-empty directory (ConfigError naming --out), else creates it.
void prepare_output_dir(const std::filesystem::path& dir);

struct RunTiming {
  double wall_seconds = 0;
  std::string device;
  int threads = 0;
};

// Everything `scb train --out DIR` writes, for run r of a trained pack, each file durable (fsync
// checked) and the folder synced; callers build DIR under a temporary name and rename it.
// `inputs` holds the hashes of the files cfg reads, computed once before training (a sweep's at
// its start, a single run's right after it read them): the files are not read again here.
void write_run_outputs(const std::filesystem::path& dir, const Config& cfg, const RunPack& pack,
                       size_t r, const RunResult& result, const RunTiming& timing, const InputHashes& inputs);

// Whether a folder holds every file write_run_outputs writes, each whole (.npy sizes match their
// headers, the JSON files parse): what a resume or a merge checks before trusting saved runs.
bool run_outputs_complete(const std::filesystem::path& dir);

// For a directory that build_directory_atomically will make: prepare_output_dir, then proof
// that DIR.partial can be created and written (ConfigError with the system's reason), so an
// unwritable place is found before any work.
void prepare_atomic_output_dir(const std::filesystem::path& dir);
// Makes DIR (new, or empty) by filling DIR.partial and renaming it into place once every file
// is durable: a kill or a full disk never leaves a DIR that looks complete. A stale DIR.partial
// of an earlier kill is replaced; after a failure nothing of this call is left behind.
void build_directory_atomically(const std::filesystem::path& dir, const std::function<void(const std::filesystem::path&)>& fill);
// write_run_outputs through build_directory_atomically (`scb train --out DIR`).
void write_run_outputs_atomically(const std::filesystem::path& dir, const Config& cfg, const RunPack& pack,
                                  size_t r, const RunResult& result, const RunTiming& timing,
                                  const InputHashes& inputs);

nlohmann::json summary_json(const RunPack& pack, size_t r, const RunResult& result, const RunTiming& timing);

// Bytes of memory the OS can give now (MemAvailable), 0 when unknown.
uint64_t available_host_memory();

}  // namespace scb
