#pragma once
// `scb merge OUT DIR...`: the shard directories of one sweep combined into one sweep directory,
// as if the whole sweep had run there (a resume of OUT completes what the shards left undone).
#include <filesystem>
#include <vector>

namespace scb {

// Combines shard directories of one sweep (same sweep_id, disjoint run lists that together
// make the whole sweep) into OUT. ConfigError on any mismatch.
struct MergeSummary {
  size_t dirs = 0, runs = 0, complete = 0;
};
MergeSummary merge_sweep_dirs(const std::filesystem::path& out, const std::vector<std::filesystem::path>& dirs);

}  // namespace scb
