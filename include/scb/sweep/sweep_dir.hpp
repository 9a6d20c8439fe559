#pragma once
// The sweep directory: manifest.json, runs.csv, curves.csv and runs/<run_id>/. This is the
// crash-safety layer, so one type owns every write to these files and the order of them: whole
// files are replaced atomically (temporary, fsync, rename, fsync of the folder), table rows are
// appended as whole lines with one write + fsync (curves before runs: a run is complete once its
// runs.csv line is on disk), and saved parameters are written to runs/<run_id>.tmp and renamed.
// A kill at any instant leaves a directory that recover() brings back to complete runs only.
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scb/core/checkpoint.hpp"
#include "scb/core/durable_file.hpp"
#include "scb/sweep/expand.hpp"
#include "scb/sweep/save_params.hpp"
#include "scb/sweep/shard.hpp"
#include "scb/sweep/tables.hpp"

namespace scb {

// What a complete run has in the tables: a curve row at every multiple of eval_every (and at its
// last step) and, in a directory with milestones.csv, this many milestone rows.
struct RunExpectation {
  int64_t eval_every = 1;
  size_t milestones = 0;
};


// The manifest of a new sweep directory: the sweep as read, this shard's runs and the save mode.
// `inputs` ({"path": "content hash"}, InputHashes) is recorded when not empty.
nlohmann::json sweep_manifest(const Sweep& sweep, const std::vector<size_t>& runs, const ShardSpec& shard, SaveParams save,
                              const nlohmann::json& inputs);

class SweepDir {
 public:
  static constexpr const char* kManifestFormat = "scb-sweep/1";

  explicit SweepDir(std::filesystem::path dir);  // touches nothing on disk
  ~SweepDir();                                   // closes the tables, then releases the lock
  SweepDir(const SweepDir&) = delete;
  SweepDir& operator=(const SweepDir&) = delete;

  const std::filesystem::path& path() const { return dir_; }

  // An exclusive lock on the directory for this object's lifetime; ConfigError (--out ...) when
  // another process holds it.
  void lock();
  // Makes the directory, which must be new or empty (prepare_output_dir); the leftover of a kill
  // during an earlier create() counts as empty.
  void prepare();
  // No manifest.json, and nothing but its temporary: create() was killed before it finished.
  bool is_interrupted_creation() const;
  // A new sweep directory (prepare(), then lock()) with `manifest` and the table headers written.
  void create(const nlohmann::json& manifest, const std::vector<std::string>& axis_names);

  bool has_manifest() const;
  nlohmann::json read_manifest() const;
  void write_manifest(const nlohmann::json& manifest);
  // The manifest of a sweep being resumed; ConfigError (--resume: ...) when it is not one of scb
  // sweep or lists other runs than `run_ids` (another sweep file or shard).
  nlohmann::json resume_manifest(const std::vector<std::string>& run_ids) const;
  // The save mode a resumed sweep goes on with: `requested` when given, else the manifest's.
  // The manifest is rewritten when the mode it records changes.
  SaveParams resume_save_params(const nlohmann::json& manifest, SaveParams requested, bool requested_given);
  // ConfigError (--resume: ...) when an input file the manifest pinned has other content now;
  // a manifest of an engine that did not pin inputs gets them recorded.
  void check_inputs(const nlohmann::json& manifest, const nlohmann::json& inputs);

  // Brings runs.csv and curves.csv back to complete runs after an interruption or damage: a run
  // is complete when its row, every curve row (curve_is_complete, with the run's eval.every)
  // and, with --save-params all, its whole saved folder are there. Partial lines, duplicates and
  // the rows of incomplete runs are dropped (files replaced atomically); temporaries and the
  // saved folders of incomplete runs, or damaged ones, are removed. Rows of run_ids outside
  // `eval_every` are refused. Returns the complete run_ids.
  std::set<std::string> recover(const std::vector<std::string>& axis_names, const std::map<std::string, RunExpectation>& expected,
                                SaveParams save);
  // Drops complete runs again (their rows and saved folders): best mode when a best run's folder
  // is missing, so that it is trained again.
  void forget_runs(const std::vector<std::string>& axis_names, const std::set<std::string>& runs);

  // Whole tables, replaced atomically.
  void replace_runs_table(const std::string& text);
  void replace_curves_table(const std::string& text);
  // Opens both tables for append(); they exist (headers written).
  void open_tables_for_append();
  // Appends finished runs: milestone rows (when the directory has milestones.csv), curves rows,
  // then runs rows (the commit point), each with one write() of whole lines followed by fsync.
  void append(const std::string& runs_lines, const std::string& curves_lines, const std::string& milestone_lines);

  // runs/<run_id>/ entries as they are on disk (temporaries included); none without runs/.
  std::vector<std::filesystem::path> saved_params() const;
  // Saves the parameters of `run_ids`: write(k, folder) fills runs/<run_ids[k]>.tmp, which then
  // replaces runs/<run_ids[k]>; runs/ is fsynced after the last one.
  void save_params(const std::vector<std::string>& run_ids,
                   const std::function<void(size_t, const std::filesystem::path&)>& write);
  void remove_params(const std::string& run_id);
  // Removes every saved run outside `keep` (best mode after a kill between saving a new best
  // and removing the old one).
  void keep_only_params(const std::set<std::string>& keep);
  // Checkpoints of runs in flight: checkpoints/<run_id>.ckpt (train.checkpoint_every), each
  // written atomically; removed once the run's rows are on disk.
  std::filesystem::path checkpoint_path(const std::string& run_id) const;
  bool has_checkpoint(const std::string& run_id) const;
  void save_checkpoint(const RunCheckpoint& checkpoint);
  void remove_checkpoint(const std::string& run_id);
  // Copies a saved run of another sweep directory into runs/ (merge).
  void copy_params_from(const std::filesystem::path& saved);

 private:
  void replace_table(const char* name, const std::string& text);
  void restart_tables_cut_in_header(const std::string& runs_header, const std::string& curves_header);
  void rewrite_damaged_tables(const SweepTables& t, const std::set<std::string>& done, const std::string& runs_header,
                              const std::string& curves_header);
  void remove_params_where(const std::function<bool(const std::string& name)>& stale);
  void remove_stale_checkpoints(const std::set<std::string>& done);

  std::filesystem::path dir_;
  int lock_fd_ = -1, runs_fd_ = -1, curves_fd_ = -1, milestones_fd_ = -1;
};

// SweepDir(dir).recover(...), without taking the lock.
std::set<std::string> recover_sweep_dir(const std::filesystem::path& dir, const std::vector<std::string>& axis_names,
                                        const std::map<std::string, RunExpectation>& expected, SaveParams save);

}  // namespace scb
