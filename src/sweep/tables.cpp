// The tables (see tables.hpp): writing a row and reading rows back sit together so that the
// quoting rules of one are visibly the rules of the other.
#include "scb/sweep/tables.hpp"

#include <fstream>
#include <optional>
#include <sstream>
#include <unordered_set>

#include <fmt/format.h>

#include "scb/core/milestones.hpp"
#include "scb/core/output.hpp"

namespace scb {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Lines of a file: complete lines (without '\n') and whether a partial line follows them.
std::vector<std::string> split_lines(const std::string& text, bool& partial) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (;;) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string::npos) break;
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  partial = start < text.size();
  return lines;
}

std::string first_field(const std::string& line) { return line.substr(0, line.find(',')); }

std::string metric(double x) { return fmt::format("{:.10g}", x); }

// runs.csv after its header: the first row of each run_id (later ones count as duplicates).
void read_run_rows(const std::vector<std::string>& lines, SweepTables& t) {
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string id = first_field(lines[i]);
    if (t.run_rows.count(id)) {
      ++t.duplicate_rows;
      continue;
    }
    t.run_ids.push_back(id);
    t.run_rows.emplace(id, lines[i]);
  }
}

// A per-run table after its header (curves.csv, milestones.csv): the rows of runs with a
// runs.csv row, the first of each key (key_of: the fields that name a row, nullopt for a row
// too short to have them); rows of other runs count in `dropped`, repeated keys and short rows
// in duplicate_rows.
template <typename KeyOf>
void read_rows_of_runs(const std::vector<std::string>& lines, SweepTables& t, KeyOf key_of, size_t& dropped,
                       std::map<std::string, std::vector<std::string>>& rows) {
  std::unordered_set<std::string> seen;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string id = first_field(lines[i]);
    if (!t.run_rows.count(id)) {
      ++dropped;
      continue;
    }
    const std::optional<std::string> key = key_of(lines[i]);
    if (!key || !seen.insert(*key).second) {
      ++t.duplicate_rows;
      continue;
    }
    rows[id].push_back(lines[i]);
  }
}

// curves.csv: one row per (run_id, step).
void read_curve_rows(const std::vector<std::string>& lines, SweepTables& t) {
  auto run_and_step = [](const std::string& line) -> std::optional<std::string> {
    return line.substr(0, line.find(',', line.find(',') + 1));
  };
  read_rows_of_runs(lines, t, run_and_step, t.dropped_curve_rows, t.curve_rows);
}

// milestones.csv: one row per (run_id, metric, threshold).
void read_milestone_rows(const std::vector<std::string>& lines, SweepTables& t) {
  auto run_metric_threshold = [](const std::string& line) -> std::optional<std::string> {
    const std::vector<std::string> f = split_csv_line(line);
    if (f.size() < 3) return std::nullopt;
    return f[0] + "," + f[1] + "," + f[2];
  };
  read_rows_of_runs(lines, t, run_metric_threshold, t.dropped_milestone_rows, t.milestone_rows);
}

}  // namespace

std::string milestones_csv_header() { return "run_id,metric,threshold,step,samples"; }

std::string milestones_csv_rows(const SweepRun& run, const RunResult& res) {
  std::string rows;
  for (const Milestone& m : milestones(res.curve, run.config.eval.thresholds)) {
    rows += fmt::format("{},{},{},", run.run_id, m.metric, m.metric == "dist_A_norm" ? metric(m.threshold) : std::string());
    rows += m.reached() ? fmt::format("{},{}\n", m.step, m.samples) : std::string(",\n");
  }
  return rows;
}

bool milestones_are_complete(const SweepTables& t, const std::string& id, size_t expected) {
  if (!t.has_milestones) return true;
  auto it = t.milestone_rows.find(id);
  return (it == t.milestone_rows.end() ? 0 : it->second.size()) == expected;
}

std::string runs_csv_header(const std::vector<std::string>& axis_names) {
  std::string h = "run_id";
  for (const std::string& a : axis_names) {
    h += ',';
    h += csv_field(json(a));
  }
  h += ",replicate,status,diverged_step,steps,samples,loss,excess_loss,dist_V,dist_A,dist_V_norm,dist_A_norm,nnz_A,best_step,"
       "best_dist_A_norm";
  return h;
}

std::string curves_csv_header() { return std::string("run_id,") + kCurveHeader; }

std::string csv_field(const json& v) {
  const std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') cur += '"', ++i;
      else if (c == '"') quoted = false;
      else cur += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(std::move(cur));
  return out;
}

size_t column_index(const std::string& header, const std::string& name) {
  const std::vector<std::string> cols = split_csv_line(header);
  for (size_t i = 0; i < cols.size(); ++i)
    if (cols[i] == name) return i;
  return std::string::npos;
}

std::string runs_csv_row(const SweepRun& run, const RunPack& pack, size_t r, const RunResult& res) {
  std::string row = run.run_id;
  for (const json& v : run.axis_values) {
    row += ',';
    row += csv_field(v);
  }
  const Metrics& f = res.final_metrics;
  const bool diverged = res.status == RunStatus::diverged;
  row += fmt::format(",{},{},{},{},{},{},{},{},{},{},{},{},{},{}", run.replicate, diverged ? "diverged" : "ok",
                     diverged ? std::to_string(res.diverged_step) : std::string(), pack.step[r], pack.samples[r], metric(f.loss),
                     metric(f.excess_loss), metric(f.dist_V), metric(f.dist_A), metric(f.dist_V_norm), metric(f.dist_A_norm),
                     f.nnz_A, res.best.step, metric(res.best.dist_A_norm));
  return row + "\n";
}

std::string curves_csv_rows(const SweepRun& run, const RunResult& res) {
  std::string rows;
  for (const Metrics& m : res.curve) rows += run.run_id + "," + curve_row(m) + "\n";
  return rows;
}

std::string read_table_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

bool parse_step(const std::string& text, int64_t& out) {
  if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) return false;
  out = std::stoll(text);
  return true;
}

}  // namespace

bool curve_is_complete(const SweepTables& t, const std::string& id, int64_t eval_every) {
  const size_t steps_col = column_index(t.runs_header, "steps");
  auto row = t.run_rows.find(id);
  if (row == t.run_rows.end() || steps_col == std::string::npos || eval_every <= 0) return false;
  const std::vector<std::string> fields = split_csv_line(row->second);
  int64_t last = 0;
  if (fields.size() <= steps_col || !parse_step(fields[steps_col], last)) return false;
  auto c = t.curve_rows.find(id);
  const size_t rows = c == t.curve_rows.end() ? 0 : c->second.size();
  const int64_t on_grid = last / eval_every + 1;  // steps 0, E, 2E, ... <= last
  if (int64_t(rows) != on_grid + (last % eval_every != 0 ? 1 : 0)) return false;
  for (size_t k = 0; k < rows; ++k) {
    const std::string& line = c->second[k];
    const size_t c1 = line.find(','), c2 = line.find(',', c1 + 1);
    int64_t step = 0;
    if (c1 == std::string::npos || !parse_step(line.substr(c1 + 1, c2 - c1 - 1), step)) return false;
    if (step != (int64_t(k) < on_grid ? int64_t(k) * eval_every : last)) return false;
  }
  return true;
}

SweepTables read_sweep_tables(const fs::path& dir) {
  SweepTables t;
  bool partial = false;
  std::vector<std::string> lines = split_lines(read_table_text(dir / "runs.csv"), partial);
  t.runs_partial_line = partial;
  if (!lines.empty()) t.runs_header = lines[0];
  read_run_rows(lines, t);
  lines = split_lines(read_table_text(dir / "curves.csv"), partial);
  t.curves_partial_line = partial;
  if (!lines.empty()) t.curves_header = lines[0];
  read_curve_rows(lines, t);
  std::error_code ec;
  t.has_milestones = fs::exists(dir / "milestones.csv", ec);
  if (t.has_milestones) {
    lines = split_lines(read_table_text(dir / "milestones.csv"), partial);
    t.milestones_partial_line = partial;
    if (!lines.empty()) t.milestones_header = lines[0];
    read_milestone_rows(lines, t);
  }
  return t;
}

}  // namespace scb
