#pragma once
// Small helpers shared by the test files: configs from JSON patches, deterministic test data
// from Philox (a stream id no engine draw uses), temporary directories and running `scb`.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scb/core/config.hpp"
#include "scb/core/philox.hpp"
#include "scb/core/problem.hpp"

namespace scbtest {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint32_t kTestStream = 0x7e57u;  // test data only; no engine stream uses it

// Uniform double in (0, 1), a pure function of (seed, i, j).
inline double test_uniform(uint64_t seed, uint32_t i, uint32_t j = 0) {
  const scb::Philox4 w = scb::philox(seed, i, j, 0, kTestStream);
  return scb::uniform_open01(w.v[0], w.v[1]);
}

// A resolved config from a user document (relative paths resolve against the repo root).
inline scb::Config make_config(const json& user) { return scb::resolve_config(user, SCB_SOURCE_DIR); }

// The user document of a small problem: defaults, then `patch` merged in (JSON merge patch).
inline json small_doc(const json& patch) {
  json doc = {{"problem", {{"N", 3}, {"T", 40}, {"Q", 2}, {"seed", 1}}},
              {"train", {{"steps", 20}, {"batch_size", 16}, {"stage1_steps", 5}}},
              {"eval", {{"every", 5}}}};
  doc.merge_patch(patch);
  return doc;
}

inline std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    std::string tmpl = (fs::temp_directory_path() / ("scb_test_" + tag + "_XXXXXX")).string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

struct CmdResult {
  int status = -1;  // exit status, or -1 when the process did not exit normally
  std::string out, err;
};

// Runs `scb <args>` (args already quoted as needed) with stdout and stderr captured in `dir`.
inline CmdResult run_scb(const std::string& args, const fs::path& dir) {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd = shell_quote(SCB_BINARY) + " " + args + " >" + shell_quote(out.string()) + " 2>" +
                          shell_quote(err.string()) + " </dev/null";
  const int raw = std::system(cmd.c_str());
  CmdResult r;
  r.status = (raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1;
  r.out = read_text(out);
  r.err = read_text(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

inline size_t count_lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  if (!s.empty() && s.back() != '\n') ++n;
  return n;
}

// Chi-square critical value for `df` degrees of freedom at upper-tail probability ~1e-6
// (Wilson-Hilferty, z = 4.753).
inline double chi2_critical_1e6(double df) {
  const double z = 4.753, a = 2.0 / (9.0 * df);
  const double c = 1.0 - a + z * std::sqrt(a);
  return df * c * c * c;
}

}  // namespace scbtest
