// Checkpoint files (see checkpoint.hpp): a fixed binary layout, not JSON, because the curve's
// doubles and the float parameters must come back bit for bit (non-finite values included).
#include "scb/core/checkpoint.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

#include "scb/core/config.hpp"
#include "scb/core/durable_file.hpp"
#include "scb/core/failpoint.hpp"

namespace scb {

namespace {

constexpr char kMagic[8] = {'S', 'C', 'B', 'C', 'K', 'P', 'T', '1'};

template <typename T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

template <typename T>
void put_array(std::string& out, const std::vector<T>& v) {
  put(out, uint64_t(v.size()));
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Reads what put wrote from the file; any shortfall is a damaged file. Arrays are read, or only
// their length checked and their values skipped.
struct Reader {
  std::ifstream in;
  const std::filesystem::path& file;
  template <typename T>
  T get() {
    T v;
    take(&v, sizeof(T));
    return v;
  }
  template <typename T>
  std::vector<T> get_array(uint64_t expected, bool keep) {
    const uint64_t n = get<uint64_t>();
    if (n != expected) throw ConfigError(fmt::format("{}: damaged checkpoint (an array of {} values where {} belong)", file.string(), n, expected));
    std::vector<T> v(keep ? n : 0);
    if (keep)
      take(v.data(), n * sizeof(T));
    else
      in.seekg(std::streamoff(n * sizeof(T)), std::ios::cur);
    return v;
  }
  void take(void* dst, size_t n) {
    if (!in.read(static_cast<char*>(dst), std::streamsize(n)))
      throw ConfigError(fmt::format("{}: the checkpoint is cut short", file.string()));
  }
};

void put_metrics(std::string& out, const Metrics& m) {
  put(out, m.step), put(out, m.samples), put(out, m.loss), put(out, m.excess_loss), put(out, m.dist_V);
  put(out, m.dist_A), put(out, m.dist_V_norm), put(out, m.dist_A_norm), put(out, m.nnz_A), put(out, uint8_t(m.support_recovered));
}

Metrics get_metrics(Reader& in) {
  Metrics m;
  m.step = in.get<int64_t>(), m.samples = in.get<int64_t>(), m.loss = in.get<double>(), m.excess_loss = in.get<double>();
  m.dist_V = in.get<double>(), m.dist_A = in.get<double>(), m.dist_V_norm = in.get<double>();
  m.dist_A_norm = in.get<double>(), m.nnz_A = in.get<int64_t>(), m.support_recovered = in.get<uint8_t>() != 0;
  return m;
}

}  // namespace

RunCheckpoint checkpoint_of(const RunPack& pack, size_t r, const RunResult& result, const std::string& run_id) {
  RunCheckpoint c;
  c.run_id = run_id;
  c.N = pack.N, c.T = pack.T;
  c.step = pack.step[r], c.samples = pack.samples[r], c.diverged_step = pack.diverged_step[r], c.status = pack.status[r];
  c.V.assign(pack.V_of(r), pack.V_of(r) + size_t(pack.N) * pack.N);
  c.A.assign(pack.A_of(r), pack.A_of(r) + size_t(pack.N) * pack.T);
  c.result = result;
  return c;
}

void write_checkpoint(const std::filesystem::path& file, const RunCheckpoint& c) {
  std::string out(kMagic, sizeof kMagic);
  put(out, uint64_t(c.run_id.size()));
  out += c.run_id;
  put(out, c.N), put(out, c.T), put(out, c.step), put(out, c.samples), put(out, c.diverged_step), put(out, uint8_t(c.status));
  put_array(out, c.V);
  put_array(out, c.A);
  put(out, uint64_t(c.result.curve.size()));
  for (const Metrics& m : c.result.curve) put_metrics(out, m);
  put_metrics(out, c.result.best);
  write_file_atomic(file, out);
  failpoint("checkpoint_written");
}

namespace {

// The one reader of the layout write_checkpoint writes. Every check (magic, id, array lengths,
// curve length, the file's exact size) is made either way; `whole` also reads V, A and the curve.
RunCheckpoint read_checkpoint_file(const std::filesystem::path& file, bool whole) {
  errno = 0;
  Reader in{std::ifstream(file, std::ios::binary), file};
  if (!in.in)
    throw ConfigError(fmt::format("{}: cannot read the checkpoint ({})", file.string(), std::strerror(errno ? errno : ENOENT)));
  char magic[sizeof kMagic];
  in.take(magic, sizeof magic);
  const uint64_t id_size = in.get<uint64_t>();
  if (std::memcmp(magic, kMagic, sizeof kMagic) != 0 || id_size > 64)
    throw ConfigError(fmt::format("{}: not a checkpoint of scb", file.string()));
  RunCheckpoint c;
  c.run_id.resize(id_size);
  in.take(c.run_id.data(), c.run_id.size());
  c.N = in.get<uint32_t>(), c.T = in.get<uint32_t>();
  c.step = in.get<int64_t>(), c.samples = in.get<int64_t>(), c.diverged_step = in.get<int64_t>();
  c.status = RunStatus(in.get<uint8_t>());
  c.V = in.get_array<float>(uint64_t(c.N) * c.N, whole);
  c.A = in.get_array<float>(uint64_t(c.N) * c.T, whole);
  const uint64_t points = in.get<uint64_t>();
  if (points > uint64_t(c.step) + 2) throw ConfigError(fmt::format("{}: damaged checkpoint (curve length)", file.string()));
  std::string one;
  put_metrics(one, Metrics{});
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(file, ec);
  if (ec || size != uint64_t(in.in.tellg()) + (points + 1) * one.size())
    throw ConfigError(fmt::format("{}: damaged checkpoint (size)", file.string()));
  if (!whole) return c;
  for (uint64_t k = 0; k < points; ++k) c.result.curve.push_back(get_metrics(in));
  c.result.best = get_metrics(in);
  return c;
}

}  // namespace

RunCheckpoint read_checkpoint(const std::filesystem::path& file) { return read_checkpoint_file(file, true); }

std::string checkpoint_run_id(const std::filesystem::path& file) { return read_checkpoint_file(file, false).run_id; }

void restore_checkpoint(RunPack& pack, size_t r, const RunCheckpoint& c) {
  if (c.N != pack.N || c.T != pack.T) throw std::logic_error("restore_checkpoint: the checkpoint's shape differs from the pack's");
  pack.step[r] = c.step, pack.samples[r] = c.samples, pack.diverged_step[r] = c.diverged_step, pack.status[r] = c.status;
  std::copy(c.V.begin(), c.V.end(), pack.V_of(r));
  std::copy(c.A.begin(), c.A.end(), pack.A_of(r));
}

bool CheckpointClock::due(int64_t step, double seconds) const {
  if (every.steps > 0 && step - last_step >= every.steps) return true;
  return every.seconds > 0 && seconds - last_seconds >= every.seconds;
}

}  // namespace scb
