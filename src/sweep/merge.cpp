// Merge (see merge.hpp), in the order it checks and then writes: the manifests of the shards,
// that they are one sweep, which shard owns each run, their tables; only when all of that holds
// is OUT made and written (manifest, curves, runs, then the saved parameters worth keeping).
#include "scb/sweep/merge.hpp"

#include <map>
#include <set>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "scb/core/config.hpp"
#include "scb/core/input_files.hpp"
#include "scb/core/output.hpp"
#include "scb/sweep/save_params.hpp"
#include "scb/sweep/sweep_dir.hpp"
#include "scb/sweep/tables.hpp"

namespace scb {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Each directory once, each a sweep directory with a manifest of scb sweep.
std::vector<json> read_shard_manifests(const std::vector<fs::path>& dirs) {
  std::vector<json> manifests;
  std::set<fs::path> unique_dirs;
  for (const fs::path& d : dirs) {
    std::error_code ec;
    const fs::path canon = fs::weakly_canonical(d, ec);
    if (!unique_dirs.insert(ec ? d : canon).second)
      throw ConfigError(fmt::format("merge: {} is given twice", d.string()));
    const SweepDir shard(d);
    if (!shard.has_manifest())
      throw ConfigError(fmt::format("merge: {} is not a sweep directory (no manifest.json)", d.string()));
    json m = shard.read_manifest();
    if (!m.is_object() || m.value("format", "") != SweepDir::kManifestFormat || !m.contains("sweep_id") || !m.contains("runs") ||
        !m.contains("total_runs") || !m.contains("axes"))
      throw ConfigError(fmt::format("merge: {}: not a manifest of scb sweep", (d / "manifest.json").string()));
    manifests.push_back(std::move(m));
  }
  return manifests;
}

void check_one_sweep(const std::vector<fs::path>& dirs, const std::vector<json>& manifests) {
  const std::string sweep_id = manifests[0]["sweep_id"].get<std::string>();
  for (size_t k = 1; k < dirs.size(); ++k)
    if (manifests[k]["sweep_id"] != sweep_id)
      throw ConfigError(fmt::format("merge: {} belongs to another sweep (sweep_id {}) than {} (sweep_id {})", dirs[k].string(),
                                    manifests[k]["sweep_id"].get<std::string>(), dirs[0].string(), sweep_id));
  // The same sweep file may name input files whose content differed when each shard ran.
  for (size_t k = 1; k < dirs.size(); ++k) {
    const std::string changes = input_changes(manifests[0].value("inputs", json::object()), manifests[k].value("inputs", json::object()));
    if (!changes.empty())
      throw ConfigError(fmt::format("merge: {} and {} were trained on different input files: {}", dirs[0].string(), dirs[k].string(),
                                    changes));
  }
}

// A run's value of an eval key: its axis value when the key is an axis, else the base's, else
// the default (keys added later are absent from the base at their default).
json eval_key_of(const json& entry, const json& manifest, const char* key) {
  const std::string dotted = std::string("eval.") + key;
  if (entry.contains("axes") && entry["axes"].contains(dotted)) return entry["axes"][dotted];
  const json& base = manifest.at("base").at("eval");
  return base.contains(key) ? base[key] : default_config_json()["eval"][key];
}

RunExpectation expectation_of(const json& entry, const json& manifest) {
  return {eval_key_of(entry, manifest, "every").get<int64_t>(), eval_key_of(entry, manifest, "thresholds").size() + 1};
}

// Ownership: every run of the sweep belongs to exactly one directory.
struct RunOwnership {
  std::map<size_t, json> entries;                   // manifest entry by sweep index
  std::map<std::string, size_t> owner;              // run_id -> directory
  std::map<std::string, std::string> algorithm_of;  // run_id -> algorithm
  std::map<std::string, RunExpectation> expected;   // run_id -> what its complete rows are
};

RunOwnership assign_runs(const std::vector<fs::path>& dirs, const std::vector<json>& manifests) {
  RunOwnership own;
  for (size_t k = 0; k < dirs.size(); ++k)
    for (const json& r : manifests[k]["runs"]) {
      const std::string id = r["run_id"].get<std::string>();
      auto [it, fresh] = own.owner.emplace(id, k);
      if (!fresh)
        throw ConfigError(fmt::format("merge: run {} is in both {} and {} (overlapping shards); give each shard once", id,
                                      dirs[it->second].string(), dirs[k].string()));
      own.entries[r["index"].get<size_t>()] = r;
      own.algorithm_of[id] = r.value("algorithm", "");
      own.expected[id] = expectation_of(r, manifests[k]);
    }
  const size_t total = manifests[0]["total_runs"].get<size_t>();
  if (own.owner.size() != total)
    throw ConfigError(fmt::format("merge: the directories hold {} of the sweep's {} runs; a shard is missing", own.owner.size(), total));
  return own;
}

// The tables of every directory, each with the sweep's headers and only its own runs.
std::vector<SweepTables> read_shard_tables(const std::vector<fs::path>& dirs, const RunOwnership& own,
                                           const std::string& runs_header, const std::string& curves_header) {
  std::vector<SweepTables> tables;
  for (size_t k = 0; k < dirs.size(); ++k) {
    SweepTables t = read_sweep_tables(dirs[k]);
    if (t.runs_header != runs_header)
      throw ConfigError(fmt::format("merge: {}: unexpected header", (dirs[k] / "runs.csv").string()));
    if (!t.curves_header.empty() && t.curves_header != curves_header)
      throw ConfigError(fmt::format("merge: {}: unexpected header", (dirs[k] / "curves.csv").string()));
    for (const std::string& id : t.run_ids) {
      auto it = own.owner.find(id);
      if (it == own.owner.end() || it->second != k)
        throw ConfigError(fmt::format("merge: {} holds run {}, which its manifest does not list", (dirs[k] / "runs.csv").string(), id));
    }
    tables.push_back(std::move(t));
  }
  return tables;
}

bool any_best_mode(const std::vector<json>& manifests) {
  bool best_mode = false;
  for (const json& mk : manifests) best_mode |= mk.value("save_params", "") == "best";
  return best_mode;
}

// The first shard's manifest with every run, shard 0/1, where it came from, and best mode
// when any shard kept only its best runs.
json merged_manifest(const std::vector<fs::path>& dirs, const std::vector<json>& manifests, const RunOwnership& own) {
  json m = manifests[0];
  m["runs"] = json::array();
  for (const auto& [idx, r] : own.entries) m["runs"].push_back(r);
  m["shard"] = {{"index", 0}, {"count", 1}};
  json from = json::array();
  for (size_t k = 0; k < dirs.size(); ++k) {
    json e = {{"dir", fs::absolute(dirs[k]).lexically_normal().string()}};
    if (manifests[k].contains("shard")) e["shard"] = manifests[k]["shard"];
    from.push_back(e);
  }
  m["merged_from"] = from;
  if (any_best_mode(manifests)) m["save_params"] = "best";
  return m;
}

// The rows of the complete runs, in sweep order.
struct MergedTables {
  std::string runs, curves, milestones;     // milestones empty unless every shard has the table
  std::map<std::string, std::string> rows;  // run_id -> runs.csv line
};

MergedTables join_tables(const RunOwnership& own, const std::vector<SweepTables>& tables, const std::string& runs_header,
                         const std::string& curves_header) {
  bool milestones = true;
  for (const SweepTables& t : tables) milestones &= t.has_milestones;
  MergedTables out{runs_header + "\n", curves_header + "\n", milestones ? milestones_csv_header() + "\n" : "", {}};
  for (const auto& [idx, r] : own.entries) {
    const std::string id = r["run_id"].get<std::string>();
    const SweepTables& t = tables[own.owner.at(id)];
    const RunExpectation& e = own.expected.at(id);
    auto row = t.run_rows.find(id);
    if (row == t.run_rows.end() || !curve_is_complete(t, id, e.eval_every) || !milestones_are_complete(t, id, e.milestones))
      continue;  // not finished, or some of its rows lost
    out.runs += row->second + "\n";
    out.rows[id] = row->second;
    for (const std::string& l : t.curve_rows.at(id)) out.curves += l + "\n";
    if (milestones)
      for (const std::string& l : t.milestone_rows.at(id)) out.milestones += l + "\n";
  }
  return out;
}

// Saved parameters of complete runs, from the directory that owns each (only the overall best
// per algorithm in best mode).
void copy_saved_params(const std::vector<fs::path>& dirs, const RunOwnership& own, const MergedTables& merged,
                       const std::string& runs_header, bool best_mode, SweepDir& out) {
  std::set<std::string> keep;
  if (best_mode)
    for (const auto& [alg, b] : best_from_rows(runs_header, merged.rows, own.algorithm_of)) keep.insert(b.run_id);
  for (size_t k = 0; k < dirs.size(); ++k)
    for (const fs::path& saved : SweepDir(dirs[k]).saved_params()) {
      const std::string id = saved.filename().string();
      if (!merged.rows.count(id) || own.owner.at(id) != k || (best_mode && !keep.count(id))) continue;
      if (!run_outputs_complete(saved))
        throw ConfigError(fmt::format("merge: {} is damaged (a file is missing or cut); `scb sweep ... --out {} --resume` trains the run "
                                      "again",
                                      saved.string(), dirs[k].string()));
      out.copy_params_from(saved);
    }
}

}  // namespace

MergeSummary merge_sweep_dirs(const fs::path& out, const std::vector<fs::path>& dirs) {
  if (dirs.empty()) throw ConfigError("merge: give at least one sweep directory to merge");
  const std::vector<json> manifests = read_shard_manifests(dirs);
  check_one_sweep(dirs, manifests);
  std::vector<std::string> axis_names;
  for (const json& a : manifests[0]["axes"]) axis_names.push_back(a["name"].get<std::string>());
  const std::string runs_header = runs_csv_header(axis_names), curves_header = curves_csv_header();
  const RunOwnership own = assign_runs(dirs, manifests);
  const std::vector<SweepTables> tables = read_shard_tables(dirs, own, runs_header, curves_header);

  const json manifest = merged_manifest(dirs, manifests, own);
  const MergedTables merged = join_tables(own, tables, runs_header, curves_header);
  prepare_atomic_output_dir(out);
  build_directory_atomically(out, [&](const fs::path& partial) {  // a full disk leaves nothing behind
    SweepDir merged_dir(partial);
    merged_dir.write_manifest(manifest);
    merged_dir.replace_curves_table(merged.curves);
    merged_dir.replace_runs_table(merged.runs);
    if (!merged.milestones.empty()) write_file_atomic(partial / "milestones.csv", merged.milestones);
    copy_saved_params(dirs, own, merged, runs_header, any_best_mode(manifests), merged_dir);
  });

  MergeSummary sum;
  sum.dirs = dirs.size();
  sum.runs = own.owner.size();
  sum.complete = merged.rows.size();
  return sum;
}

}  // namespace scb
