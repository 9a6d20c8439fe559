// scb sweep / scb merge (issue 3): expansion, run ids, shards, the memory planner, crash-safe
// tables, resume after SIGKILL, merge, and refusal of bad sweep files.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "scb/sweep/sweep.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}

// Header first, then the rows sorted.
std::vector<std::string> sorted_table(const fs::path& p) {
  std::vector<std::string> l = lines_of(read_file(p));
  if (!l.empty()) std::sort(l.begin() + 1, l.end());
  return l;
}

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/scb_sweep_test_XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

struct Proc {
  int status = -1;  // exit status, or 128 + signal
  std::string out, err;
};

pid_t spawn(const std::vector<std::string>& args, const fs::path& out, const fs::path& err) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(SCB_BINARY));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(SCB_BINARY, argv.data());
    _exit(127);
  }
  return pid;
}

int wait_status(pid_t pid) {
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Proc run_scb(const std::vector<std::string>& args) {
  TempDir t;
  Proc p;
  p.status = wait_status(spawn(args, t.path / "out", t.path / "err"));
  p.out = read_file(t.path / "out");
  p.err = read_file(t.path / "err");
  return p;
}

const fs::path kSource = SCB_SOURCE_DIR;

ordered_json parse(const std::string& text) { return ordered_json::parse(text); }

std::string expand_error(const std::string& text) {
  try {
    (void)scb::expand_sweep(parse(text), kSource / "configs");
  } catch (const scb::ConfigError& e) {
    return e.what();
  }
  return "";
}

const char* kTiny = R"({"problem": {"N": 3, "T": 20, "Q": 2}, "train": {"steps": 300, "stage1_steps": 100, "batch_size": 8}, "eval": {"every": 100}})";

// ---------------------------------------------------------------------------------------

TEST(SweepExpand, GridTimesZipTimesReplicates) {
  const scb::Sweep s = scb::expand_sweep(parse(std::string(R"({"base": )") + kTiny + R"(,
      "grid": {"train.lambda": [0.001, 0.01], "train.batch_size": [4, 8, 16]},
      "zip": {"train.algorithm": ["sgd", "proximal"], "train.lr_A": [0.05, 0.1]},
      "replicates": 3})"),
                                         kSource);
  ASSERT_EQ(s.runs.size(), 2u * 3u * 2u * 3u);
  EXPECT_EQ(s.grid_points, 6u);
  EXPECT_EQ(s.zip_length, 2u);
  ASSERT_EQ(s.axis_names(), (std::vector<std::string>{"train.lambda", "train.batch_size", "train.algorithm", "train.lr_A"}));
  // Order: grid point (last axis fastest), then zip index, then replicate.
  size_t i = 0;
  const double lambdas[] = {0.001, 0.01};
  const uint32_t batches[] = {4, 8, 16};
  for (double lam : lambdas)
    for (uint32_t b : batches)
      for (int z = 0; z < 2; ++z)
        for (uint32_t rep = 0; rep < 3; ++rep, ++i) {
          const scb::SweepRun& r = s.runs[i];
          EXPECT_EQ(r.index, i);
          EXPECT_EQ(r.replicate, rep);
          EXPECT_DOUBLE_EQ(r.config.train.lambda, lam);
          EXPECT_EQ(r.config.train.batch_size, b);
          EXPECT_EQ(r.config.train.algorithm, z == 0 ? scb::Algorithm::sgd : scb::Algorithm::proximal);
          EXPECT_DOUBLE_EQ(r.config.train.lr_A, z == 0 ? 0.05 : 0.1);  // zip lists walked together
          EXPECT_EQ(r.config.train.seed, rep);                          // train.seed + replicate
          EXPECT_EQ(r.config.problem.T, 20u);                           // base kept
          EXPECT_EQ(r.axis_values[1], json(b));
        }
}

TEST(SweepExpand, ProblemAxesSeedOffsetsAndBasePath) {
  const scb::Sweep s = scb::expand_sweep(
      parse(R"({"base": "reference.json", "grid": {"problem.N": [3, 5], "problem.T": [50, 100], "train.seed": [10]}, "replicates": 2})"),
      kSource / "configs");
  ASSERT_EQ(s.runs.size(), 8u);
  EXPECT_EQ(s.runs[0].config.problem.N, 3u);
  EXPECT_EQ(s.runs[0].config.problem.T, 50u);
  EXPECT_EQ(s.runs[7].config.problem.N, 5u);
  EXPECT_EQ(s.runs[7].config.problem.T, 100u);
  EXPECT_EQ(s.runs[0].config.train.seed, 10u);
  EXPECT_EQ(s.runs[1].config.train.seed, 11u);
  EXPECT_EQ(s.runs[0].config.train.lr_A, 0.02);  // from configs/reference.json
  EXPECT_EQ(s.base_dir, kSource / "configs");
  // No grid or zip: one run per replicate.
  EXPECT_EQ(scb::expand_sweep(parse(R"({"base": "reference.json", "replicates": 4})"), kSource / "configs").runs.size(), 4u);
}

TEST(SweepExpand, BadSweepFilesNameTheKey) {
  const std::string base = std::string(R"({"base": )") + kTiny + ", ";
  std::string e = expand_error(base + R"("grid": {"train.lamda": [0.1]}})");
  EXPECT_NE(e.find("grid.train.lamda"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean train.lambda"), std::string::npos) << e;
  e = expand_error(base + R"("grid": {"train.lambda": []}})");
  EXPECT_NE(e.find("grid.train.lambda: expected a non-empty array"), std::string::npos) << e;
  e = expand_error(base + R"("grid": {"train.batch_size": [8, "big"]}})");
  EXPECT_NE(e.find("grid.train.batch_size[1]"), std::string::npos) << e;
  EXPECT_NE(e.find("integer"), std::string::npos) << e;
  e = expand_error(base + R"("grid": {"train.lambda": [-1]}})");
  EXPECT_NE(e.find("grid.train.lambda[0]"), std::string::npos) << e;
  e = expand_error(base + R"("zip": {"train.lambda": [0.1, 0.2], "train.lr_A": [0.1]}})");
  EXPECT_NE(e.find("zip.train.lr_A"), std::string::npos) << e;
  e = expand_error(base + R"("grid": {"train.lambda": [0.1, 0.1]}})");
  EXPECT_NE(e.find("same resolved config"), std::string::npos) << e;
  e = expand_error(base + R"("grid": {"train.lambda": [0.1]}, "zip": {"train.lambda": [0.2]}})");
  EXPECT_NE(e.find("zip.train.lambda"), std::string::npos) << e;
  e = expand_error(base + R"("replicates": 0})");
  EXPECT_NE(e.find("replicates"), std::string::npos) << e;
  e = expand_error(base + R"("gird": {}})");
  EXPECT_NE(e.find("gird: unknown key"), std::string::npos) << e;
  e = expand_error(R"({"base": {"train": {"lamda": 1}}})");
  EXPECT_NE(e.find("base: train.lamda"), std::string::npos) << e;
  // Valid only together with another axis: accepted in a zip, refused in a grid (naming the value and run).
  EXPECT_EQ(expand_error(base + R"("zip": {"train.algorithm": ["sgd", "population"], "train.noise": [0, 0.1]}})"), "");
  e = expand_error(base + R"("grid": {"train.algorithm": ["sgd", "population"], "train.noise": [0, 0.1]}})");
  EXPECT_NE(e.find("grid.train.noise[1]"), std::string::npos) << e;
  EXPECT_NE(e.find("(run 1: train.algorithm=sgd, train.noise=0.1)"), std::string::npos) << e;
  // Inconsistent through a key that is not an axis: reported against the run.
  e = expand_error(base + R"("grid": {"problem.T": [20, 1]}})");
  EXPECT_NE(e.find("run 1 (problem.T=1)"), std::string::npos) << e;
  EXPECT_NE(e.find("problem.Q"), std::string::npos) << e;
}

TEST(SweepRunId, StableAndDistinct) {
  const std::string text = std::string(R"({"base": )") + kTiny +
                           R"(, "grid": {"train.lambda": [0.001, 0.01, 1], "train.batch_size": [4, 8]}, "replicates": 3})";
  const scb::Sweep a = scb::expand_sweep(parse(text), kSource), b = scb::expand_sweep(parse(text), kSource);
  std::set<std::string> ids;
  for (size_t i = 0; i < a.runs.size(); ++i) {
    EXPECT_EQ(a.runs[i].run_id, b.runs[i].run_id);
    EXPECT_EQ(a.runs[i].run_id.size(), 16u);
    EXPECT_EQ(a.runs[i].run_id.find_first_not_of("0123456789abcdef"), std::string::npos);
    ids.insert(a.runs[i].run_id);
  }
  EXPECT_EQ(ids.size(), a.runs.size());
  EXPECT_EQ(a.sweep_id, b.sweep_id);
  // Known values: the id is a function of the resolved config only.
  EXPECT_EQ(a.runs[0].run_id, scb::run_id_of(a.resolved_config(a.runs[0])));
  // 1 and 1.0 are the same value; another base config gives other ids.
  std::string text2 = text;
  text2.replace(text2.find("0.01, 1]"), 8, "0.01, 1.0]");
  const scb::Sweep c = scb::expand_sweep(parse(text2), kSource);
  for (size_t i = 0; i < a.runs.size(); ++i) EXPECT_EQ(a.runs[i].run_id, c.runs[i].run_id);
  std::string text3 = text;
  text3.replace(text3.find("\"steps\": 300"), 12, "\"steps\": 301");
  const scb::Sweep d = scb::expand_sweep(parse(text3), kSource);
  for (size_t i = 0; i < a.runs.size(); ++i) EXPECT_EQ(ids.count(d.runs[i].run_id), 0u);
  EXPECT_NE(a.sweep_id, d.sweep_id);
  // Defaults spelled out or left implicit: the same run.
  const json r0 = a.resolved_config(a.runs[0]);
  EXPECT_EQ(scb::run_id_of(r0), scb::run_id_of(scb::resolve_config(r0, kSource).resolved));
}

TEST(SweepShard, PartitionIsDisjointAndComplete) {
  for (size_t total : {0u, 1u, 7u, 100u, 1001u})
    for (uint32_t n : {1u, 2u, 3u, 7u, 16u}) {
      std::vector<int> seen(total, 0);
      for (uint32_t i = 0; i < n; ++i)
        for (size_t r : scb::shard_runs(total, scb::ShardSpec{i, n})) {
          ASSERT_LT(r, total);
          ++seen[r];
        }
      for (size_t r = 0; r < total; ++r) EXPECT_EQ(seen[r], 1) << "run " << r << " of " << total << " in " << n << " shards";
    }
  const scb::ShardSpec s = scb::parse_shard("2/5");
  EXPECT_EQ(s.index, 2u);
  EXPECT_EQ(s.count, 5u);
  for (const char* bad : {"5/5", "1/0", "a/2", "1", "/2", "1/", "-1/2", "1/2/3"})
    EXPECT_THROW(scb::parse_shard(bad), scb::ConfigError) << bad;
  setenv("SLURM_ARRAY_TASK_ID", "13", 1);
  setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
  setenv("SLURM_ARRAY_TASK_MIN", "10", 1);
  const scb::ShardSpec e = scb::shard_from_environment();
  EXPECT_EQ(e.index, 3u);
  EXPECT_EQ(e.count, 4u);
  setenv("SLURM_ARRAY_TASK_ID", "14", 1);
  EXPECT_THROW(scb::shard_from_environment(), scb::ConfigError);
  unsetenv("SLURM_ARRAY_TASK_ID");
  unsetenv("SLURM_ARRAY_TASK_COUNT");
  unsetenv("SLURM_ARRAY_TASK_MIN");
  EXPECT_EQ(scb::shard_from_environment().count, 1u);
}

TEST(SweepPlanner, PacksRespectBudgetAndShape) {
  const scb::Sweep s = scb::expand_sweep(
      parse(std::string(R"({"base": )") + kTiny +
            R"(, "grid": {"problem.T": [20, 400], "train.batch_size": [4, 64], "train.algorithm": ["sgd", "proximal"]}, "replicates": 5})"),
      kSource);
  std::vector<const scb::Config*> cfgs;
  uint64_t largest = 0, sum = 0;
  for (const scb::SweepRun& r : s.runs) {
    cfgs.push_back(&r.config);
    largest = std::max(largest, scb::run_footprint(r.config).total());
    sum += scb::run_footprint(r.config).total();
  }
  for (uint64_t budget : {largest, largest * 3, sum * 2}) {
    for (size_t cap : {size_t(0), size_t(3)}) {
      const std::vector<scb::PlannedPack> packs = scb::plan_packs(cfgs, budget, cap);
      std::vector<int> seen(cfgs.size(), 0);
      for (const scb::PlannedPack& p : packs) {
        ASSERT_FALSE(p.runs.empty());
        EXPECT_LE(p.bytes, budget);
        if (cap) EXPECT_LE(p.runs.size(), cap);
        uint64_t bytes = 0;
        std::set<std::string> problems;
        for (size_t r : p.runs) {
          ++seen[r];
          EXPECT_TRUE(scb::same_pack_shape(*cfgs[r], *cfgs[p.runs[0]]));
          const scb::RunFootprint f = scb::run_footprint(*cfgs[r]);
          bytes += f.parameters + f.scratch + (problems.insert(scb::problem_key(*cfgs[r])).second ? f.problem : 0);
        }
        EXPECT_EQ(bytes, p.bytes);  // each distinct problem counted once
      }
      for (int n : seen) EXPECT_EQ(n, 1);
      if (budget == sum * 2 && cap == 0) EXPECT_EQ(packs.size(), 4u);  // one pack per shape
    }
  }
  // A run that cannot fit alone is refused, naming the option and the run.
  try {
    (void)scb::plan_packs(cfgs, largest - 1, 0, std::vector<std::string>(cfgs.size(), "RUNNAME"));
    FAIL() << "expected a ConfigError";
  } catch (const scb::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--memory-budget"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("RUNNAME"), std::string::npos);
  }
  EXPECT_EQ(scb::parse_byte_size("8G"), 8ull << 30);
  EXPECT_EQ(scb::parse_byte_size("512M"), 512ull << 20);
  EXPECT_EQ(scb::parse_byte_size("1.5GiB"), 3ull << 29);
  EXPECT_EQ(scb::parse_byte_size("1000"), 1000u);
  for (const char* bad : {"", "G", "-1G", "8X", "0", "abc"}) EXPECT_THROW(scb::parse_byte_size(bad), scb::ConfigError) << bad;
}

// A runs.csv row of run `id` with `steps` steps (the other metrics are placeholders).
std::string run_row(const std::string& id, const std::string& lambda, int steps) {
  return fmt::format("{},{},0,ok,,{},{},1,1,1,1,1,1,3,{},1", id, lambda, steps, steps * 16, steps);
}

TEST(SweepTables, RecoveryCutsPartialLinesAndIncompleteRuns) {
  TempDir t;
  const std::vector<std::string> axes = {"train.lambda"};
  const std::string rh = scb::runs_csv_header(axes), ch = scb::curves_csv_header();
  using Expect = std::map<std::string, scb::RunExpectation>;
  const Expect every = {{"aaaa", {10, 4}}, {"bbbb", {10, 4}}, {"cccc", {10, 4}}, {"dddd", {10, 4}}};
  const std::string a = run_row("aaaa", "0.1", 10), b = run_row("bbbb", "0.2", 10);
  write_file(t.path / "runs.csv", rh + "\n" + a + "\n" + b + "\n" + run_row("cccc", "0.3", 10).substr(0, 12));
  write_file(t.path / "curves.csv", ch + "\naaaa,0,1\naaaa,10,2\nbbbb,0,1\ncccc,0,1\nbbbb,10,2\naaaa,10,2\ncccc,10,");
  fs::create_directories(t.path / "runs" / "aaaa");
  fs::create_directories(t.path / "runs" / "cccc");
  fs::create_directories(t.path / "runs" / "bbbb.tmp");
  const std::set<std::string> done = scb::recover_sweep_dir(t.path, axes, every, scb::SaveParams::none);
  EXPECT_EQ(done, (std::set<std::string>{"aaaa", "bbbb"}));
  EXPECT_EQ(read_file(t.path / "runs.csv"), rh + "\n" + a + "\n" + b + "\n");
  EXPECT_EQ(read_file(t.path / "curves.csv"), ch + "\naaaa,0,1\naaaa,10,2\nbbbb,0,1\nbbbb,10,2\n");
  EXPECT_FALSE(fs::exists(t.path / "runs" / "aaaa"));  // an empty saved folder is a damaged one
  EXPECT_FALSE(fs::exists(t.path / "runs" / "cccc"));
  EXPECT_FALSE(fs::exists(t.path / "runs" / "bbbb.tmp"));
  // Idempotent, and rows of runs the sweep does not have are refused.
  EXPECT_EQ(scb::recover_sweep_dir(t.path, axes, Expect{{"aaaa", {10, 4}}, {"bbbb", {10, 4}}}, scb::SaveParams::none), done);
  EXPECT_THROW(scb::recover_sweep_dir(t.path, axes, Expect{{"aaaa", {10, 4}}}, scb::SaveParams::none), scb::ConfigError);
  // A run whose curve lost a row, or its last rows, is incomplete and its row is dropped.
  write_file(t.path / "curves.csv", ch + "\naaaa,0,1\nbbbb,0,1\nbbbb,10,2\n");
  EXPECT_EQ(scb::recover_sweep_dir(t.path, axes, every, scb::SaveParams::none), (std::set<std::string>{"bbbb"}));
  EXPECT_EQ(read_file(t.path / "runs.csv"), rh + "\n" + b + "\n");
  // With --save-params all a run without its saved folder is incomplete too.
  EXPECT_TRUE(scb::recover_sweep_dir(t.path, axes, every, scb::SaveParams::all).empty());
  // A file cut inside its header starts again.
  write_file(t.path / "runs.csv", rh.substr(0, 10));
  EXPECT_TRUE(scb::recover_sweep_dir(t.path, axes, Expect{{"aaaa", {10, 4}}}, scb::SaveParams::none).empty());
  EXPECT_EQ(read_file(t.path / "runs.csv"), rh + "\n");
  // CSV quoting round trip.
  const json v = json::array({1, 2});
  EXPECT_EQ(scb::csv_field(v), "\"[1,2]\"");
  EXPECT_EQ(scb::split_csv_line("a,\"[1,2]\",\"x\"\"y\",").size(), 4u);
  EXPECT_EQ(scb::split_csv_line("a,\"[1,2]\",\"x\"\"y\",")[2], "x\"y");
}

// ---------------------------------------------------------------------------------------
// Through the binary

TEST(SweepCli, BadSweepFileRefusedBeforeAnyOutput) {
  TempDir t;
  const std::map<std::string, std::string> cases = {
      {"grid.train.lamda", R"({"base": "CFG", "grid": {"train.lamda": [0.1]}})"},
      {"grid.train.lambda", R"({"base": "CFG", "grid": {"train.lambda": []}})"},
      {"grid.train.batch_size[0]", R"({"base": "CFG", "grid": {"train.batch_size": [true]}})"},
      {"zip.train.lr_A", R"({"base": "CFG", "zip": {"train.lambda": [0.1, 0.2], "train.lr_A": [1]}})"},
      {"problem.P", R"({"base": "CFG", "grid": {"problem.P": [[[0.5, 0.5], [0.2, 0.2]]], "problem.N": [2]}})"},
  };
  for (const auto& [key, text] : cases) {
    std::string doc = text;
    doc.replace(doc.find("CFG"), 3, (kSource / "configs" / "reference.json").string());
    write_file(t.path / "bad.json", doc);
    const fs::path out = t.path / "out";
    const Proc p = run_scb({"sweep", (t.path / "bad.json").string(), "--out", out.string()});
    EXPECT_EQ(p.status, 2) << key << ": " << p.err;
    EXPECT_EQ(std::count(p.err.begin(), p.err.end(), '\n'), 1) << p.err;
    EXPECT_NE(p.err.find(key), std::string::npos) << key << ": " << p.err;
    EXPECT_FALSE(fs::exists(out)) << key;
  }
  // A run that cannot fit the memory budget: refused before any work.
  const Proc p = run_scb({"sweep", (kSource / "configs" / "sweep_resume_test.json").string(), "--out",
                          (t.path / "out").string(), "--memory-budget", "1K"});
  EXPECT_EQ(p.status, 2) << p.err;
  EXPECT_NE(p.err.find("--memory-budget"), std::string::npos) << p.err;
  EXPECT_FALSE(fs::exists(t.path / "out"));
}

// The sweep of ~120 tiny runs (a quarter diverge: train.lr_A = 50) killed with SIGKILL part-way
// and resumed ends with exactly the tables of an uninterrupted sweep.
TEST(SweepResume, SigkillThenResumeMatchesUninterrupted) {
  TempDir t;
  const std::string sweep = (kSource / "configs" / "sweep_resume_test.json").string();
  const fs::path ref = t.path / "ref", out = t.path / "out";
  // Reference: one worker, large packs.
  Proc p = run_scb({"sweep", sweep, "--out", ref.string(), "--threads", "1", "--quiet"});
  ASSERT_EQ(p.status, 0) << p.err;

  // Interrupted: small packs on two workers, killed once some rows exist.
  bool killed = false;
  for (int attempt = 0; attempt < 3 && !killed; ++attempt) {
    std::error_code ec;
    fs::remove_all(out, ec);
    const pid_t pid = spawn({"sweep", sweep, "--out", out.string(), "--pack-runs", "4", "--threads", "2"}, t.path / "o", t.path / "e");
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      const size_t rows = lines_of(read_file(out / "runs.csv")).size();
      if (rows >= 1 + 20 + 8 * attempt) {
        kill(pid, SIGKILL);
        killed = wait_status(pid) == 128 + SIGKILL;
        break;
      }
      int st = 0;
      if (waitpid(pid, &st, WNOHANG) == pid) break;  // finished before the kill: try again
      if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(60)) {
        kill(pid, SIGKILL);
        wait_status(pid);
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }
  ASSERT_TRUE(killed) << "the sweep finished before it could be killed";
  const std::string at_kill = read_file(out / "runs.csv");
  const size_t rows_at_kill = size_t(std::count(at_kill.begin(), at_kill.end(), '\n')) - 1;  // complete rows
  EXPECT_LT(rows_at_kill, 120u);

  // Without --resume the directory is refused; with another sweep file too.
  p = run_scb({"sweep", sweep, "--out", out.string()});
  EXPECT_EQ(p.status, 2);
  EXPECT_NE(p.err.find("not empty"), std::string::npos) << p.err;
  write_file(t.path / "other.json", R"({"base": {"problem": {"N": 3, "T": 20, "Q": 2}, "train": {"steps": 10}}, "replicates": 2})");
  p = run_scb({"sweep", (t.path / "other.json").string(), "--out", out.string(), "--resume"});
  EXPECT_EQ(p.status, 2);
  EXPECT_NE(p.err.find("different sweep"), std::string::npos) << p.err;

  // Resume: only the missing runs are trained.
  p = run_scb({"sweep", sweep, "--out", out.string(), "--resume", "--quiet"});
  ASSERT_EQ(p.status, 0) << p.err;
  EXPECT_NE(p.out.find(std::to_string(rows_at_kill) + " already complete"), std::string::npos) << p.out;

  const std::vector<std::string> a = sorted_table(ref / "runs.csv"), b = sorted_table(out / "runs.csv");
  ASSERT_EQ(a.size(), 121u);
  EXPECT_EQ(a, b);
  EXPECT_EQ(sorted_table(ref / "curves.csv"), sorted_table(out / "curves.csv"));
  std::set<std::string> ids;
  size_t diverged = 0;
  const std::vector<std::string> header = scb::split_csv_line(a[0]);
  const size_t c_status = std::find(header.begin(), header.end(), "status") - header.begin();
  const size_t c_lr = std::find(header.begin(), header.end(), "train.lr_A") - header.begin();
  const size_t c_dstep = std::find(header.begin(), header.end(), "diverged_step") - header.begin();
  for (size_t i = 1; i < b.size(); ++i) {
    const std::vector<std::string> f = scb::split_csv_line(b[i]);
    EXPECT_TRUE(ids.insert(f[0]).second) << "duplicate run " << f[0];
    if (f[c_lr] == "50") {
      EXPECT_EQ(f[c_status], "diverged") << b[i];
      EXPECT_FALSE(f[c_dstep].empty());
      ++diverged;
    } else {
      EXPECT_EQ(f[c_status], "ok") << b[i];
      EXPECT_TRUE(f[c_dstep].empty());
    }
  }
  EXPECT_EQ(diverged, 30u);
  // Resuming a complete sweep trains nothing.
  p = run_scb({"sweep", sweep, "--out", out.string(), "--resume", "--quiet"});
  ASSERT_EQ(p.status, 0) << p.err;
  EXPECT_NE(p.out.find("0 trained"), std::string::npos) << p.out;
  EXPECT_EQ(sorted_table(out / "runs.csv"), a);
}

TEST(SweepMerge, ShardsMergeIntoTheWholeSweep) {
  TempDir t;
  write_file(t.path / "s.json", std::string(R"({"base": )") + kTiny +
                                    R"(, "grid": {"train.lambda": [0.001, 0.01], "train.algorithm": ["sgd", "proximal"]}, "replicates": 3})");
  const std::string sweep = (t.path / "s.json").string();
  ASSERT_EQ(run_scb({"sweep", sweep, "--out", (t.path / "all").string(), "-q"}).status, 0);
  std::vector<std::string> shard_dirs;
  for (int i = 0; i < 3; ++i) {
    shard_dirs.push_back((t.path / ("shard" + std::to_string(i))).string());
    const Proc p = run_scb({"sweep", sweep, "--out", shard_dirs.back(), "--shard", std::to_string(i) + "/3", "-q"});
    ASSERT_EQ(p.status, 0) << p.err;
    EXPECT_EQ(lines_of(read_file(fs::path(shard_dirs.back()) / "runs.csv")).size(), 1u + 4u);  // 12 runs / 3
  }
  const std::string merged = (t.path / "merged").string();
  Proc p = run_scb({"merge", merged, shard_dirs[2], shard_dirs[0], shard_dirs[1]});
  ASSERT_EQ(p.status, 0) << p.err;
  EXPECT_EQ(sorted_table(t.path / "all" / "runs.csv"), sorted_table(fs::path(merged) / "runs.csv"));
  EXPECT_EQ(sorted_table(t.path / "all" / "curves.csv"), sorted_table(fs::path(merged) / "curves.csv"));
  // The merged directory is the whole sweep: resuming it trains nothing.
  p = run_scb({"sweep", sweep, "--out", merged, "--resume", "-q"});
  EXPECT_EQ(p.status, 0) << p.err;
  EXPECT_NE(p.out.find("12 already complete"), std::string::npos) << p.out;
  // Best parameters per algorithm: the same runs as in the unsharded sweep.
  std::set<std::string> a, b;
  for (const auto& e : fs::directory_iterator(t.path / "all" / "runs")) a.insert(e.path().filename().string());
  for (const auto& e : fs::directory_iterator(fs::path(merged) / "runs")) b.insert(e.path().filename().string());
  EXPECT_EQ(a.size(), 2u);
  EXPECT_EQ(a, b);
  EXPECT_TRUE(fs::exists(t.path / "all" / "runs" / *a.begin() / "A.npy"));

  // Overlaps, duplicates, missing shards and foreign sweeps are refused, and nothing is written.
  const std::string bad = (t.path / "bad").string();
  p = run_scb({"merge", bad, shard_dirs[0], shard_dirs[0], shard_dirs[1], shard_dirs[2]});
  EXPECT_EQ(p.status, 2);
  EXPECT_NE(p.err.find("given twice"), std::string::npos) << p.err;
  p = run_scb({"merge", bad, shard_dirs[0], shard_dirs[1], shard_dirs[2], (t.path / "all").string()});
  EXPECT_EQ(p.status, 2);
  EXPECT_NE(p.err.find("overlapping"), std::string::npos) << p.err;
  p = run_scb({"merge", bad, shard_dirs[0], shard_dirs[1]});
  EXPECT_EQ(p.status, 2);
  EXPECT_NE(p.err.find("missing"), std::string::npos) << p.err;
  write_file(t.path / "s2.json", std::string(R"({"base": )") + kTiny + R"(, "replicates": 2})");
  ASSERT_EQ(run_scb({"sweep", (t.path / "s2.json").string(), "--out", (t.path / "other").string(), "-q"}).status, 0);
  p = run_scb({"merge", bad, shard_dirs[0], (t.path / "other").string()});
  EXPECT_EQ(p.status, 2);
  EXPECT_NE(p.err.find("another sweep"), std::string::npos) << p.err;
  EXPECT_FALSE(fs::exists(bad));
  // A non-empty output directory is refused.
  p = run_scb({"merge", shard_dirs[1], shard_dirs[0]});
  EXPECT_EQ(p.status, 2);
}

}  // namespace
