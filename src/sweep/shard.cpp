// Shards (see shard.hpp): parsing "i/n" from the command line or the SLURM array variables;
// both accept the same plain decimals, checked by one function.
#include "scb/sweep/shard.hpp"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "scb/core/config.hpp"

namespace scb {

namespace {

// At most nine decimal digits: no sign, no spaces, small enough for uint32_t.
bool is_small_decimal(const std::string& t) {
  return !t.empty() && t.size() <= 9 && std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
}

uint64_t environment_number(const char* value, const char* name) {
  const std::string t = value;
  if (!is_small_decimal(t))
    throw ConfigError(fmt::format("{}: expected a non-negative integer, got \"{}\" (or give --shard i/n)", name, t));
  return std::stoull(t);
}

}  // namespace

std::string ShardSpec::text() const { return fmt::format("{}/{}", index, count); }

ShardSpec parse_shard(const std::string& text, const std::string& what) {
  const ConfigError bad(fmt::format("{}: expected i/n with 0 <= i < n (such as 0/4), got \"{}\"", what, text));
  const auto slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= text.size()) throw bad;
  const std::string a = text.substr(0, slash), b = text.substr(slash + 1);
  if (!is_small_decimal(a) || !is_small_decimal(b)) throw bad;
  const uint64_t i = std::stoull(a), n = std::stoull(b);
  if (n == 0 || i >= n) throw bad;
  ShardSpec s;
  s.index = uint32_t(i);
  s.count = uint32_t(n);
  return s;
}

ShardSpec shard_from_environment() {
  const char* id = std::getenv("SLURM_ARRAY_TASK_ID");
  const char* count = std::getenv("SLURM_ARRAY_TASK_COUNT");
  const bool has_id = id && *id, has_count = count && *count;
  if (!has_id && !has_count) return {};
  // One without the other is not a job array we understand: taking the whole sweep in every
  // task would train each run once per task.
  if (has_id != has_count)
    throw ConfigError(fmt::format("{} is set but {} is not; give --shard i/n", has_id ? "SLURM_ARRAY_TASK_ID" : "SLURM_ARRAY_TASK_COUNT",
                                  has_id ? "SLURM_ARRAY_TASK_COUNT" : "SLURM_ARRAY_TASK_ID"));
  const char* min = std::getenv("SLURM_ARRAY_TASK_MIN");
  uint64_t i = environment_number(id, "SLURM_ARRAY_TASK_ID");
  const uint64_t n = environment_number(count, "SLURM_ARRAY_TASK_COUNT");
  const uint64_t lo = min && *min ? environment_number(min, "SLURM_ARRAY_TASK_MIN") : 0;
  if (i < lo || n == 0 || i - lo >= n)
    throw ConfigError(fmt::format("SLURM_ARRAY_TASK_ID: task {} is not in [{}, {}) (SLURM_ARRAY_TASK_MIN, _COUNT); give --shard i/n "
                                  "(array ids must be consecutive)",
                                  i, lo, lo + n));
  i -= lo;
  return ShardSpec{uint32_t(i), uint32_t(n)};
}

std::vector<size_t> shard_runs(size_t total, const ShardSpec& shard) {
  std::vector<size_t> out;
  for (size_t i = shard.index; i < total; i += shard.count) out.push_back(i);
  return out;
}

}  // namespace scb
