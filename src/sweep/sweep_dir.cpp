// The sweep directory (see sweep_dir.hpp). The POSIX calls (open, write, fsync, flock, rename)
// are all in this file; each public step is written in the order its writes reach the disk,
// which is what makes a kill at any instant recoverable.
#include "scb/sweep/sweep_dir.hpp"

#include "scb/core/durable_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "scb/core/config.hpp"
#include "scb/core/input_files.hpp"
#include "scb/core/output.hpp"

namespace scb {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool file_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::vector<std::string> manifest_run_ids(const json& m) {
  std::vector<std::string> ids;
  if (!m.contains("runs") || !m["runs"].is_array()) return ids;
  for (const json& r : m["runs"])
    if (r.contains("run_id") && r["run_id"].is_string()) ids.push_back(r["run_id"].get<std::string>());
  return ids;
}

json manifest_runs(const Sweep& s, const std::vector<size_t>& mine) {
  json runs = json::array();
  for (size_t i : mine) {
    const SweepRun& r = s.runs[i];
    json ax = json::object();
    for (size_t a = 0; a < s.axes.size(); ++a) ax[s.axes[a].name] = r.axis_values[a];
    runs.push_back({{"index", r.index},
                    {"run_id", r.run_id},
                    {"replicate", r.replicate},
                    {"algorithm", to_string(r.config.train.algorithm)},
                    {"seed", r.config.train.seed},
                    {"axes", ax}});
  }
  return runs;
}

}  // namespace

json sweep_manifest(const Sweep& s, const std::vector<size_t>& mine, const ShardSpec& shard, SaveParams save, const json& inputs) {
  json m;
  m["format"] = SweepDir::kManifestFormat;
  m["sweep_file"] = s.file.string();
  m["sweep"] = json::parse(s.document.dump());  // key order of the file is not kept here
  m["base"] = s.resolved_base;
  m["base_dir"] = s.base_dir.string();
  json axes = json::array();
  for (const SweepAxis& a : s.axes) axes.push_back({{"name", a.name}, {"kind", a.zip ? "zip" : "grid"}, {"values", a.values}});
  m["axes"] = axes;
  m["replicates"] = s.replicates;
  m["sweep_id"] = s.sweep_id;
  m["total_runs"] = s.runs.size();
  m["shard"] = {{"index", shard.index}, {"count", shard.count}};
  m["save_params"] = to_string(save);
  m["runs"] = manifest_runs(s, mine);
  if (!inputs.empty()) m["inputs"] = inputs;  // absent without input files, as before inputs were pinned
  return m;
}

// ---------------------------------------------------------------------------------------
// The directory, its lock and its manifest

SweepDir::SweepDir(fs::path dir) : dir_(std::move(dir)) {}

SweepDir::~SweepDir() {
  close_fd(milestones_fd_);
  close_fd(runs_fd_);
  close_fd(curves_fd_);
  close_fd(lock_fd_);
}

void SweepDir::lock() {
  const int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw ConfigError(fmt::format("--out {}: cannot open the directory ({})", dir_.string(), std::strerror(errno)));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw ConfigError(fmt::format("--out {}: another scb sweep is writing to this directory", dir_.string()));
  }
  lock_fd_ = fd;
}

bool SweepDir::is_interrupted_creation() const {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec) || has_manifest()) return false;
  bool any = false;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name != "manifest.json.tmp" && name != "milestones.csv" && name != "milestones.csv.tmp") return false;
    any = true;
  }
  return any;
}

void SweepDir::prepare() {
  // The manifest is the first file a new directory gets; a kill while it was written leaves
  // only its temporary, which is no sweep's data.
  std::error_code ec;
  if (is_interrupted_creation())
    for (const char* name : {"manifest.json.tmp", "milestones.csv", "milestones.csv.tmp"}) fs::remove(dir_ / name, ec);
  prepare_output_dir(dir_);
}

void SweepDir::create(const json& manifest, const std::vector<std::string>& axis_names) {
  prepare();
  lock();
  try {
    // milestones.csv before the manifest: a directory with a manifest and no milestones.csv was
    // made by an engine without milestones, and stays without them.
    replace_table("milestones.csv", milestones_csv_header() + "\n");
    write_manifest(manifest);
    replace_runs_table(runs_csv_header(axis_names) + "\n");
    replace_curves_table(curves_csv_header() + "\n");
  } catch (const std::runtime_error& e) {  // nothing trained yet: an unwritable --out is bad input
    throw ConfigError(fmt::format("--out {}: {}", dir_.string(), e.what()));
  }
}

bool SweepDir::has_manifest() const { return file_exists(dir_ / "manifest.json"); }

json SweepDir::read_manifest() const { return load_json_file(dir_ / "manifest.json"); }

void SweepDir::write_manifest(const json& manifest) { write_file_atomic(dir_ / "manifest.json", manifest.dump(1) + "\n"); }

json SweepDir::resume_manifest(const std::vector<std::string>& want) const {
  const json m = read_manifest();
  if (!m.contains("format") || m["format"] != kManifestFormat)
    throw ConfigError(fmt::format("--resume: {}: not a manifest of scb sweep", (dir_ / "manifest.json").string()));
  const std::vector<std::string> have = manifest_run_ids(m);
  if (have != want) {
    size_t common = 0;
    const std::set<std::string> hs(have.begin(), have.end());
    for (const std::string& id : want) common += hs.count(id);
    throw ConfigError(fmt::format(
        "--resume: {} was written by a different sweep or shard ({} runs there, {} here, {} in common); use the same sweep "
        "file and --shard, or a new --out",
        dir_.string(), have.size(), want.size(), common));
  }
  return m;
}

void SweepDir::check_inputs(const json& m, const json& inputs) {
  const json recorded = m.value("inputs", json::object());
  const std::string changes = input_changes(recorded, inputs);
  if (!changes.empty())
    throw ConfigError(fmt::format("--resume: {}: input files changed since this sweep started: {}; restore them, or start a new --out",
                                  (dir_ / "manifest.json").string(), changes));
  if (!m.contains("inputs") && !inputs.empty()) {  // written by an engine that did not pin inputs: pin them from now on
    json updated = m;
    updated["inputs"] = inputs;
    write_manifest(updated);
  }
}

SaveParams SweepDir::resume_save_params(const json& m, SaveParams save, bool given) {
  if (!given && m.contains("save_params") && m["save_params"].is_string()) save = parse_save_params(m["save_params"].get<std::string>());
  if (m.value("save_params", "") != to_string(save)) {
    json updated = m;
    updated["save_params"] = to_string(save);
    write_manifest(updated);
  }
  return save;
}

// ---------------------------------------------------------------------------------------
// Recovery

std::set<std::string> SweepDir::recover(const std::vector<std::string>& axis_names,
                                        const std::map<std::string, RunExpectation>& expected, SaveParams save) {
  const std::string runs_header = runs_csv_header(axis_names), curves_header = curves_csv_header();
  std::error_code ec;
  for (const char* name : {"runs.csv.tmp", "curves.csv.tmp", "milestones.csv.tmp", "manifest.json.tmp"}) fs::remove(dir_ / name, ec);
  restart_tables_cut_in_header(runs_header, curves_header);
  const SweepTables t = read_sweep_tables(dir_);
  if (t.runs_header != runs_header)
    throw ConfigError(fmt::format("--resume: {}: the header differs from this sweep's ({} vs {}); start a new --out",
                                  (dir_ / "runs.csv").string(), t.runs_header, runs_header));
  if (t.curves_header != curves_header)
    throw ConfigError(fmt::format("--resume: {}: unexpected header \"{}\"; start a new --out", (dir_ / "curves.csv").string(), t.curves_header));
  if (t.has_milestones && t.milestones_header != milestones_csv_header())
    throw ConfigError(fmt::format("--resume: {}: unexpected header \"{}\"; start a new --out", (dir_ / "milestones.csv").string(),
                                  t.milestones_header));
  std::set<std::string> done;
  for (const std::string& id : t.run_ids) {
    auto e = expected.find(id);
    if (e == expected.end())
      throw ConfigError(fmt::format("--resume: {} holds run {}, which this sweep does not have; start a new --out",
                                    (dir_ / "runs.csv").string(), id));
    // Else a curve or milestone row was cut or deleted: the run is trained again.
    if (curve_is_complete(t, id, e->second.eval_every) && milestones_are_complete(t, id, e->second.milestones)) done.insert(id);
  }
  // Parameters of runs that never completed, half-written ones and damaged ones.
  remove_params_where([&](const std::string& name) {
    return name.ends_with(".tmp") || !done.count(name) || !run_outputs_complete(dir_ / "runs" / name);
  });
  if (save == SaveParams::all)
    for (auto it = done.begin(); it != done.end();) it = fs::exists(dir_ / "runs" / *it, ec) ? std::next(it) : done.erase(it);
  rewrite_damaged_tables(t, done, runs_header, curves_header);
  remove_stale_checkpoints(done);
  return done;
}

// Checkpoints of complete runs, half-written ones and damaged ones (that run starts again).
void SweepDir::remove_stale_checkpoints(const std::set<std::string>& done) {
  std::error_code ec;
  if (!fs::is_directory(dir_ / "checkpoints", ec)) return;
  for (const auto& e : fs::directory_iterator(dir_ / "checkpoints", ec)) {
    const std::string id = e.path().stem().string();
    bool keep = e.path().extension() == ".ckpt" && !done.count(id);
    if (keep) try {
        keep = checkpoint_run_id(e.path()) == id;
      } catch (const ConfigError&) {
        keep = false;
      }
    if (!keep) fs::remove(e.path(), ec);
  }
}

fs::path SweepDir::checkpoint_path(const std::string& run_id) const { return dir_ / "checkpoints" / (run_id + ".ckpt"); }

bool SweepDir::has_checkpoint(const std::string& run_id) const { return file_exists(checkpoint_path(run_id)); }

void SweepDir::save_checkpoint(const RunCheckpoint& c) {
  std::error_code ec;
  fs::create_directories(dir_ / "checkpoints", ec);
  write_checkpoint(checkpoint_path(c.run_id), c);
}

void SweepDir::remove_checkpoint(const std::string& run_id) {
  std::error_code ec;
  fs::remove(checkpoint_path(run_id), ec);
}

void SweepDir::forget_runs(const std::vector<std::string>& axis_names, const std::set<std::string>& forget) {
  if (forget.empty()) return;
  const SweepTables t = read_sweep_tables(dir_);
  std::set<std::string> keep;
  for (const std::string& id : t.run_ids)
    if (!forget.count(id)) keep.insert(id);
  rewrite_damaged_tables(t, keep, runs_csv_header(axis_names), curves_csv_header());
  for (const std::string& id : forget) remove_params(id);
}

// Files cut before their header was complete are started again.
void SweepDir::restart_tables_cut_in_header(const std::string& runs_header, const std::string& curves_header) {
  std::error_code ec;
  const bool milestones = fs::exists(dir_ / "milestones.csv", ec);
  for (const auto& [name, header] : {std::pair<const char*, std::string>{"runs.csv", runs_header}, {"curves.csv", curves_header},
                                     {"milestones.csv", milestones_csv_header()}}) {
    if (std::string(name) == "milestones.csv" && !milestones) continue;
    const std::string text = read_table_text(dir_ / name);
    if (text.find('\n') == std::string::npos) {
      if (!(header + "\n").starts_with(text))
        throw ConfigError(fmt::format("--resume: {} is not a runs table of this sweep; start a new --out", (dir_ / name).string()));
      replace_table(name, header + "\n");
    }
  }
}

namespace {

// A per-run table's text: its header, then the rows of the `done` runs in runs.csv order.
std::string rows_of_runs(const std::string& header, const std::vector<std::string>& run_ids,
                         const std::map<std::string, std::vector<std::string>>& rows, const std::set<std::string>& done) {
  std::string text = header + "\n";
  for (const std::string& id : run_ids) {
    auto it = rows.find(id);
    if (done.count(id) && it != rows.end())
      for (const std::string& line : it->second) text += line + "\n";
  }
  return text;
}

}  // namespace

// Keeps the rows of the `done` runs only. Rewrites are atomic: an interruption here leaves the old
// file, and the next resume repeats this.
void SweepDir::rewrite_damaged_tables(const SweepTables& t, const std::set<std::string>& done, const std::string& runs_header,
                                      const std::string& curves_header) {
  const bool dropped_runs = done.size() != t.run_ids.size();
  if (t.runs_partial_line || t.duplicate_rows > 0 || dropped_runs) {
    std::string text = runs_header + "\n";
    for (const std::string& id : t.run_ids)
      if (done.count(id)) text += t.run_rows.at(id) + "\n";
    replace_runs_table(text);
  }
  if (t.curves_partial_line || t.dropped_curve_rows > 0 || t.duplicate_rows > 0 || dropped_runs)
    replace_curves_table(rows_of_runs(curves_header, t.run_ids, t.curve_rows, done));
  if (t.has_milestones && (t.milestones_partial_line || t.dropped_milestone_rows > 0 || t.duplicate_rows > 0 || dropped_runs))
    replace_table("milestones.csv", rows_of_runs(milestones_csv_header(), t.run_ids, t.milestone_rows, done));
}

std::set<std::string> recover_sweep_dir(const fs::path& dir, const std::vector<std::string>& axis_names,
                                        const std::map<std::string, RunExpectation>& expected, SaveParams save) {
  return SweepDir(dir).recover(axis_names, expected, save);
}
// ---------------------------------------------------------------------------------------
// Tables

void SweepDir::replace_table(const char* name, const std::string& text) { write_file_atomic(dir_ / name, text); }
void SweepDir::replace_runs_table(const std::string& text) { replace_table("runs.csv", text); }
void SweepDir::replace_curves_table(const std::string& text) { replace_table("curves.csv", text); }

void SweepDir::open_tables_for_append() {
  runs_fd_ = ::open((dir_ / "runs.csv").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  curves_fd_ = ::open((dir_ / "curves.csv").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  const bool milestones = file_exists(dir_ / "milestones.csv");
  if (milestones) milestones_fd_ = ::open((dir_ / "milestones.csv").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (runs_fd_ < 0 || curves_fd_ < 0 || (milestones && milestones_fd_ < 0)) {
    const int saved = errno;
    close_fd(runs_fd_), close_fd(curves_fd_), close_fd(milestones_fd_);
    throw ConfigError(fmt::format("--out {}: cannot open the tables for appending ({})", dir_.string(), std::strerror(saved)));
  }
}

void SweepDir::append(const std::string& runs_lines, const std::string& curves_lines, const std::string& milestone_lines) {
  if (milestones_fd_ >= 0 && !milestone_lines.empty()) {
    write_all(milestones_fd_, milestone_lines, dir_ / "milestones.csv");
    fsync_fd(milestones_fd_, dir_ / "milestones.csv");
  }
  if (!curves_lines.empty()) {
    write_all(curves_fd_, curves_lines, dir_ / "curves.csv");
    fsync_fd(curves_fd_, dir_ / "curves.csv");
  }
  if (!runs_lines.empty()) {
    write_all(runs_fd_, runs_lines, dir_ / "runs.csv");
    fsync_fd(runs_fd_, dir_ / "runs.csv");
  }
}

// ---------------------------------------------------------------------------------------
// Saved parameters

std::vector<fs::path> SweepDir::saved_params() const {
  std::vector<fs::path> entries;
  std::error_code ec;
  if (!fs::is_directory(dir_ / "runs", ec)) return entries;
  for (const auto& e : fs::directory_iterator(dir_ / "runs", ec)) entries.push_back(e.path());
  return entries;
}

void SweepDir::save_params(const std::vector<std::string>& run_ids, const std::function<void(size_t, const fs::path&)>& write) {
  fs::create_directories(dir_ / "runs");
  for (size_t k = 0; k < run_ids.size(); ++k) {
    const fs::path tmp = dir_ / "runs" / (run_ids[k] + ".tmp"), dst = dir_ / "runs" / run_ids[k];
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp);
    write(k, tmp);
    fs::remove_all(dst, ec);
    fs::rename(tmp, dst);
  }
  fsync_directory(dir_ / "runs");
}

void SweepDir::remove_params(const std::string& run_id) {
  std::error_code ec;
  fs::remove_all(dir_ / "runs" / run_id, ec);
}

void SweepDir::keep_only_params(const std::set<std::string>& keep) {
  remove_params_where([&](const std::string& name) { return !keep.count(name); });
}

void SweepDir::remove_params_where(const std::function<bool(const std::string& name)>& stale) {
  std::error_code ec;
  for (const fs::path& p : saved_params())
    if (stale(p.filename().string())) fs::remove_all(p, ec);
}

void SweepDir::copy_params_from(const fs::path& saved) {
  const fs::path dst = dir_ / "runs" / saved.filename();
  fs::create_directories(dst);
  for (const auto& e : fs::directory_iterator(saved))
    if (e.is_regular_file()) write_file_durable(dst / e.path().filename(), read_text_file(e.path(), "a saved file"));
  fsync_directory(dst);
  fsync_directory(dir_ / "runs");
}

}  // namespace scb
