#pragma once
// The files of docs/formats.md section 4: config.json, curves.csv, summary.json and the .npy matrices of a run.
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

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
void write_run_outputs(const std::filesystem::path& dir, const Config& cfg, const RunPack& pack,
                       size_t r, const RunResult& result, const RunTiming& timing);

// The same, built under DIR.partial and renamed to DIR (new, or empty) once every file is
// durable: a kill or a full disk never leaves a DIR that looks complete.
void write_run_outputs_atomically(const std::filesystem::path& dir, const Config& cfg, const RunPack& pack,
                                  size_t r, const RunResult& result, const RunTiming& timing);

nlohmann::json summary_json(const RunPack& pack, size_t r, const RunResult& result, const RunTiming& timing);

// Bytes of memory the OS can give now (MemAvailable), 0 when unknown.
uint64_t available_host_memory();

}  // namespace scb
