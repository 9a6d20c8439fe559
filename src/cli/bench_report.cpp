// `scb bench`, the report: the table on stdout and the JSON document (--json, rewritten after
// every case so an interrupted bench keeps what it measured; --append keeps earlier runs).
// scripts/plot_bench.py and bench/results/*.json depend on these keys and columns: the structure
// here is the file format.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "scb/cli/bench.hpp"
#include "scb/core/durable_file.hpp"
#include "scb/core/output.hpp"
#include "scb/cpu/token_draw.hpp"
#include "scb/cuda/cuda_backend.hpp"

namespace scb::bench {

std::array<double, 3> load_average() {
  std::array<double, 3> l{-1, -1, -1};
  std::ifstream in("/proc/loadavg");
  in >> l[0] >> l[1] >> l[2];
  return l;
}

std::string rate(double x) {
  if (!std::isfinite(x)) return "-";
  if (x >= 1e9) return fmt::format("{:.2f}G", x / 1e9);
  if (x >= 1e6) return fmt::format("{:.1f}M", x / 1e6);
  if (x >= 1e3) return fmt::format("{:.1f}k", x / 1e3);
  return fmt::format("{:.1f}", x);
}

namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  return "unknown";
}

json machine_json(const BenchPlan& plan) {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  const auto l = load_average();
  return {{"host", host},
          {"cpu", cpu_model()},
          {"cores", std::max<long>(1, sysconf(_SC_NPROCESSORS_ONLN))},
          {"token_draw", token_draw_isa()},
          {"omp_max_threads", plan.all_threads},
          {"memory_available_bytes", available_host_memory()},
          {"load_average_start", {l[0], l[1], l[2]}}};
}

json build_json() {
  int git_rc = 0;
  // __FILE__ is relative to the build directory where the compiler ran there (Ninja): the
  // directory the executable is in.
  std::filesystem::path here = std::filesystem::path(__FILE__).parent_path();
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (here.is_relative() && !ec) here = exe.parent_path() / here;
  std::string git = capture("git -C " + shell_quote(here.string()) +
                                " describe --always --dirty 2>/dev/null",
                            git_rc);
  git = git.substr(0, git.find('\n'));
  return {{"compiler", __VERSION__},
          {"git", git_rc == 0 ? git : "unknown"},
#if defined(NDEBUG)
          {"optimised", true},
#else
          {"optimised", false},
#endif
          {"cuda", cuda_device_count() > 0}};
}

json settings_json(const BenchArgs& args, const BenchPlan& plan) {
  return {{"device", device_name(plan.device)},
          {"stage", args.stage},
          {"seconds", args.seconds},
          {"reps", args.reps},
          {"steps", args.steps},
          {"max_step_seconds", args.max_step_seconds},
          {"memory_cap_bytes", plan.memory_cap},
          {"config", "proximal stage from step 0 (threshold + renormalisation each step), "
                     "lambda = 0.5/T, lr_V = 1, lr_A = 0.02, Q = 2, project and precondition on"},
          {"limit", std::string("draw_tokens (") + token_draw_isa() + ") over T positions of whole samples, nothing else "
                    "(T <= 256: draw_sample_tokens, 8 samples per call, as the engine draws them); "
                    "single thread and all threads, measured interleaved with the step repetitions"}};
}

// The first columns of a table row: which case it is.
std::string case_columns(const BenchCase& c) {
  return fmt::format("{:5} {:7} {:4} {:5} {:3} |", c.N, c.T, c.B, c.R, c.threads);
}

}  // namespace

BenchReport::BenchReport(const BenchArgs& args, const BenchPlan& plan, const PeerInfo& peer)
    : args_(args), plan_(plan), peer_columns_(args.peer && peer.available) {
  doc_["machine"] = machine_json(plan);
  doc_["build"] = build_json();
  doc_["settings"] = settings_json(args, plan);
  doc_["peer"] = args.peer ? json{{"available", peer.available}, {"version", peer.version}, {"script", peer.script},
                                  {"message", peer.message}}
                           : json(nullptr);
  doc_["results"] = json::array();
  doc_["runs"] = json::array();
}

bool BenchReport::begin_run() {
  const json header = {{"machine", doc_["machine"]}, {"build", doc_["build"]}, {"settings", doc_["settings"]},
                       {"peer", doc_["peer"]}};
  if (args_.append && !args_.json_path.empty() && std::filesystem::exists(args_.json_path)) {
    try {
      take_existing(load_json_file(args_.json_path));
    } catch (const ConfigError& e) {
      std::fprintf(stderr, "scb bench: --append: %s\n", e.what());
      return false;
    }
  }
  doc_["runs"].push_back(header);
  run_index_ = doc_["runs"].size() - 1;
  return true;
}

// The runs and results of an earlier file; a file from before runs were kept becomes run 0.
void BenchReport::take_existing(const json& old) {
  if (old.contains("runs")) {
    doc_["runs"] = old["runs"];
  } else {
    json h = json::object();
    for (const char* k : {"machine", "build", "settings", "peer"})
      if (old.contains(k)) h[k] = old[k];
    doc_["runs"].push_back(h);
  }
  for (const char* section : {"sweeps", "contention"})
    if (old.contains(section)) doc_[section] = old[section];
  if (old.contains("results")) {
    doc_["results"] = old["results"];
    for (json& r : doc_["results"])
      if (!r.contains("run")) r["run"] = 0;
  }
}

void BenchReport::print_table_head() const {
  if (args_.quiet) return;
  std::printf("scb bench: device %s, %d threads, load %.2f; stage %s; limit = Philox+alias token drawing alone\n",
              device_name(plan_.device), plan_.all_threads, load_average()[0], args_.stage.c_str());
  std::printf("%5s %7s %4s %5s %3s | %9s %9s %9s | %9s %9s %6s %6s |%s%s\n", "N", "T", "B", "pack", "thr", "step",
              "tok/s", "steps/s", "lim1/s", "limAll/s", "%lim1", "%limA", args_.memory_pass ? "      pass step/pass |" : "",
              peer_columns_ ? "    peer/s eng/peer |  load" : "  load");
  std::fflush(stdout);
}

json BenchReport::case_record(const BenchCase& c) const {
  return {{"run", run_index_}, {"N", c.N},         {"T", c.T}, {"B", c.B}, {"pack", c.R}, {"threads", c.threads},
          {"device", device_name(plan_.device)}, {"stage", args_.stage}};
}

void BenchReport::add(json rec) {
  doc_["results"].push_back(std::move(rec));
  save();
}

void BenchReport::add_to(const char* section, json rec) {
  rec["run"] = run_index_;
  if (!doc_.contains(section)) doc_[section] = json::array();
  doc_[section].push_back(std::move(rec));
  save();
}

void BenchReport::save() const {
  if (args_.json_path.empty()) return;
  write_file_atomic(args_.json_path, doc_.dump(1) + "\n");  // checked: a full disk is an error, not a short report
}

void BenchReport::skipped(const BenchCase& c, json rec, const std::string& reason) {
  rec["status"] = "skipped";
  rec["reason"] = reason;
  add(std::move(rec));
  if (!args_.quiet) std::printf("%s skipped: %s\n", case_columns(c).c_str(), reason.c_str());
  std::fflush(stdout);
}

void BenchReport::failed(const BenchCase& c, json rec, const std::string& reason) {
  rec["status"] = "error";
  rec["reason"] = reason;
  add(std::move(rec));
  std::fprintf(stderr, "scb bench: N=%lu T=%lu B=%lu pack=%lu: %s\n", (unsigned long)c.N, (unsigned long)c.T,
               (unsigned long)c.B, (unsigned long)c.R, reason.c_str());
}

void BenchReport::engine_figures(const BenchCase& c, const EngineFigures& fig, json& rec) const {
  const std::vector<double>& per_step = fig.step_seconds;
  rec["status"] = fig.diverged ? "diverged" : "ok";
  if (!fig.capped.empty()) rec["capped"] = fig.capped;
  rec["engine"] = {{"backend", fig.backend},
                   {"reps", fig.reps},
                   {"steps_per_rep", fig.steps_per_rep},
                   {"step_seconds", per_step},
                   {"step_seconds_median", fig.step_s},
                   {"step_seconds_min", *std::min_element(per_step.begin(), per_step.end())},
                   {"step_seconds_max", *std::max_element(per_step.begin(), per_step.end())},
                   {"steps_per_s", 1.0 / fig.step_s},
                   {"run_steps_per_s", double(c.R) / fig.step_s},
                   {"sample_tokens_per_s", fig.tokens_per_s},
                   {"cpu_seconds_per_step", fig.cpu_seconds_per_step},
                   {"sample_tokens_per_cpu_s", fig.tokens_per_cpu_s},
                   {"diverged_runs", fig.diverged}};
  rec["limit"] = {{"tokens_per_s_1thread", fig.limit_1thread},
                  {"tokens_per_s_all_threads", fig.limit_all},
                  {"all_threads", plan_.all_threads},
                  {"samples_1thread", fig.limit.one_thread},
                  {"samples_all_threads", fig.limit.all_threads},
                  {"tokens_per_cpu_s_1thread", median(fig.limit.one_thread_cpu)},
                  {"device", "cpu"}};
  if (fig.memory_pass_s > 0)
    rec["memory_pass"] = {{"seconds", fig.memory_pass_s},
                          {"bytes_read_and_written", double(c.R * c.N * c.T) * sizeof(float)},
                          {"threads", plan_.all_threads},
                          {"step_over_pass", fig.step_s / fig.memory_pass_s}};
  rec["fraction_of_limit_1thread"] = fig.tokens_per_s / fig.limit_1thread;
  rec["fraction_of_limit_all_threads"] = fig.tokens_per_s / fig.limit_all;
  // CPU-time figures: steady under load; meaningful for single-threaded runs.
  rec["fraction_of_limit_1thread_cpu_time"] = fig.tokens_per_cpu_s / median(fig.limit.one_thread_cpu);
  if (fig.diverged)
    std::fprintf(stderr, "scb bench: warning: %d run(s) diverged during N=%lu T=%lu B=%lu pack=%lu (figure invalid)\n",
                 fig.diverged, (unsigned long)c.N, (unsigned long)c.T, (unsigned long)c.B, (unsigned long)c.R);
}

void BenchReport::measured(const BenchCase& c, json rec, const EngineFigures& fig, const std::string& peer_cols,
                           const std::array<double, 3>& load_start) {
  const auto load_end = load_average();
  rec["load_average"] = {load_start[0], load_end[0]};
  add(std::move(rec));
  if (args_.quiet) return;
  const std::string pass_cols =
      args_.memory_pass ? fmt::format(" {:7.3f}ms {:8.2f}x |", fig.memory_pass_s * 1e3, fig.step_s / fig.memory_pass_s)
                        : "";
  std::printf("%s %7.3fms %9s %9.1f | %9s %9s %5.1f%% %5.1f%% |%s%s %5.2f\n", case_columns(c).c_str(), fig.step_s * 1e3,
              rate(fig.tokens_per_s).c_str(), 1.0 / fig.step_s, rate(fig.limit_1thread).c_str(),
              rate(fig.limit_all).c_str(), 100 * fig.tokens_per_s / fig.limit_1thread,
              100 * fig.tokens_per_s / fig.limit_all, pass_cols.c_str(), peer_cols.c_str(), load_end[0]);
  std::fflush(stdout);
}

void BenchReport::finish() {
  const auto l = load_average();
  doc_["machine"]["load_average_end"] = {l[0], l[1], l[2]};
  doc_["runs"][run_index_]["machine"]["load_average_end"] = {l[0], l[1], l[2]};
  save();
  if (!args_.json_path.empty() && !args_.quiet) std::printf("-> %s\n", args_.json_path.c_str());
}

}  // namespace scb::bench
