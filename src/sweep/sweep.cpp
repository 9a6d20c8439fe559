#include "scb/sweep/sweep.hpp"

#include <fcntl.h>
#include <omp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include <fmt/format.h>

#include "scb/core/output.hpp"
#include "scb/core/problem.hpp"
#include "scb/core/progress.hpp"
#include "scb/core/runpack.hpp"
#include "scb/core/trainer.hpp"
#include "scb/cpu/cpu_backend.hpp"
#include "scb/cuda/cuda_backend.hpp"
#include "scb/sweep/device.hpp"

namespace scb {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

constexpr const char* kManifestFormat = "scb-sweep/1";

json to_plain(const ordered_json& v) { return json::parse(v.dump()); }

bool file_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

void fsync_path(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void write_all(int fd, const std::string& text, const char* what) {
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(fmt::format("cannot write {}: {}", what, std::strerror(errno)));
    }
    p += n;
    left -= size_t(n);
  }
}

// Exclusive lock on a sweep directory for this process's lifetime.
int lock_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw ConfigError(fmt::format("--out {}: cannot open the directory ({})", dir.string(), std::strerror(errno)));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw ConfigError(fmt::format("--out {}: another scb sweep is writing to this directory", dir.string()));
  }
  return fd;
}

}  // namespace

void write_file_atomic(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot write {}: {}", tmp.string(), std::strerror(errno)));
  try {
    write_all(fd, text, tmp.c_str());
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::fsync(fd);
  ::close(fd);
  fs::rename(tmp, path);
  fsync_path(path.parent_path().empty() ? fs::path(".") : path.parent_path(), true);
}

std::set<std::string> recover_sweep_dir(const fs::path& dir, const std::vector<std::string>& axis_names,
                                        const std::set<std::string>& known) {
  const std::string runs_header = runs_csv_header(axis_names), curves_header = curves_csv_header();
  std::error_code ec;
  for (const char* name : {"runs.csv.tmp", "curves.csv.tmp", "manifest.json.tmp"}) fs::remove(dir / name, ec);

  // Files cut before their header was complete are started again.
  for (const auto& [name, header] : {std::pair<const char*, std::string>{"runs.csv", runs_header}, {"curves.csv", curves_header}}) {
    const std::string text = read_table_text(dir / name);
    if (text.find('\n') == std::string::npos) {
      if (!(header + "\n").starts_with(text))
        throw ConfigError(fmt::format("--resume: {} is not a runs table of this sweep; start a new --out", (dir / name).string()));
      write_file_atomic(dir / name, header + "\n");
    }
  }
  SweepTables t = read_sweep_tables(dir);
  if (t.runs_header != runs_header)
    throw ConfigError(fmt::format("--resume: {}: the header differs from this sweep's ({} vs {}); start a new --out",
                                  (dir / "runs.csv").string(), t.runs_header, runs_header));
  if (t.curves_header != curves_header)
    throw ConfigError(fmt::format("--resume: {}: unexpected header \"{}\"; start a new --out", (dir / "curves.csv").string(), t.curves_header));
  for (const std::string& id : t.run_ids)
    if (!known.count(id))
      throw ConfigError(fmt::format("--resume: {} holds run {}, which this sweep does not have; start a new --out",
                                    (dir / "runs.csv").string(), id));
  const std::set<std::string> done(t.run_ids.begin(), t.run_ids.end());
  // Rewrites are atomic: an interruption here leaves the old file, and the next resume repeats this.
  if (t.runs_partial_line || t.duplicate_rows > 0) {
    std::string text = runs_header + "\n";
    for (const std::string& id : t.run_ids) text += t.run_rows.at(id) + "\n";
    write_file_atomic(dir / "runs.csv", text);
  }
  if (t.curves_partial_line || t.dropped_curve_rows > 0 || t.duplicate_rows > 0) {
    std::string text = curves_header + "\n";
    for (const std::string& id : t.run_ids) {
      auto it = t.curve_rows.find(id);
      if (it != t.curve_rows.end())
        for (const std::string& line : it->second) text += line + "\n";
    }
    write_file_atomic(dir / "curves.csv", text);
  }
  // Parameters of runs that never completed, and half-written ones.
  if (fs::is_directory(dir / "runs", ec)) {
    std::vector<fs::path> stale;
    for (const auto& e : fs::directory_iterator(dir / "runs", ec)) {
      const std::string name = e.path().filename().string();
      if (name.ends_with(".tmp") || !done.count(name)) stale.push_back(e.path());
    }
    for (const fs::path& p : stale) fs::remove_all(p, ec);
  }
  return done;
}

SweepWriter::SweepWriter(const fs::path& dir) {
  runs_fd_ = ::open((dir / "runs.csv").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  curves_fd_ = ::open((dir / "curves.csv").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (runs_fd_ < 0 || curves_fd_ < 0) {
    if (runs_fd_ >= 0) ::close(runs_fd_);
    if (curves_fd_ >= 0) ::close(curves_fd_);
    throw std::runtime_error(fmt::format("cannot open {}/runs.csv and curves.csv for appending: {}", dir.string(), std::strerror(errno)));
  }
}

SweepWriter::~SweepWriter() {
  if (runs_fd_ >= 0) ::close(runs_fd_);
  if (curves_fd_ >= 0) ::close(curves_fd_);
}

void SweepWriter::append(const std::string& runs_lines, const std::string& curves_lines) {
  if (!curves_lines.empty()) {
    write_all(curves_fd_, curves_lines, "curves.csv");
    if (::fsync(curves_fd_) != 0) throw std::runtime_error(fmt::format("fsync curves.csv: {}", std::strerror(errno)));
  }
  if (!runs_lines.empty()) {
    write_all(runs_fd_, runs_lines, "runs.csv");
    if (::fsync(runs_fd_) != 0) throw std::runtime_error(fmt::format("fsync runs.csv: {}", std::strerror(errno)));
  }
}

// ---------------------------------------------------------------------------------------
// Running a sweep

namespace {

json manifest_json(const Sweep& s, const std::vector<size_t>& mine, const ShardSpec& shard, SaveParams save) {
  json m;
  m["format"] = kManifestFormat;
  m["sweep_file"] = s.file.string();
  m["sweep"] = to_plain(s.document);
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
  m["runs"] = runs;
  return m;
}

std::vector<std::string> manifest_run_ids(const json& m) {
  std::vector<std::string> ids;
  if (!m.contains("runs") || !m["runs"].is_array()) return ids;
  for (const json& r : m["runs"])
    if (r.contains("run_id") && r["run_id"].is_string()) ids.push_back(r["run_id"].get<std::string>());
  return ids;
}

}  // namespace

SweepSummary run_sweep(const SweepOptions& o) {
  // 1. Everything that can be wrong is checked before the output directory is touched.
  if (o.threads < 0) throw ConfigError("--threads: expected a positive integer (0 = all cores)");
  Sweep sw = load_sweep(o.sweep_file);
  const ShardSpec shard = o.shard_given ? o.shard : shard_from_environment();
  const std::vector<size_t> mine = shard_runs(sw.runs.size(), shard);
  const uint64_t budget = o.memory_budget ? o.memory_budget : default_memory_budget(o.device);
  std::vector<const Config*> cfgs;
  std::vector<std::string> names;
  for (size_t i : mine) {
    cfgs.push_back(&sw.runs[i].config);
    names.push_back(fmt::format("{} ({})", sw.runs[i].run_id, describe_point(sw, sw.runs[i])));
  }
  (void)plan_packs(cfgs, budget, o.max_pack_runs, names);  // refuses a run that cannot fit alone
  ProblemCache cache;
  validate_runs(sw, mine, cache);
  std::unique_ptr<Backend> backend = make_backend(o.device, o.threads);

  SaveParams save = o.save_params;
  const fs::path out = o.out;
  std::set<std::string> done;
  int lock_fd = -1;
  const std::set<std::string> known = [&] {
    std::set<std::string> k;
    for (size_t i : mine) k.insert(sw.runs[i].run_id);
    return k;
  }();
  std::error_code ec;
  const bool has_manifest = file_exists(out / "manifest.json");
  const int threads = o.threads > 0 ? o.threads : std::max(1, omp_get_max_threads());
  const bool cpu = backend->name() == "cpu";
  if (o.dry_run) {
    const ExecutionPlan e = plan_execution(cfgs, names, budget, o.max_pack_runs, cpu, threads);
    SweepSummary sum;
    sum.total = mine.size();
    sum.packs = e.packs.size();
    sum.workers = e.workers;
    sum.budget = budget;
    for (const PlannedPack& p : e.packs) sum.largest_pack_bytes = std::max(sum.largest_pack_bytes, p.bytes);
    return sum;
  }
  if (o.resume && has_manifest) {
    lock_fd = lock_dir(out);
    const json m = load_json_file(out / "manifest.json");
    std::vector<std::string> want;
    for (size_t i : mine) want.push_back(sw.runs[i].run_id);
    if (!m.contains("format") || m["format"] != kManifestFormat)
      throw ConfigError(fmt::format("--resume: {}: not a manifest of scb sweep", (out / "manifest.json").string()));
    const std::vector<std::string> have = manifest_run_ids(m);
    if (have != want) {
      size_t common = 0;
      const std::set<std::string> hs(have.begin(), have.end());
      for (const std::string& id : want) common += hs.count(id);
      throw ConfigError(fmt::format(
          "--resume: {} was written by a different sweep or shard ({} runs there, {} here, {} in common); use the same sweep "
          "file and --shard, or a new --out",
          out.string(), have.size(), want.size(), common));
    }
    if (!o.save_params_given && m.contains("save_params") && m["save_params"].is_string())
      save = parse_save_params(m["save_params"].get<std::string>());
    if (m.value("save_params", "") != to_string(save)) {
      json updated = m;
      updated["save_params"] = to_string(save);
      write_file_atomic(out / "manifest.json", updated.dump(1) + "\n");
    }
    done = recover_sweep_dir(out, sw.axis_names(), known);
  } else {
    if (o.resume && fs::exists(out, ec) && fs::is_directory(out, ec) && !fs::is_empty(out, ec))
      throw ConfigError(fmt::format("--resume: {} is not a sweep directory (no manifest.json) and is not empty", out.string()));
    prepare_output_dir(out);
    lock_fd = lock_dir(out);
    write_file_atomic(out / "manifest.json", manifest_json(sw, mine, shard, save).dump(1) + "\n");
    write_file_atomic(out / "runs.csv", runs_csv_header(sw.axis_names()) + "\n");
    write_file_atomic(out / "curves.csv", curves_csv_header() + "\n");
  }
  struct LockGuard {
    int fd;
    ~LockGuard() {
      if (fd >= 0) ::close(fd);
    }
  } lock_guard{lock_fd};

  // 2. The runs left to do, packed.
  std::vector<size_t> todo;
  for (size_t i : mine)
    if (!done.count(sw.runs[i].run_id)) todo.push_back(i);
  cfgs.clear();
  names.clear();
  for (size_t i : todo) {
    cfgs.push_back(&sw.runs[i].config);
    names.push_back(sw.runs[i].run_id);
  }

  std::map<std::string, std::string> algorithm_of;
  for (size_t i : mine) algorithm_of[sw.runs[i].run_id] = to_string(sw.runs[i].config.train.algorithm);
  std::map<std::string, BestRun> best;
  if (save == SaveParams::best) {
    const SweepTables t = read_sweep_tables(out);
    best = best_from_rows(t.runs_header, t.run_rows, algorithm_of);
    // A kill between saving a new best and removing the old one leaves both: keep the best.
    std::set<std::string> keep;
    for (const auto& [alg, b] : best) keep.insert(b.run_id);
    if (fs::is_directory(out / "runs", ec)) {
      std::vector<fs::path> extra;
      for (const auto& e : fs::directory_iterator(out / "runs", ec))
        if (!keep.count(e.path().filename().string())) extra.push_back(e.path());
      for (const fs::path& p : extra) fs::remove_all(p, ec);
    }
  }

  SweepSummary sum;
  sum.total = mine.size();
  sum.skipped = done.size();
  if (todo.empty()) return sum;

  // 3. Workers (see plan_execution).
  const ExecutionPlan exec = plan_execution(cfgs, names, budget, o.max_pack_runs, cpu, threads);
  const size_t workers = exec.workers;
  const std::vector<PlannedPack>& work = exec.packs;
  sum.packs = work.size();
  sum.workers = workers;
  std::vector<std::unique_ptr<Backend>> backends;
  if (workers == 1) {
    backends.push_back(std::move(backend));
  } else {
    for (size_t w = 0; w < workers; ++w) backends.push_back(make_cpu_backend(exec.backend_threads));
  }

  int64_t steps_todo = 0;
  for (size_t i : todo) steps_todo += sw.runs[i].config.train.steps;
  int64_t steps_before = 0, tokens_before = 0;
  std::vector<int64_t> live_steps(workers, 0), live_tokens(workers, 0);
  size_t runs_done = done.size();
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  ProgressLine line(!o.quiet && stderr_is_terminal());
  SweepWriter writer(out);
  std::mutex mu;  // guards the writer, the saved-parameter state, the counters and the line
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::exception_ptr failure;

  auto train_one_pack = [&](size_t w, const PlannedPack& plan) {
    Backend& be = *backends[w];
    RunPack pack;
    std::vector<size_t> run_of;  // pack index -> sweep run index
    {
      std::lock_guard<std::mutex> lock(mu);
      for (size_t k : plan.runs) {
        const size_t i = todo[k];
        pack.add_run(sw.runs[i].config, cache.get(sw.runs[i].config));
        run_of.push_back(i);
      }
    }
    std::vector<std::pair<size_t, RunResult>> pending;
    const auto pack_start = std::chrono::steady_clock::now();
    auto flush = [&] {
      if (pending.empty()) return;
      std::string rows, curves;
      std::map<std::string, BestRun> candidate;  // best pending run per algorithm
      std::map<std::string, size_t> candidate_at;
      size_t n_ok = 0, n_div = 0;
      for (size_t j = 0; j < pending.size(); ++j) {
        const auto& [r, res] = pending[j];
        const SweepRun& run = sw.runs[run_of[r]];
        rows += runs_csv_row(run, pack, r, res);
        curves += curves_csv_rows(run, res);
        if (res.status == RunStatus::diverged) ++n_div;
        else ++n_ok;
        if (save == SaveParams::best && res.status != RunStatus::diverged) {
          const std::string& alg = algorithm_of.at(run.run_id);
          BestRun& c = candidate[alg];
          if (c.better(res.final_metrics.dist_A_norm, run.run_id)) {
            c.run_id = run.run_id;
            c.value = res.final_metrics.dist_A_norm;
            candidate_at[alg] = j;
          }
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      std::vector<size_t> to_save;        // indexes into pending
      std::vector<std::string> old_best;  // removed once the new rows are on disk
      if (save == SaveParams::all)
        for (size_t j = 0; j < pending.size(); ++j) to_save.push_back(j);
      for (const auto& [alg, c] : candidate) {
        BestRun& b = best[alg];
        if (c.run_id.empty() || !b.better(c.value, c.run_id)) continue;
        to_save.push_back(candidate_at[alg]);
        if (!b.run_id.empty()) old_best.push_back(b.run_id);
        b = c;
      }
      if (!to_save.empty()) {
        be.download();
        fs::create_directories(out / "runs");
        RunTiming timing;
        timing.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - pack_start).count();
        timing.device = be.name();
        timing.threads = exec.backend_threads;
        for (size_t j : to_save) {
          const auto& [r, res] = pending[j];
          const SweepRun& run = sw.runs[run_of[r]];
          const fs::path tmp = out / "runs" / (run.run_id + ".tmp"), dst = out / "runs" / run.run_id;
          std::error_code e2;
          fs::remove_all(tmp, e2);
          fs::create_directories(tmp);
          write_run_outputs(tmp, run.config, pack, r, res, timing);
          fs::remove_all(dst, e2);
          fs::rename(tmp, dst);
        }
        fsync_path(out / "runs", true);
      }
      writer.append(rows, curves);
      for (const std::string& id : old_best) {
        std::error_code e2;
        fs::remove_all(out / "runs" / id, e2);
      }
      sum.ok += n_ok;
      sum.diverged += n_div;
      runs_done += pending.size();
      pending.clear();
    };
    auto finished = [&](size_t r, const RunResult& res) { pending.emplace_back(r, res); };
    auto progress = [&](const TrainProgress& p) {
      flush();
      if (!line.enabled()) return;
      std::lock_guard<std::mutex> lock(mu);
      live_steps[w] = p.steps_done;
      live_tokens[w] = p.sample_tokens;
      int64_t st = steps_before, tk = tokens_before;
      for (size_t v = 0; v < workers; ++v) st += live_steps[v], tk += live_tokens[v];
      const double t = elapsed();
      line.update(double(st) / double(std::max<int64_t>(1, steps_todo)),
                  fmt::format("runs {}/{}  {} sample-tokens/s", runs_done, mine.size(), format_rate(t > 0 ? double(tk) / t : 0)));
    };
    train_pack(pack, be, progress, finished);
    flush();
    std::lock_guard<std::mutex> lock(mu);
    for (size_t r = 0; r < pack.size(); ++r) {
      steps_before += pack.steps[r];
      tokens_before += pack.samples[r] * int64_t(pack.T);
    }
    live_steps[w] = live_tokens[w] = 0;
  };
  auto worker = [&](size_t w) {
    try {
      while (!stop.load()) {
        const size_t k = next.fetch_add(1);
        if (k >= work.size()) return;
        train_one_pack(w, work[k]);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!failure) failure = std::current_exception();
      stop = true;
    }
  };
  if (workers == 1) {
    worker(0);
  } else {
    std::vector<std::thread> pool;
    for (size_t w = 0; w < workers; ++w) pool.emplace_back(worker, w);
    for (std::thread& t : pool) t.join();
  }
  line.finish();
  if (failure) std::rethrow_exception(failure);
  sum.wall_seconds = elapsed();
  sum.sample_tokens = tokens_before;
  return sum;
}

// ---------------------------------------------------------------------------------------
// Merge

MergeSummary merge_sweep_dirs(const fs::path& out, const std::vector<fs::path>& dirs) {
  if (dirs.empty()) throw ConfigError("merge: give at least one sweep directory to merge");
  std::vector<json> manifests;
  std::set<fs::path> unique_dirs;
  for (const fs::path& d : dirs) {
    std::error_code ec;
    const fs::path canon = fs::weakly_canonical(d, ec);
    if (!unique_dirs.insert(ec ? d : canon).second)
      throw ConfigError(fmt::format("merge: {} is given twice", d.string()));
    if (!file_exists(d / "manifest.json"))
      throw ConfigError(fmt::format("merge: {} is not a sweep directory (no manifest.json)", d.string()));
    json m = load_json_file(d / "manifest.json");
    if (!m.is_object() || m.value("format", "") != kManifestFormat || !m.contains("sweep_id") || !m.contains("runs") ||
        !m.contains("total_runs") || !m.contains("axes"))
      throw ConfigError(fmt::format("merge: {}: not a manifest of scb sweep", (d / "manifest.json").string()));
    manifests.push_back(std::move(m));
  }
  const json& m0 = manifests[0];
  const std::string sweep_id = m0["sweep_id"].get<std::string>();
  for (size_t k = 1; k < dirs.size(); ++k)
    if (manifests[k]["sweep_id"] != sweep_id)
      throw ConfigError(fmt::format("merge: {} belongs to another sweep (sweep_id {}) than {} (sweep_id {})", dirs[k].string(),
                                    manifests[k]["sweep_id"].get<std::string>(), dirs[0].string(), sweep_id));
  std::vector<std::string> axis_names;
  for (const json& a : m0["axes"]) axis_names.push_back(a["name"].get<std::string>());
  const std::string runs_header = runs_csv_header(axis_names), curves_header = curves_csv_header();

  // Ownership: every run belongs to exactly one directory.
  std::map<size_t, json> run_entries;  // by sweep index
  std::map<std::string, size_t> owner;
  std::map<std::string, std::string> algorithm_of;
  for (size_t k = 0; k < dirs.size(); ++k)
    for (const json& r : manifests[k]["runs"]) {
      const std::string id = r["run_id"].get<std::string>();
      auto [it, fresh] = owner.emplace(id, k);
      if (!fresh)
        throw ConfigError(fmt::format("merge: run {} is in both {} and {} (overlapping shards); give each shard once", id,
                                      dirs[it->second].string(), dirs[k].string()));
      run_entries[r["index"].get<size_t>()] = r;
      algorithm_of[id] = r.value("algorithm", "");
    }
  const size_t total = m0["total_runs"].get<size_t>();
  if (owner.size() != total)
    throw ConfigError(fmt::format("merge: the directories hold {} of the sweep's {} runs; a shard is missing", owner.size(), total));

  std::vector<SweepTables> tables;
  for (size_t k = 0; k < dirs.size(); ++k) {
    SweepTables t = read_sweep_tables(dirs[k]);
    if (t.runs_header != runs_header)
      throw ConfigError(fmt::format("merge: {}: unexpected header", (dirs[k] / "runs.csv").string()));
    if (!t.curves_header.empty() && t.curves_header != curves_header)
      throw ConfigError(fmt::format("merge: {}: unexpected header", (dirs[k] / "curves.csv").string()));
    for (const std::string& id : t.run_ids) {
      auto it = owner.find(id);
      if (it == owner.end() || it->second != k)
        throw ConfigError(fmt::format("merge: {} holds run {}, which its manifest does not list", (dirs[k] / "runs.csv").string(), id));
    }
    tables.push_back(std::move(t));
  }

  prepare_output_dir(out);
  json m = m0;
  m["runs"] = json::array();
  for (const auto& [idx, r] : run_entries) m["runs"].push_back(r);
  m["shard"] = {{"index", 0}, {"count", 1}};
  json from = json::array();
  for (size_t k = 0; k < dirs.size(); ++k) {
    json e = {{"dir", fs::absolute(dirs[k]).lexically_normal().string()}};
    if (manifests[k].contains("shard")) e["shard"] = manifests[k]["shard"];
    from.push_back(e);
  }
  m["merged_from"] = from;
  bool best_mode = false;
  for (const json& mk : manifests) best_mode |= mk.value("save_params", "") == "best";
  if (best_mode) m["save_params"] = "best";

  std::string runs_text = runs_header + "\n", curves_text = curves_header + "\n";
  std::map<std::string, std::string> all_rows;
  MergeSummary sum;
  sum.dirs = dirs.size();
  sum.runs = total;
  for (const auto& [idx, r] : run_entries) {
    const std::string id = r["run_id"].get<std::string>();
    const SweepTables& t = tables[owner[id]];
    auto row = t.run_rows.find(id);
    if (row == t.run_rows.end()) continue;
    ++sum.complete;
    runs_text += row->second + "\n";
    all_rows[id] = row->second;
    auto c = t.curve_rows.find(id);
    if (c != t.curve_rows.end())
      for (const std::string& l : c->second) curves_text += l + "\n";
  }
  write_file_atomic(out / "manifest.json", m.dump(1) + "\n");
  write_file_atomic(out / "curves.csv", curves_text);
  write_file_atomic(out / "runs.csv", runs_text);

  // Saved parameters of complete runs (only the overall best per algorithm in best mode).
  std::set<std::string> keep;
  if (best_mode)
    for (const auto& [alg, b] : best_from_rows(runs_header, all_rows, algorithm_of)) keep.insert(b.run_id);
  std::error_code ec;
  for (size_t k = 0; k < dirs.size(); ++k) {
    if (!fs::is_directory(dirs[k] / "runs", ec)) continue;
    for (const auto& e : fs::directory_iterator(dirs[k] / "runs", ec)) {
      const std::string id = e.path().filename().string();
      if (!all_rows.count(id) || owner[id] != k || (best_mode && !keep.count(id))) continue;
      fs::create_directories(out / "runs");
      fs::copy(e.path(), out / "runs" / id, fs::copy_options::recursive);
    }
  }
  return sum;
}

}  // namespace scb
