#pragma once
// Which runs keep their parameters (--save-params): none, all, or the best run of each
// algorithm. The choice of the best is a rule on runs.csv rows, kept here so that a resumed
// sweep, a live sweep and a merge pick the same run.
#include <limits>
#include <map>
#include <string>

namespace scb {

enum class SaveParams { none, best, all };
SaveParams parse_save_params(const std::string& text);
std::string to_string(SaveParams s);

// Best saved run per algorithm (lowest final dist_A_norm among ok runs; ties: smaller run_id).
struct BestRun {
  std::string run_id;
  double value = std::numeric_limits<double>::infinity();
  bool better(double v, const std::string& id) const;
};

// The best run of each algorithm among runs.csv rows (run_id -> line) under `header`;
// `algorithm_of` maps run_id to algorithm (rows of other runs are passed over).
std::map<std::string, BestRun> best_from_rows(const std::string& header, const std::map<std::string, std::string>& rows,
                                              const std::map<std::string, std::string>& algorithm_of);

}  // namespace scb
