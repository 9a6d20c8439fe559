// Validation (see validate.hpp): one pass over the shard's runs, building problems through the
// cache and loading each set of init files once; errors name the run only when an axis of the
// sweep touches the section at fault, else "base".
#include "scb/sweep/validate.hpp"

#include <set>

#include <fmt/format.h>

#include "scb/core/runpack.hpp"
#include "scb/sweep/run_id.hpp"

namespace scb {

namespace {

bool axis_in_section(const Sweep& s, const std::string& section) {
  for (const SweepAxis& a : s.axes)
    if (a.name.rfind(section + ".", 0) == 0) return true;
  return false;
}

std::string run_context(const Sweep& s, const SweepRun& r, const std::string& section) {
  if (!axis_in_section(s, section)) return "base";
  return fmt::format("run {} ({})", r.index, describe_point(s, r));
}

}  // namespace

std::string problem_key(const Config& cfg) {
  return cfg.base_dir.string() + "\n" + cfg.problem_canonical;
}

std::shared_ptr<const Problem> ProblemCache::get(const Config& cfg) {
  const std::string key = problem_key(cfg);
  auto it = by_key.find(key);
  if (it != by_key.end()) return it->second;
  std::shared_ptr<const Problem> pb = make_problem(cfg);
  by_key.emplace(key, pb);
  return pb;
}

void validate_runs(const Sweep& s, const std::vector<size_t>& runs, ProblemCache& cache) {
  std::set<std::string> init_checked;
  for (size_t i : runs) {
    const SweepRun& r = s.runs[i];
    std::shared_ptr<const Problem> pb;
    try {
      pb = cache.get(r.config);
    } catch (const ConfigError& e) {
      throw ConfigError(fmt::format("{}: {}", run_context(s, r, "problem"), e.what()));
    }
    if (r.config.model.init == Init::files) {
      const std::string key = fmt::format("{}|{}|{}|{}", r.config.model.init_V, r.config.model.init_A, pb->N, pb->T);
      if (init_checked.insert(key).second) {
        std::vector<float> V(size_t(pb->N) * pb->N), A(size_t(pb->N) * pb->T);
        try {
          initial_parameters(r.config, *pb, V.data(), A.data());
        } catch (const ConfigError& e) {
          throw ConfigError(fmt::format("{}: {}", run_context(s, r, "model"), e.what()));
        }
      }
    }
  }
}

}  // namespace scb
