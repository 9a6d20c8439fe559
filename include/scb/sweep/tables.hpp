#pragma once
// The tables of a sweep directory, runs.csv and curves.csv: their headers, their rows and how
// they are read back. Text only (no files are written here), so the row format is in one place
// for the runner that appends rows, the recovery that cuts them and the merge that joins them.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scb/core/runpack.hpp"
#include "scb/core/trainer.hpp"
#include "scb/sweep/expand.hpp"

namespace scb {

std::string runs_csv_header(const std::vector<std::string>& axis_names);
std::string curves_csv_header();
// milestones.csv: run_id,metric,threshold,step,samples (scb/core/milestones.hpp; step and
// samples empty when never reached).
std::string milestones_csv_header();
// One CSV field: JSON strings unquoted, other values as JSON, quoted when needed.
std::string csv_field(const nlohmann::json& value);
// Splits one CSV line (RFC 4180 quoting).
std::vector<std::string> split_csv_line(const std::string& line);
// Index of a column in a header line, or npos.
size_t column_index(const std::string& header, const std::string& name);

// A finished run's runs.csv line and its curves.csv lines (each ending in '\n').
std::string runs_csv_row(const SweepRun& run, const RunPack& pack, size_t r, const RunResult& result);
std::string curves_csv_rows(const SweepRun& run, const RunResult& result);
std::string milestones_csv_rows(const SweepRun& run, const RunResult& result);

// The whole text of a table file; empty when it is missing.
std::string read_table_text(const std::filesystem::path& file);

// The rows of a sweep directory: complete lines only (a partial trailing line is ignored),
// the curves rows of runs without a runs.csv row are left out.
struct SweepTables {
  std::string runs_header, curves_header;
  std::vector<std::string> run_ids;                      // runs.csv order, first occurrence kept
  std::map<std::string, std::string> run_rows;           // run_id -> runs.csv line (no newline)
  std::map<std::string, std::vector<std::string>> curve_rows;  // run_id -> lines, file order
  bool runs_partial_line = false, curves_partial_line = false;
  size_t dropped_curve_rows = 0, duplicate_rows = 0;
  // milestones.csv, when the directory has one (directories of engines before it have none).
  bool has_milestones = false, milestones_partial_line = false;
  std::string milestones_header;
  std::map<std::string, std::vector<std::string>> milestone_rows;  // run_id -> lines
  size_t dropped_milestone_rows = 0;
};
SweepTables read_sweep_tables(const std::filesystem::path& dir);

// Whether run `id` has its runs.csv row and exactly the curve rows training writes for it: one
// at every multiple of eval_every up to its last step (the row's `steps`), then the last step.
// A deleted or truncated curves.csv, or a row lost from the middle, makes the run incomplete.
bool curve_is_complete(const SweepTables& tables, const std::string& id, int64_t eval_every);
// Whether run `id` has its `expected` milestones.csv rows (always true without the table).
bool milestones_are_complete(const SweepTables& tables, const std::string& id, size_t expected);

}  // namespace scb
