// `scb bench`: whole training steps of a backend across N, T, B and pack size (sample-tokens/s,
// steps/s), each figure beside the token-drawing limit (Philox + alias drawing of the same
// tokens and nothing else, single thread and all threads) measured in the same run, on the same
// machine, interleaved with the step repetitions, so every figure is also a fraction of that
// limit. `--peer` runs the PyTorch peer (bench/peers/torch_scb.py) on the same configs right
// after the engine and prints engine/peer. Results go to stdout as a table and to --json.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "scb/core/backend.hpp"
#include "scb/cli/cli.hpp"
#include "scb/core/model.hpp"
#include "scb/core/output.hpp"
#include "scb/core/problem.hpp"
#include "scb/core/runpack.hpp"
#include "scb/cpu/token_draw.hpp"
#include "scb/cuda/cuda_backend.hpp"
#include "scb/sweep/device.hpp"

namespace scb {

namespace {

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
};

// 1000, 1e4, 10k, 1M, 4G (k/M/G are powers of 1000 for counts, of 1024 for bytes).
uint64_t parse_quantity(const std::string& text, const std::string& key, bool bytes) {
  std::string s = text;
  double mult = 1;
  if (!s.empty()) {
    const char c = s.back();
    const double base = bytes ? 1024.0 : 1000.0;
    if (c == 'k' || c == 'K') mult = base;
    if (c == 'm' || c == 'M') mult = base * base;
    if (c == 'g' || c == 'G') mult = base * base * base;
    if (mult != 1) s.pop_back();
  }
  size_t used = 0;
  double v = -1;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  v *= mult;
  if (used != s.size() || s.empty() || !(v >= 0) || v > 1.8e19 || std::floor(v) != v)
    throw ConfigError(fmt::format("{}: '{}' is not a non-negative integer (forms: 1000, 1e4, 10k{})", key, text,
                                  bytes ? ", 4G" : ""));
  return static_cast<uint64_t>(v);
}

std::vector<uint64_t> parse_list(const std::vector<std::string>& items, const std::string& key, uint64_t lo,
                                 uint64_t hi) {
  std::vector<uint64_t> out;
  for (const std::string& s : items) {
    const uint64_t v = parse_quantity(s, key, false);
    if (v < lo || v > hi) throw ConfigError(fmt::format("{}: {} is out of range [{}, {}]", key, v, lo, hi));
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  if (out.empty()) throw ConfigError(fmt::format("{}: expected a comma-separated list", key));
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds used by the whole process (all threads): on a loaded machine the CPU time of a
// single-threaded measurement is far steadier than its wall time.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

std::array<double, 3> load_average() {
  std::array<double, 3> l{-1, -1, -1};
  std::ifstream in("/proc/loadavg");
  in >> l[0] >> l[1] >> l[2];
  return l;
}

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

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The bench's training config: proximal stage from step 0 (threshold and renormalisation every
// step: the most expensive step, and where the paper's method spends most of its steps), or plain
// SGD. lambda = 0.5 / T keeps the threshold the same size relative to a_t = 1/T as the SPEC 5
// reference point (N = 3, T = 100, lambda = 0.005). Defaults otherwise.
Config bench_config(uint64_t N, uint64_t T, uint64_t B, uint64_t seed, const std::string& stage) {
  json doc = {{"problem", {{"N", N}, {"T", T}, {"Q", std::min<uint64_t>(T, 2)}, {"seed", 1}}},
              {"train",
               {{"algorithm", stage},
                {"steps", int64_t(1) << 40},
                {"batch_size", B},
                {"seed", seed},
                {"stage1_steps", 0},
                {"lambda", 0.5 / double(T)}}},
              {"eval", {{"every", int64_t(1) << 40}}}};
  return resolve_config(doc, ".");
}

// The token-drawing limit: draw_tokens (the engine's own drawing, AVX2 where available) over the
// T positions of whole samples, nothing else
// (the words are summed so the work cannot be elided). Sample-tokens per second.
struct Rate {
  double wall = 0, cpu = 0;  // per wall second, per CPU second of the process
};

Rate token_limit(const ProblemView& pv, uint32_t T, int threads, double seconds, uint32_t& round) {
  const uint32_t per_thread = std::max<uint32_t>(1, static_cast<uint32_t>(std::ceil(2.0e5 / T)));
  const uint32_t samples = per_thread * static_cast<uint32_t>(threads);
  std::vector<uint64_t> sink(size_t(samples) * 8, 0);
  auto draw = [&](uint32_t b) {
    uint32_t x[kTokenChunk];  // the chunking of forward_sample
    uint64_t s = 0;
    for (uint32_t t0 = 0; t0 < T; t0 += kTokenChunk) {
      const uint32_t n = std::min(kTokenChunk, T - t0);
      draw_tokens(pv, 0x5eedull, round, b, t0, n, x);
      for (uint32_t i = 0; i < n; ++i) s += x[i];
    }
    sink[size_t(b) * 8] += s;
  };
  uint64_t tokens = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = process_cpu_seconds();
  double elapsed = 0;
  do {
    if (threads == 1) {
      for (uint32_t b = 0; b < samples; ++b) draw(b);
    } else {
#pragma omp parallel for schedule(static) num_threads(threads)
      for (uint32_t b = 0; b < samples; ++b) draw(b);
    }
    ++round;
    tokens += uint64_t(samples) * T;
    elapsed = seconds_since(t0);
  } while (elapsed < seconds);
  uint64_t total = 0;
  for (uint64_t s : sink) total += s;
  if (total == 42) std::fputs("", stderr);  // keeps the sums alive
  return Rate{double(tokens) / elapsed, double(tokens) / std::max(process_cpu_seconds() - c0, 1e-9)};
}

struct PeerInfo {
  bool available = false;
  std::string version, script, message;
};

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a command and returns its stdout (exit status in `rc`).
std::string capture(const std::string& command, int& rc) {
  std::string out;
  FILE* f = popen(command.c_str(), "r");
  if (!f) {
    rc = -1;
    return out;
  }
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) out.append(buf.data(), n);
  const int status = pclose(f);
  rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// The peer script: --peer-script, else bench/peers/torch_scb.py of this source tree, else next to
// the executable's build directory, else under the working directory.
std::string find_peer_script(const std::string& given) {
  namespace fs = std::filesystem;
  if (!given.empty()) return given;
  std::vector<fs::path> candidates;
  candidates.push_back(fs::path(__FILE__).parent_path().parent_path() / "bench/peers/torch_scb.py");
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / "bench/peers/torch_scb.py");
  candidates.push_back(fs::current_path() / "bench/peers/torch_scb.py");
  for (const fs::path& p : candidates)
    if (fs::exists(p, ec)) return p.string();
  return "";
}

PeerInfo probe_peer(const BenchArgs& args) {
  PeerInfo info;
  info.script = find_peer_script(args.peer_script);
  if (info.script.empty()) {
    info.message = "bench/peers/torch_scb.py not found (give --peer-script PATH)";
    return info;
  }
  int rc = 0;
  const std::string out =
      capture(shell_quote(args.peer_python) + " -c 'import torch; print(torch.__version__)' 2>/dev/null", rc);
  if (rc != 0) {
    info.message = fmt::format("PyTorch is not importable by {} (Debian: apt-get install -y python3-torch)",
                               args.peer_python);
    return info;
  }
  info.available = true;
  info.version = out.substr(0, out.find('\n'));
  return info;
}

json run_peer(const BenchArgs& args, const PeerInfo& peer, uint64_t N, uint64_t T, uint64_t B, uint64_t R,
              int threads, uint64_t memory_cap) {
  const std::string cmd = fmt::format(
      "{} {} --N {} --T {} --B {} --pack {} --threads {} --seconds {} --reps {} --steps {} --stage {} "
      "--memory-cap {} --max-step-seconds {}",
      shell_quote(args.peer_python), shell_quote(peer.script), N, T, B, R, threads, args.seconds, args.reps, args.steps,
      args.stage, memory_cap, args.max_step_seconds);
  int rc = 0;
  const std::string out = capture(cmd, rc);
  try {
    json j = json::parse(out.substr(0, out.find('\n')));
    if (rc != 0 && !j.contains("skipped")) j["error"] = fmt::format("exit status {}", rc);
    return j;
  } catch (const std::exception&) {
    return json{{"error", fmt::format("the peer failed (exit status {}); output: {}", rc, out.substr(0, 300))}};
  }
}

std::string rate(double x) {
  if (!std::isfinite(x)) return "-";
  if (x >= 1e9) return fmt::format("{:.2f}G", x / 1e9);
  if (x >= 1e6) return fmt::format("{:.1f}M", x / 1e6);
  if (x >= 1e3) return fmt::format("{:.1f}k", x / 1e3);
  return fmt::format("{:.1f}", x);
}

int run_bench(const BenchArgs& args) {
  std::vector<uint64_t> Ns, Ts, Bs, packs, thread_list;
  Device device;
  uint64_t memory_cap = 0;
  try {
    Ns = parse_list(args.N, "--N", 2, 65535);
    Ts = parse_list(args.T, "--T", 1, 0xFFFFFFFFull);
    Bs = parse_list(args.B, "--B", 1, 1u << 24);
    packs = parse_list(args.pack, "--pack", 1, 1000000);
    thread_list = parse_list(args.threads, "--threads", 0, 4096);
    if (args.reps < 1) throw ConfigError("--reps: expected an integer >= 1");
    if (args.steps < 0) throw ConfigError("--steps: expected an integer >= 0 (0 = from --seconds)");
    if (!(args.seconds > 0)) throw ConfigError("--seconds: expected a positive number");
    if (!(args.max_step_seconds > 0)) throw ConfigError("--max-step-seconds: expected a positive number");
    if (args.stage != "proximal" && args.stage != "sgd") throw ConfigError("--stage: expected proximal or sgd");
    device = parse_device(args.device);
    if (device == Device::auto_select) device = cuda_device_count() > 0 ? Device::cuda : Device::cpu;
    if (device == Device::cuda && cuda_device_count() == 0)
      throw ConfigError("--device: cuda was requested but no CUDA device is visible (use cpu)");
    const uint64_t avail = available_host_memory();
    memory_cap = args.memory_cap.empty() ? (avail > 0 ? avail / 2 : (uint64_t(4) << 30))
                                         : parse_quantity(args.memory_cap, "--memory-cap", true);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "scb bench: %s\n", e.what());
    return 2;
  }
  const int all_threads = omp_get_max_threads();
  PeerInfo peer;
  if (args.peer) {
    peer = probe_peer(args);
    if (!peer.available) std::fprintf(stderr, "scb bench: --peer skipped: %s\n", peer.message.c_str());
  }

  json doc;
  {
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    const auto l = load_average();
    doc["machine"] = {{"host", host},
                      {"cpu", cpu_model()},
                      {"cores", std::max<long>(1, sysconf(_SC_NPROCESSORS_ONLN))},
                      {"token_draw", token_draw_isa()},
                      {"omp_max_threads", all_threads},
                      {"memory_available_bytes", available_host_memory()},
                      {"load_average_start", {l[0], l[1], l[2]}}};
    int git_rc = 0;
    std::string git = capture("git -C " + shell_quote(std::filesystem::path(__FILE__).parent_path().string()) +
                                  " describe --always --dirty 2>/dev/null",
                              git_rc);
    git = git.substr(0, git.find('\n'));
    doc["build"] = {{"compiler", __VERSION__},
                    {"git", git_rc == 0 ? git : "unknown"},
#if defined(NDEBUG)
                    {"optimised", true},
#else
                    {"optimised", false},
#endif
                    {"cuda", cuda_device_count() > 0}};
    doc["settings"] = {{"device", device == Device::cuda ? "cuda" : "cpu"},
                       {"stage", args.stage},
                       {"seconds", args.seconds},
                       {"reps", args.reps},
                       {"steps", args.steps},
                       {"max_step_seconds", args.max_step_seconds},
                       {"memory_cap_bytes", memory_cap},
                       {"config", "proximal stage from step 0 (threshold + renormalisation each step), "
                                  "lambda = 0.5/T, lr_V = 1, lr_A = 0.02, Q = 2, project and precondition on"},
                       {"limit", std::string("draw_tokens (") + token_draw_isa() + ") over T positions of whole samples, nothing else; "
                                 "single thread and all threads, measured interleaved with the step repetitions"}};
    doc["peer"] = args.peer ? json{{"available", peer.available}, {"version", peer.version}, {"script", peer.script},
                                   {"message", peer.message}}
                            : json(nullptr);
    doc["results"] = json::array();
    json header = {{"machine", doc["machine"]}, {"build", doc["build"]}, {"settings", doc["settings"]},
                   {"peer", doc["peer"]}};
    doc["runs"] = json::array();
    if (args.append && !args.json_path.empty() && std::filesystem::exists(args.json_path)) {
      try {
        const json old = load_json_file(args.json_path);
        if (old.contains("runs")) {
          doc["runs"] = old["runs"];
        } else {
          json h = json::object();
          for (const char* k : {"machine", "build", "settings", "peer"})
            if (old.contains(k)) h[k] = old[k];
          doc["runs"].push_back(h);
        }
        if (old.contains("results")) {
          doc["results"] = old["results"];
          for (json& r : doc["results"])
            if (!r.contains("run")) r["run"] = 0;
        }
      } catch (const ConfigError& e) {
        std::fprintf(stderr, "scb bench: --append: %s\n", e.what());
        return 2;
      }
    }
    doc["runs"].push_back(header);
  }
  const size_t run_index = doc["runs"].size() - 1;
  auto save = [&] {
    if (args.json_path.empty()) return;
    std::ofstream out(args.json_path);
    out << doc.dump(1) << "\n";
  };

  if (!args.quiet) {
    std::printf("scb bench: device %s, %d threads, load %.2f; stage %s; limit = Philox+alias token drawing alone\n",
                device == Device::cuda ? "cuda" : "cpu", all_threads, load_average()[0], args.stage.c_str());
    std::printf("%5s %7s %4s %5s %3s | %9s %9s %9s | %9s %9s %6s %6s |%s\n", "N", "T", "B", "pack", "thr", "step",
                "tok/s", "steps/s", "lim1/s", "limAll/s", "%lim1", "%limA",
                args.peer && peer.available ? "    peer/s eng/peer |  load" : "  load");
    std::fflush(stdout);
  }

  std::vector<std::shared_ptr<const Problem>> problems;
  auto problem_for = [&](uint64_t N, uint64_t T) {
    for (const auto& p : problems)
      if (p->N == N && p->T == T) return p;
    problems.clear();  // one problem alive at a time (N x N tables of the largest N are big)
    problems.push_back(make_problem(bench_config(N, T, 64, 0, args.stage)));
    return problems.back();
  };

  uint32_t limit_round = 0;
  int failures = 0;
  for (uint64_t N : Ns)
    for (uint64_t T : Ts)
      for (uint64_t B : Bs)
        for (uint64_t R : packs)
          for (uint64_t thr_req : thread_list) {
            const int threads = thr_req == 0 ? all_threads : int(thr_req);
            json rec = {{"run", run_index}, {"N", N}, {"T", T}, {"B", B}, {"pack", R}, {"threads", threads},
                        {"device", device == Device::cuda ? "cuda" : "cpu"}, {"stage", args.stage}};
            const auto load0 = load_average();
            const Config cfg = bench_config(N, T, B, 0, args.stage);
            const RunFootprint fp = run_footprint(cfg);
            const uint64_t bytes = R * (fp.parameters + fp.scratch) + fp.problem;
            rec["bytes"] = bytes;
            std::string skip;
            if (bytes > memory_cap)
              skip = fmt::format("needs {:.2f} GiB > memory cap {:.2f} GiB (--memory-cap)", bytes / 1073741824.0,
                                 memory_cap / 1073741824.0);
            if (device == Device::cuda && skip.empty()) {
              uint64_t free_b = 0, total_b = 0;
              cuda_memory_info(free_b, total_b);
              if (bytes > free_b * 9 / 10)
                skip = fmt::format("needs {:.2f} GiB > 90% of free device memory", bytes / 1073741824.0);
            }
            std::shared_ptr<const Problem> pb;
            double lim1 = 0, limA = 0;
            std::vector<double> lim1s, limAs, lim1_cpu;
            const double limit_budget = std::clamp(args.seconds / args.reps * 0.2, 0.02, 0.25);
            if (skip.empty()) {
              pb = problem_for(N, T);
              const Rate l1 = token_limit(pb->view(), uint32_t(T), 1, limit_budget, limit_round);
              lim1 = l1.wall;
              lim1_cpu.push_back(l1.cpu);
              limA = all_threads > 1 ? token_limit(pb->view(), uint32_t(T), all_threads, limit_budget, limit_round).wall
                                     : lim1;
              // A step costs at least its token drawing, and the engine stays under ~40% of the
              // limit: skip what would take longer than --max-step-seconds per step.
              const double tokens = double(R) * B * T;
              const double predicted = tokens / (0.4 * (threads > 1 ? limA : lim1)) + double(R) * N * T * 1e-9;
              rec["predicted_step_seconds"] = predicted;
              if (predicted > args.max_step_seconds)
                skip = fmt::format("predicted {:.1f} s per step > --max-step-seconds {}", predicted, args.max_step_seconds);
            }
            if (!skip.empty()) {
              rec["status"] = "skipped";
              rec["reason"] = skip;
              doc["results"].push_back(rec);
              save();
              if (!args.quiet)
                std::printf("%5lu %7lu %4lu %5lu %3d | skipped: %s\n", (unsigned long)N, (unsigned long)T,
                            (unsigned long)B, (unsigned long)R, threads, skip.c_str());
              std::fflush(stdout);
              continue;
            }

            RunPack pack;
            std::unique_ptr<Backend> backend;
            try {
              for (uint64_t r = 0; r < R; ++r) pack.add_run(bench_config(N, T, B, r, args.stage), pb);
              backend = make_backend(device, threads);
              backend->attach(pack);
            } catch (const std::exception& e) {
              rec["status"] = "error";
              rec["reason"] = e.what();
              doc["results"].push_back(rec);
              save();
              std::fprintf(stderr, "scb bench: N=%lu T=%lu B=%lu pack=%lu: %s\n", (unsigned long)N, (unsigned long)T,
                           (unsigned long)B, (unsigned long)R, e.what());
              ++failures;
              continue;
            }
            const bool sync = device != Device::cpu;
            const std::vector<uint32_t> run0{0};
            std::vector<double> per_step, per_step_cpu;
            auto timed_steps = [&](int64_t K) {
              const auto t0 = std::chrono::steady_clock::now();
              const double c0 = process_cpu_seconds();
              for (int64_t i = 0; i < K; ++i) backend->step();
              if (sync) backend->evaluate(run0);  // a device backend's steps are asynchronous
              per_step_cpu.push_back((process_cpu_seconds() - c0) / double(K));
              return seconds_since(t0) / double(K);
            };
            timed_steps(1);  // first touch of the scratch, thread pool start-up
            const double warm = timed_steps(1);
            per_step_cpu.clear();
            int reps = args.reps;
            int64_t K = args.steps > 0 ? args.steps
                                       : std::max<int64_t>(1, std::llround(args.seconds / args.reps / std::max(warm, 1e-7)));
            if (warm > args.max_step_seconds) {
              reps = 1;
              K = 1;
              rec["capped"] = fmt::format("one step took {:.2f} s > --max-step-seconds: one repetition of one step", warm);
            }
            lim1s.push_back(lim1);
            limAs.push_back(limA);
            for (int rep = 0; rep < reps; ++rep) {
              per_step.push_back(timed_steps(K));
              if (rep + 1 < reps || reps == 1) {  // the limit between repetitions, as close in time as the steps
                const Rate l1 = token_limit(pb->view(), uint32_t(T), 1, limit_budget, limit_round);
                lim1s.push_back(l1.wall);
                lim1_cpu.push_back(l1.cpu);
                limAs.push_back(all_threads > 1
                                    ? token_limit(pb->view(), uint32_t(T), all_threads, limit_budget, limit_round).wall
                                    : lim1s.back());
              }
            }
            int diverged = 0;
            for (size_t r = 0; r < pack.size(); ++r) diverged += pack.status[r] == RunStatus::diverged;
            const double step_s = median(per_step);
            const double tokens = double(R) * B * T;
            const double tok_s = tokens / step_s;
            lim1 = median(lim1s);
            limA = median(limAs);
            rec["status"] = diverged ? "diverged" : "ok";
            rec["engine"] = {{"backend", backend->name()},
                             {"reps", reps},
                             {"steps_per_rep", K},
                             {"step_seconds", per_step},
                             {"step_seconds_median", step_s},
                             {"step_seconds_min", *std::min_element(per_step.begin(), per_step.end())},
                             {"step_seconds_max", *std::max_element(per_step.begin(), per_step.end())},
                             {"steps_per_s", 1.0 / step_s},
                             {"run_steps_per_s", double(R) / step_s},
                             {"sample_tokens_per_s", tok_s},
                             {"cpu_seconds_per_step", per_step_cpu},
                             {"sample_tokens_per_cpu_s", tokens / median(per_step_cpu)},
                             {"diverged_runs", diverged}};
            rec["limit"] = {{"tokens_per_s_1thread", lim1},
                            {"tokens_per_s_all_threads", limA},
                            {"all_threads", all_threads},
                            {"samples_1thread", lim1s},
                            {"samples_all_threads", limAs},
                            {"tokens_per_cpu_s_1thread", median(lim1_cpu)},
                            {"device", "cpu"}};
            rec["fraction_of_limit_1thread"] = tok_s / lim1;
            rec["fraction_of_limit_all_threads"] = tok_s / limA;
            // CPU-time figures: steady under load; meaningful for single-threaded runs.
            rec["fraction_of_limit_1thread_cpu_time"] = tokens / median(per_step_cpu) / median(lim1_cpu);
            if (diverged)
              std::fprintf(stderr, "scb bench: warning: %d run(s) diverged during N=%lu T=%lu B=%lu pack=%lu (figure invalid)\n",
                           diverged, (unsigned long)N, (unsigned long)T, (unsigned long)B, (unsigned long)R);
            backend.reset();
            pack = RunPack{};
            std::string peer_cols;
            if (args.peer && peer.available) {
              json pj = run_peer(args, peer, N, T, B, R, threads, memory_cap);
              if (pj.contains("sample_tokens_per_s")) {
                const double pr = pj["sample_tokens_per_s"].get<double>();
                rec["engine_over_peer"] = tok_s / pr;
                if (pj.contains("sample_tokens_per_cpu_s"))
                  rec["engine_over_peer_cpu_time"] = tokens / median(per_step_cpu) / pj["sample_tokens_per_cpu_s"].get<double>();
                peer_cols = fmt::format(" {:>9} {:>8.1f}x |", rate(pr), tok_s / pr);
              } else {
                peer_cols = fmt::format(" {:>9} {:>9} |", "skipped", "-");
              }
              rec["peer"] = std::move(pj);
            }
            const auto load1 = load_average();
            rec["load_average"] = {load0[0], load1[0]};
            doc["results"].push_back(rec);
            save();
            if (!args.quiet) {
              std::printf("%5lu %7lu %4lu %5lu %3d | %7.3fms %9s %9.1f | %9s %9s %5.1f%% %5.1f%% |%s %5.2f\n",
                          (unsigned long)N, (unsigned long)T, (unsigned long)B, (unsigned long)R, threads,
                          step_s * 1e3, rate(tok_s).c_str(), 1.0 / step_s, rate(lim1).c_str(), rate(limA).c_str(),
                          100 * tok_s / lim1, 100 * tok_s / limA, peer_cols.c_str(), load1[0]);
              std::fflush(stdout);
            }
          }
  {
    const auto l = load_average();
    doc["machine"]["load_average_end"] = {l[0], l[1], l[2]};
    doc["runs"][run_index]["machine"]["load_average_end"] = {l[0], l[1], l[2]};
  }
  save();
  if (!args.json_path.empty() && !args.quiet) std::printf("-> %s\n", args.json_path.c_str());
  return failures ? 1 : 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int& status) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Benchmark whole training steps (sample-tokens/s, steps/s) beside the token-drawing limit");
  cmd->add_option("--N", args->N, "Vocabulary sizes (comma-separated; default 3,20,100,500)")->delimiter(',');
  cmd->add_option("--T", args->T, "Context lengths (default 1000,10000,100000; 1e4 and 10k work)")->delimiter(',');
  cmd->add_option("--B", args->B, "Batch sizes (default 64,256)")->delimiter(',');
  cmd->add_option("--pack", args->pack, "Runs per pack (default 1,100,1000)")->delimiter(',');
  cmd->add_option("--threads", args->threads, "CPU thread counts to try (0 = all cores; default 0)")->delimiter(',');
  cmd->add_option("--steps", args->steps, "Steps per repetition (default: from --seconds)");
  cmd->add_option("--seconds", args->seconds, "Timed seconds per configuration, split over the repetitions (default 1)");
  cmd->add_option("--reps", args->reps, "Repetitions; figures are medians (default 5)");
  cmd->add_option("--max-step-seconds", args->max_step_seconds,
                  "Skip configurations predicted to take longer per step (default 5)");
  cmd->add_option("--memory-cap", args->memory_cap,
                  "Skip configurations needing more memory (bytes, 4G, 512M; default half the available memory)");
  cmd->add_option("--device", args->device, "cpu, cuda or auto (default cpu)");
  cmd->add_option("--stage", args->stage, "proximal (threshold + renormalisation every step, default) or sgd");
  cmd->add_option("--json", args->json_path, "Write every figure to this JSON file");
  cmd->add_flag("--append", args->append,
                "Add this run's figures to an existing --json file (each run's machine and settings kept under runs)");
  cmd->add_flag("--peer", args->peer, "Also run the PyTorch peer (bench/peers/torch_scb.py) on the same configs");
  cmd->add_option("--peer-python", args->peer_python, "Python for the peer (default /usr/bin/python3)");
  cmd->add_option("--peer-script", args->peer_script, "Path of torch_scb.py (default: found from the source tree)");
  cmd->add_flag("--quiet", args->quiet, "No table on stdout");
  cmd->callback([args, &status] { status = run_bench(*args); });
}

}  // namespace scb
