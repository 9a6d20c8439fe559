// `scb bench --peer`: the PyTorch peer (bench/peers/torch_scb.py) run as a separate process on
// each case right after the engine, its one JSON line read back, and engine/peer worked out. The
// shell helpers it needs (quoting, capturing stdout) live here and serve the report's git line too.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "scb/cli/bench.hpp"

namespace scb::bench {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

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

namespace {

// The peer script: --peer-script, else bench/peers/torch_scb.py of this source tree (this file is
// src/cli/bench_peer.cpp), else next to the executable's build directory, else under the working
// directory.
std::string find_peer_script(const std::string& given) {
  namespace fs = std::filesystem;
  if (!given.empty()) return given;
  std::vector<fs::path> candidates;
  const fs::path source_root = fs::path(__FILE__).parent_path().parent_path().parent_path();
  candidates.push_back(source_root / "bench/peers/torch_scb.py");
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / "bench/peers/torch_scb.py");
  candidates.push_back(fs::current_path() / "bench/peers/torch_scb.py");
  for (const fs::path& p : candidates)
    if (fs::exists(p, ec)) return p.string();
  return "";
}

// The peer's one JSON line (with "error" when it failed without saying why).
json peer_json(const std::string& cmd) {
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

json run_peer(const BenchArgs& args, const PeerInfo& peer, const BenchCase& c, uint64_t memory_cap) {
  return peer_json(fmt::format(
      "{} {} --N {} --T {} --B {} --pack {} --threads {} --seconds {} --reps {} --steps {} --stage {} "
      "--memory-cap {} --max-step-seconds {}",
      shell_quote(args.peer_python), shell_quote(peer.script), c.N, c.T, c.B, c.R, c.threads, args.seconds, args.reps,
      args.steps, args.stage, memory_cap, args.max_step_seconds));
}

}  // namespace

json run_sweep_peer(const BenchArgs& args, const PeerInfo& peer, uint64_t N, uint64_t T, uint64_t R,
                    uint64_t memory_cap) {
  // Both stages in the budget the engine spends on both (--seconds each).
  return peer_json(fmt::format("{} {} --runs {} --N {} --T {} --B 64 --threads 0 --seconds {} --reps {} --steps {} "
                               "--memory-cap {}",
                               shell_quote(args.peer_python), shell_quote(peer.script), R, N, T, 2 * args.seconds,
                               args.reps, args.steps, memory_cap));
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

std::string add_peer_figures(const BenchArgs& args, const PeerInfo& peer, const BenchCase& c,
                             const EngineFigures& fig, uint64_t memory_cap, json& rec) {
  if (!args.peer || !peer.available) return "";
  json pj = run_peer(args, peer, c, memory_cap);
  std::string peer_cols;
  if (pj.contains("sample_tokens_per_s")) {
    const double pr = pj["sample_tokens_per_s"].get<double>();
    rec["engine_over_peer"] = fig.tokens_per_s / pr;
    if (pj.contains("sample_tokens_per_cpu_s"))
      rec["engine_over_peer_cpu_time"] = fig.tokens_per_cpu_s / pj["sample_tokens_per_cpu_s"].get<double>();
    peer_cols = fmt::format(" {:>9} {:>8.1f}x |", rate(pr), fig.tokens_per_s / pr);
  } else {
    peer_cols = fmt::format(" {:>9} {:>9} |", "skipped", "-");
  }
  rec["peer"] = std::move(pj);
  return peer_cols;
}

}  // namespace scb::bench
