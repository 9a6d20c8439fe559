#include "scb/core/output.hpp"

#include <cmath>
#include <fstream>

#include <unistd.h>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "scb/core/durable_file.hpp"
#include "scb/core/input_files.hpp"
#include "scb/core/milestones.hpp"
#include "scb/core/npy.hpp"

namespace scb {

const char* const kCurveHeader = "step,samples,loss,excess_loss,dist_V,dist_A,dist_V_norm,dist_A_norm,nnz_A";

std::string curve_row(const Metrics& m) {
  return fmt::format("{},{},{:.10g},{:.10g},{:.10g},{:.10g},{:.10g},{:.10g},{}", m.step, m.samples, m.loss,
                     m.excess_loss, m.dist_V, m.dist_A, m.dist_V_norm, m.dist_A_norm, m.nnz_A);
}

nlohmann::json metrics_json(const Metrics& m) {
  auto num = [](double x) -> nlohmann::json { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); };
  return {{"step", m.step},         {"samples", m.samples},         {"loss", num(m.loss)},
          {"excess_loss", num(m.excess_loss)}, {"dist_V", num(m.dist_V)}, {"dist_A", num(m.dist_A)},
          {"dist_V_norm", num(m.dist_V_norm)}, {"dist_A_norm", num(m.dist_A_norm)}, {"nnz_A", m.nnz_A}};
}

void prepare_output_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    if (!std::filesystem::is_directory(dir, ec))
      throw ConfigError(fmt::format("--out {}: exists and is not a directory", dir.string()));
    if (!std::filesystem::is_empty(dir, ec))
      throw ConfigError(fmt::format("--out {}: the directory is not empty; choose a new one (nothing is overwritten)", dir.string()));
    return;
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) throw ConfigError(fmt::format("--out {}: cannot create the directory ({})", dir.string(), ec.message()));
}

nlohmann::json summary_json(const RunPack& pack, size_t r, const RunResult& res, const RunTiming& timing) {
  nlohmann::json s;
  s["status"] = res.status == RunStatus::diverged ? "diverged" : "ok";
  if (res.status == RunStatus::diverged) s["diverged_step"] = res.diverged_step;
  s["final"] = metrics_json(res.final_metrics);
  s["best"] = metrics_json(res.best);
  s["steps"] = pack.step[r];
  s["samples"] = pack.samples[r];
  s["wall_seconds"] = timing.wall_seconds;
  s["tokens_per_second"] = timing.wall_seconds > 0 ? double(pack.samples[r]) * pack.T / timing.wall_seconds : 0.0;
  s["device"] = timing.device;
  s["threads"] = timing.threads;
  return s;
}

void write_run_outputs(const std::filesystem::path& dir, const Config& cfg, const RunPack& pack, size_t r,
                       const RunResult& res, const RunTiming& timing, const InputHashes& inputs) {
  auto write_text = [&](const char* name, const std::string& text) { write_file_durable(dir / name, text); };
  if (!cfg.resolved.is_object()) throw std::logic_error("write_run_outputs: the config has no resolved document");
  write_text("config.json", cfg.resolved.dump(2) + "\n");
  std::string curves = std::string(kCurveHeader) + "\n";
  for (const Metrics& m : res.curve) curves += curve_row(m) + "\n";
  write_text("curves.csv", curves);
  nlohmann::json summary = summary_json(pack, r, res, timing);
  if (!input_files(cfg).empty()) summary["inputs"] = inputs.of(cfg);  // the files the run read, by content
  write_text("summary.json", summary.dump(2) + "\n");
  write_text("milestones.json", milestones_json(milestones(res.curve, cfg.eval.thresholds)).dump(2) + "\n");

  const Problem& pb = pack.problem(r);
  const uint64_t N = pack.N, T = pack.T;
  write_npy(dir / "P.npy", {N, N}, pb.P.data());
  write_npy(dir / "mu.npy", {N}, pb.mu.data());
  std::vector<double> Q(T * N, 0.0);  // T x N, C order
  for (uint32_t k = 0; k < N; ++k)
    for (uint32_t s = pb.q_ptr[k]; s < pb.q_ptr[k + 1]; ++s) Q[uint64_t(pb.q_pos[s]) * N + k] = pb.q_w[s];
  write_npy(dir / "Q.npy", {T, N}, Q.data());
  write_npy(dir / "V.npy", {N, N}, pack.V_of(r));
  auto write_by_rows = [&](const char* name, const float* by_columns) {  // T x N, C order
    std::vector<float> rows(T * N);
    for (uint64_t k = 0; k < N; ++k)
      for (uint64_t t = 0; t < T; ++t) rows[t * N + k] = by_columns[k * T + t];
    write_npy(dir / name, {T, N}, rows.data());
  };
  write_by_rows("A.npy", attention_matrix(pack, r).data());
  if (pack.attention == Attention::softmax) write_by_rows("W.npy", pack.A_of(r));  // the logits
  fsync_directory(dir);  // the folder's entries too, before a caller renames it into place
}

bool run_outputs_complete(const std::filesystem::path& dir) {
  try {
    const nlohmann::json cfg = load_json_file(dir / "config.json");
    (void)load_json_file(dir / "summary.json");
    std::vector<const char*> arrays = {"P.npy", "mu.npy", "Q.npy", "V.npy", "A.npy"};
    if (cfg.at("model").at("attention") == "softmax") arrays.push_back("W.npy");
    for (const char* name : arrays) (void)read_npy_shape(dir / name);
    std::ifstream curves(dir / "curves.csv");
    std::string header;
    return std::getline(curves, header) && header == kCurveHeader;
  } catch (const std::exception&) {
    return false;
  }
}

namespace {

std::filesystem::path partial_of(const std::filesystem::path& dir) { return dir.string() + ".partial"; }

// An empty DIR.partial, whatever an earlier kill left there (never a result); "" or the reason it
// cannot be made.
std::string make_fresh_partial(const std::filesystem::path& partial) {
  std::error_code ec;
  std::filesystem::remove_all(partial, ec);
  if (!std::filesystem::create_directory(partial, ec) || ec) return ec ? ec.message() : "it exists";
  return {};
}

}  // namespace

void prepare_atomic_output_dir(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  prepare_output_dir(dir);
  const fs::path partial = partial_of(dir);
  if (const std::string why = make_fresh_partial(partial); !why.empty())
    throw ConfigError(fmt::format("--out {}: cannot create {} ({})", dir.string(), partial.string(), why));
  std::error_code ec;
  if (::access(partial.c_str(), W_OK) != 0)
    throw ConfigError(fmt::format("--out {}: cannot write in {} ({})", dir.string(), partial.string(), std::strerror(errno)));
  fs::remove_all(partial, ec);
}

void build_directory_atomically(const std::filesystem::path& dir, const std::function<void(const std::filesystem::path&)>& fill) {
  namespace fs = std::filesystem;
  const fs::path partial = partial_of(dir);
  if (const std::string why = make_fresh_partial(partial); !why.empty())
    throw std::runtime_error(fmt::format("cannot create {}: {}", partial.string(), why));
  std::error_code ec;
  try {
    fill(partial);
    fsync_directory(partial);
  } catch (...) {
    fs::remove_all(partial, ec);  // a full disk must not leave a half-written copy behind
    throw;
  }
  fs::rename(partial, dir, ec);  // replaces the empty `dir` prepare_output_dir made
  if (ec) {
    const std::string reason = ec.message();
    fs::remove_all(partial, ec);
    throw std::runtime_error(fmt::format("cannot rename {} to {}: {}", partial.string(), dir.string(), reason));
  }
  fsync_directory(dir.parent_path().empty() ? fs::path(".") : dir.parent_path());
}

void write_run_outputs_atomically(const std::filesystem::path& dir, const Config& cfg, const RunPack& pack, size_t r,
                                  const RunResult& res, const RunTiming& timing, const InputHashes& inputs) {
  build_directory_atomically(dir, [&](const std::filesystem::path& partial) {
    write_run_outputs(partial, cfg, pack, r, res, timing, inputs);
  });
}

uint64_t available_host_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t value = 0;
  std::string unit;
  while (in >> key >> value >> unit)
    if (key == "MemAvailable:") return value * 1024;
  return 0;
}

}  // namespace scb
