#pragma once
// Validation that needs the problems: what expansion cannot check without building them. The
// problems built here are kept (ProblemCache) and shared by the runs that train on them, so
// validating a sweep costs each distinct problem once.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "scb/core/config.hpp"
#include "scb/core/problem.hpp"
#include "scb/sweep/expand.hpp"

namespace scb {

// The problems built so far, by problem_key: each is built once and shared by its runs.
struct ProblemCache {
  std::map<std::string, std::shared_ptr<const Problem>> by_key;
  std::shared_ptr<const Problem> get(const Config& cfg);
};
// Runs with equal keys train on the same problem (its base_dir and resolved "problem" object).
std::string problem_key(const Config& cfg);

// Validates what expansion cannot: builds every distinct problem once (shared by the runs
// with the same resolved "problem" object) and loads model.init files once per distinct
// file set. Throws ConfigError naming the run and key.
void validate_runs(const Sweep& sweep, const std::vector<size_t>& runs, ProblemCache& cache);

}  // namespace scb
