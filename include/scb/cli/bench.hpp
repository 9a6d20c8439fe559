#pragma once
// The parts of `scb bench`, one file each, in the order src/cli/cmd_bench.cpp runs them: the plan
// (options -> case grid), the token-drawing limit, timing the engine on a backend, the PyTorch
// peer, the report (table and JSON), then the sections that reuse them: whole sweeps
// (bench_sweep.cpp) and the contention case (bench_contention.cpp). This header is only what those files hand each other;
// nothing outside the bench uses it.
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scb/core/backend.hpp"
#include "scb/core/config.hpp"
#include "scb/core/problem.hpp"
#include "scb/core/runpack.hpp"

namespace scb::bench {

using nlohmann::json;

struct BenchArgs {
  std::vector<std::string> N{"3", "20", "100", "500"};
  std::vector<std::string> T{"1000", "10000", "100000"};
  std::vector<std::string> B{"64", "256"};
  std::vector<std::string> pack{"1", "100", "1000"};
  std::vector<std::string> threads{"0"};
  int64_t steps = 0;            // steps per repetition (0: from --seconds)
  double seconds = 1.0;         // timed seconds per configuration (split over the repetitions)
  int reps = 5;
  double max_step_seconds = 5.0;
  std::string memory_cap;       // bytes, "4G", ...; empty: half the available memory
  std::string device = "cpu";
  std::string stage = "proximal";
  std::string json_path;
  bool append = false;          // add to an existing --json file instead of replacing it
  bool peer = false;
  std::string peer_python = "/usr/bin/python3";
  std::string peer_script;
  bool quiet = false;
  bool grid = true;                                // the N x T x B x pack grid (--no-grid: off)
  bool sweeps = false;                             // --sweeps: whole sweeps beside the peer's --runs
  std::vector<std::string> sweep_runs{"100", "1000"};
  std::vector<std::string> sweep_N{"3", "20"};
  std::vector<std::string> sweep_T{"100", "1000"};
  bool contention = false;                         // --contention: default vs one thread beside a busy process
  bool memory_pass = false;                        // --memory-pass: each step beside one pass over A's bytes
};

// ---- bench_plan.cpp: the options checked and resolved, the grid of cases ----

struct BenchPlan {
  std::vector<uint64_t> Ns, Ts, Bs, packs, thread_list;  // thread_list: 0 = all threads
  std::vector<uint64_t> sweep_runs, sweep_Ns, sweep_Ts;
  Device device = Device::cpu;                           // never auto_select
  uint64_t memory_cap = 0;                               // bytes
  int all_threads = 1;                                   // omp_get_max_threads()
};

// One configuration of the grid: R runs of N, T, B trained by `threads` threads (`request` is
// what the backend is given: 0, the default, lets it use fewer threads where that is faster).
struct BenchCase {
  uint64_t N = 0, T = 0, B = 0, R = 0;
  int threads = 1;
  int request = 1;
};

// Throws ConfigError naming the option at fault.
BenchPlan resolve_plan(const BenchArgs& args);
// Every combination, N outermost, then T, B, pack size and thread count.
std::vector<BenchCase> case_grid(const BenchPlan& plan);
// lambda < 0: 0.5 / T.
Config bench_config(uint64_t N, uint64_t T, uint64_t B, uint64_t seed, const std::string& stage, double lambda = -1);
const char* device_name(Device device);
// Records the case's bytes in `rec`; the reason the case does not fit in memory, or "".
std::string memory_skip(const BenchCase& c, const BenchArgs& args, const BenchPlan& plan, json& rec);

// ---- bench_limit.cpp: clocks and the token-drawing limit ----

double seconds_since(std::chrono::steady_clock::time_point t0);
double process_cpu_seconds();
double median(std::vector<double> v);

// Every limit measurement of one case (sample-tokens per second).
struct LimitSamples {
  std::vector<double> one_thread, all_threads;  // per wall second
  std::vector<double> one_thread_cpu;           // single thread, per CPU second of the process
};

// Measures the limit on single and all threads; one draw counter runs across all cases so no
// two measurements draw the same tokens.
class LimitMeter {
 public:
  LimitMeter(const BenchArgs& args, int all_threads);
  void sample(const Problem& problem, uint64_t T, LimitSamples& into);

 private:
  double budget_;  // seconds per measurement
  int all_threads_;
  uint32_t round_ = 0;
};

// Records the predicted step time in `rec`; the reason the case would be too slow, or "".
std::string predicted_skip(const BenchCase& c, const BenchArgs& args, const LimitSamples& limit, json& rec);

// Median wall seconds of `reps` read+write passes (a[i] = a[i] * c) over `floats` floats on
// `threads` threads, each its own contiguous share: the memory traffic of one pass over A, the
// floor of a proximal step at large N (STREAM's "scale" on the same bytes; first-touched by the
// threads that stream it).
double memory_pass_seconds(uint64_t floats, int threads, int reps);

// ---- bench_engine.cpp: timing one case on a backend ----

struct EngineFigures {
  std::string backend;
  int reps = 0;
  int64_t steps_per_rep = 0;
  std::vector<double> step_seconds, cpu_seconds_per_step;  // per repetition
  std::string capped;  // why the repetitions were cut to one step, or ""
  int diverged = 0;    // runs of the pack that diverged (the figure is then invalid)
  LimitSamples limit;
  // Medians and rates derived from the above by summarise().
  double tokens = 0;  // sample-tokens per step
  double step_s = 0, tokens_per_s = 0, tokens_per_cpu_s = 0, limit_1thread = 0, limit_all = 0;
  double memory_pass_s = 0;  // --memory-pass: one pass over the pack's A on all cores (0: not measured)
  void summarise(const BenchCase& c);
};

// The pack of the case's runs attached to a fresh backend.
class CaseEngine {
 public:
  // Throws what building the pack or attaching it throws.
  void attach(const BenchCase& c, const BenchArgs& args, Device device, std::shared_ptr<const Problem> problem);
  // The given runs (all of one problem) on a backend given `threads`.
  void attach_configs(const std::vector<Config>& cfgs, Device device, std::shared_ptr<const Problem> problem,
                      int threads);
  // Warm-up, then the repetitions with a limit measurement between them (`limit` holds the
  // measurement taken before). Errors of a step propagate.
  EngineFigures time(const BenchCase& c, const BenchArgs& args, const Problem& problem, LimitMeter& meter,
                     LimitSamples limit);
  // Frees the pack and the backend, before the peer needs the memory.
  void release();
  // Wall seconds per step of K steps (for interleaving engines; no limit measurement).
  double step_seconds(int64_t K);

 private:
  double timed_steps(int64_t K, std::vector<double>& cpu_per_step);
  RunPack pack_;
  std::unique_ptr<Backend> backend_;  // declared after pack_: destroyed first
  bool sync_ = false;                 // a device backend's steps are asynchronous
};

// ---- bench_peer.cpp: the PyTorch peer and other commands ----

struct PeerInfo {
  bool available = false;
  std::string version, script, message;
};

std::string shell_quote(const std::string& s);
// Runs a command and returns its stdout (exit status in `rc`).
std::string capture(const std::string& command, int& rc);
PeerInfo probe_peer(const BenchArgs& args);
// Runs the peer on the case and records it in `rec`; the table's peer columns.
std::string add_peer_figures(const BenchArgs& args, const PeerInfo& peer, const BenchCase& c,
                             const EngineFigures& fig, uint64_t memory_cap, json& rec);

// Runs the peer's sweep mode (--runs R) on R runs of N, T (B = 64); its JSON line, or an error.
json run_sweep_peer(const BenchArgs& args, const PeerInfo& peer, uint64_t N, uint64_t T, uint64_t R,
                    uint64_t memory_cap);

// ---- bench_report.cpp: the table on stdout and the JSON document ----

std::array<double, 3> load_average();
std::string rate(double x);

class BenchReport {
 public:
  // The machine, build, settings and peer of this run.
  BenchReport(const BenchArgs& args, const BenchPlan& plan, const PeerInfo& peer);
  // This run added to the runs (with --append, after those of the existing file). False, after a
  // message, when that file is unreadable.
  bool begin_run();
  void print_table_head() const;
  // The record of a case, to be completed by the parts and handed to one of the three below.
  json case_record(const BenchCase& c) const;
  void skipped(const BenchCase& c, json rec, const std::string& reason);
  void failed(const BenchCase& c, json rec, const std::string& reason);
  void measured(const BenchCase& c, json rec, const EngineFigures& fig, const std::string& peer_cols,
                const std::array<double, 3>& load_start);
  // The engine's and the limit's figures into `rec` (and a warning when runs diverged).
  void engine_figures(const BenchCase& c, const EngineFigures& fig, json& rec) const;
  void finish();
  // A record of a section (sweeps, contention) added under that key, saved at once.
  void add_to(const char* section, json rec);
  const BenchArgs& args() const { return args_; }

 private:
  void take_existing(const json& old);
  void add(json rec);  // to the results, saved at once
  void save() const;
  const BenchArgs& args_;
  const BenchPlan& plan_;
  bool peer_columns_;
  json doc_;
  size_t run_index_ = 0;
};

// ---- bench_sweep.cpp: whole sweeps (--sweeps) ----

// R runs of N, T (B = 64, a lambda per run) for every R, N and T of the plan, beside the peer's
// sweep mode and the token-drawing limit on all cores.
void run_sweep_section(const BenchPlan& plan, const PeerInfo& peer, LimitMeter& meter, BenchReport& report);

// ---- bench_contention.cpp: the default thread count beside a busy process (--contention) ----

void run_contention_section(const BenchPlan& plan, BenchReport& report);

}  // namespace scb::bench
