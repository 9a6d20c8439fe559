// Planning (see plan.hpp): packs by shape, each shape's runs split greedily within the budget,
// then the execution plan that spreads them over workers. Shape grouping, splitting and the
// worker count are separate functions because each is a rule a reader checks on its own.
#include "scb/sweep/plan.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "scb/core/output.hpp"
#include "scb/core/runpack.hpp"
#include "scb/cuda/cuda_backend.hpp"
#include "scb/sweep/validate.hpp"

namespace scb {

namespace {

std::string format_bytes(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", double(b) / double(1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.2f} MiB", double(b) / double(1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.1f} KiB", double(b) / double(1ull << 10));
  return fmt::format("{} B", b);
}

// Runs that can share a pack (same N, T, algorithm and attention), groups in order of first appearance.
std::vector<std::vector<size_t>> group_by_shape(const std::vector<const Config*>& configs) {
  std::vector<std::vector<size_t>> groups;
  std::map<std::tuple<uint32_t, uint32_t, int, int>, size_t> group_of;
  for (size_t i = 0; i < configs.size(); ++i) {
    const Config& c = *configs[i];
    const auto key = std::make_tuple(c.problem.N, c.problem.T, int(c.train.algorithm), int(c.model.attention));
    auto [it, fresh] = group_of.emplace(key, groups.size());
    if (fresh) groups.emplace_back();
    groups[it->second].push_back(i);
  }
  return groups;
}

// Splits one shape's runs into packs in order: a pack closes when the next run would exceed the
// budget or the cap. A problem shared by several runs of a pack is counted once.
void split_group(const std::vector<const Config*>& configs, const std::vector<size_t>& group, uint64_t budget, size_t max_runs,
                 const std::vector<std::string>& names, bool cpu, std::vector<PlannedPack>& packs) {
  // The run cap is spread evenly: 120 runs with a cap of 64 make two packs of 60.
  size_t cap = group.size();
  if (max_runs > 0 && group.size() > max_runs) {
    const size_t n = (group.size() + max_runs - 1) / max_runs;
    cap = (group.size() + n - 1) / n;
  }
  PlannedPack cur;
  std::set<std::string> problems;
  for (size_t i : group) {
    const Config& c = *configs[i];
    const RunFootprint f = run_footprint(c, cpu);
    const uint64_t own = f.parameters + f.scratch;
    if (own + f.problem > budget)
      throw ConfigError(fmt::format(
          "--memory-budget: run {} needs {} (problem.N = {}, problem.T = {}, train.batch_size = {}) but the budget is {}; "
          "raise --memory-budget or reduce problem.T, problem.N or train.batch_size",
          i < names.size() ? names[i] : std::to_string(i), format_bytes(own + f.problem), c.problem.N, c.problem.T,
          c.train.batch_size, format_bytes(budget)));
    const std::string pk = problem_key(c);
    uint64_t add = own + (problems.count(pk) ? 0 : f.problem);
    if (!cur.runs.empty() && (cur.bytes + add > budget || cur.runs.size() >= cap)) {
      packs.push_back(std::move(cur));
      cur = PlannedPack{};
      problems.clear();
      add = own + f.problem;
    }
    cur.runs.push_back(i);
    cur.bytes += add;
    problems.insert(pk);
  }
  if (!cur.runs.empty()) packs.push_back(std::move(cur));
}

// The work of a pack, for ordering: steps x T x (N for population, batch size for SGD).
double pack_cost(const std::vector<const Config*>& configs, const PlannedPack& p) {
  double c = 0;
  for (size_t k : p.runs) {
    const Config& cfg = *configs[k];
    c += double(cfg.train.steps) * double(cfg.problem.T) *
         (cfg.train.algorithm == Algorithm::population ? double(cfg.problem.N) : double(cfg.train.batch_size));
  }
  return c;
}

}  // namespace

uint64_t parse_byte_size(const std::string& text, const std::string& what) {
  const auto bad = [&] {
    return ConfigError(fmt::format("{}: expected a positive byte count such as 8G, 512M or 1000000, got \"{}\"", what, text));
  };
  size_t pos = 0;
  double x = 0;
  try {
    x = std::stod(text, &pos);
  } catch (const std::exception&) {
    throw bad();
  }
  if (pos == 0 || text[0] == '-' || text[0] == '+' || !std::isfinite(x)) throw bad();
  std::string unit = text.substr(pos);
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  double scale = 0;
  const std::vector<std::pair<std::string, double>> units = {
      {"", 1},   {"b", 1},   {"k", 0x1p10}, {"kb", 0x1p10}, {"kib", 0x1p10}, {"m", 0x1p20}, {"mb", 0x1p20}, {"mib", 0x1p20},
      {"g", 0x1p30}, {"gb", 0x1p30}, {"gib", 0x1p30}, {"t", 0x1p40}, {"tb", 0x1p40}, {"tib", 0x1p40}};
  for (const auto& [u, f] : units)
    if (unit == u) scale = f;
  if (scale == 0) throw bad();
  const double bytes = std::floor(x * scale);
  if (!(bytes >= 1) || bytes > 1.8e19) throw bad();
  return uint64_t(bytes);
}

std::vector<PlannedPack> plan_packs(const std::vector<const Config*>& configs, uint64_t budget, size_t max_runs,
                                    const std::vector<std::string>& names, bool cpu) {
  std::vector<PlannedPack> packs;
  for (const std::vector<size_t>& g : group_by_shape(configs)) split_group(configs, g, budget, max_runs, names, cpu, packs);
  return packs;
}

uint64_t default_memory_budget(Device device) {
  const bool cuda = device == Device::cuda || (device == Device::auto_select && cuda_device_count() > 0);
  uint64_t avail = 0;
  if (cuda) {
    uint64_t free_b = 0, total_b = 0;
    cuda_memory_info(free_b, total_b);
    avail = free_b;
  } else {
    avail = available_host_memory();
  }
  return avail > 0 ? avail / 2 : (4ull << 30);
}

ExecutionPlan plan_execution(const std::vector<const Config*>& cfgs, const std::vector<std::string>& names, uint64_t budget,
                             size_t max_pack_runs, bool cpu, int threads) {
  ExecutionPlan e;
  if (max_pack_runs == 0) max_pack_runs = cpu ? 64 : 4096;  // a device wants wide packs
  e.workers = cpu ? std::max<size_t>(1, std::min<size_t>(size_t(threads), cfgs.size())) : 1;
  uint64_t largest = 0;
  for (const Config* c : cfgs) largest = std::max(largest, run_footprint(*c, cpu).total());
  while (e.workers > 1 && budget / e.workers < largest) --e.workers;
  size_t cap = max_pack_runs;
  if (e.workers > 1) {
    // Several packs per worker keep the workers evenly loaded.
    const size_t share = std::max<size_t>(1, (cfgs.size() + 4 * e.workers - 1) / (4 * e.workers));
    cap = std::min(cap, share);
  }
  e.backend_threads = e.workers > 1 ? std::max(1, threads / int(e.workers)) : threads;
  e.packs = plan_packs(cfgs, budget / e.workers, cap, names, cpu);
  std::stable_sort(e.packs.begin(), e.packs.end(),
                   [&](const PlannedPack& x, const PlannedPack& y) { return pack_cost(cfgs, x) > pack_cost(cfgs, y); });
  return e;
}

}  // namespace scb
