#pragma once
// Shards: which runs of a sweep this process takes. A pure function of the run count and
// "i/n" (from --shard or a SLURM array), so that shards run anywhere and merge afterwards.
#include <cstdint>
#include <string>
#include <vector>

namespace scb {

struct ShardSpec {
  uint32_t index = 0, count = 1;
  std::string text() const;
};
// "i/n" with 0 <= i < n; `what` names the option or variable in errors.
ShardSpec parse_shard(const std::string& text, const std::string& what = "--shard");
// From SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT (minus SLURM_ARRAY_TASK_MIN) when set, else 0/1.
ShardSpec shard_from_environment();
// The runs of a shard: indexes i in [0, total) with i % count == index.
std::vector<size_t> shard_runs(size_t total, const ShardSpec& shard);

}  // namespace scb
