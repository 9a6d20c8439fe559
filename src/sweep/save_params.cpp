// Saved parameters (see save_params.hpp): the mode's names and the best-run rule.
#include "scb/sweep/save_params.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>

#include "scb/core/config.hpp"
#include "scb/sweep/tables.hpp"

namespace scb {

SaveParams parse_save_params(const std::string& text) {
  if (text == "none") return SaveParams::none;
  if (text == "best") return SaveParams::best;
  if (text == "all") return SaveParams::all;
  throw ConfigError(fmt::format("--save-params: expected best, all or none, got \"{}\"", text));
}

std::string to_string(SaveParams s) { return s == SaveParams::none ? "none" : s == SaveParams::best ? "best" : "all"; }

bool BestRun::better(double v, const std::string& id) const {
  return std::isfinite(v) && (run_id.empty() || v < value || (v == value && id < run_id));
}

std::map<std::string, BestRun> best_from_rows(const std::string& header, const std::map<std::string, std::string>& rows,
                                              const std::map<std::string, std::string>& algorithm_of) {
  std::map<std::string, BestRun> best;
  const size_t ci_status = column_index(header, "status"), ci_dist = column_index(header, "dist_A_norm");
  if (ci_status == std::string::npos || ci_dist == std::string::npos) return best;
  for (const auto& [id, line] : rows) {
    const std::vector<std::string> f = split_csv_line(line);
    if (f.size() <= std::max(ci_status, ci_dist) || f[ci_status] != "ok") continue;
    const double v = std::strtod(f[ci_dist].c_str(), nullptr);
    auto alg = algorithm_of.find(id);
    if (alg == algorithm_of.end()) continue;
    BestRun& b = best[alg->second];
    if (b.better(v, id)) b.run_id = id, b.value = v;
  }
  return best;
}

}  // namespace scb
