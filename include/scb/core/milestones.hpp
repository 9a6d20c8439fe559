#pragma once
// Samples to a threshold, the quantity scaling studies fit: for each level of eval.thresholds
// the first evaluation at which dist_A_norm reached it, and the first at which the support was
// recovered (Metrics::support_recovered). Read off a run's curve, so they are exact at the
// resolution of eval.every and a resumed run reports what an uninterrupted one would.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scb/core/trainer.hpp"

namespace scb {

struct Milestone {
  std::string metric;      // "dist_A_norm" or "support_recovered"
  double threshold = 0;    // dist_A_norm level (0 for support_recovered)
  int64_t step = -1;       // -1: never reached (censored at the run's last evaluation)
  int64_t samples = -1;
  bool reached() const { return step >= 0; }
};

// One milestone per threshold, in the given order, then support_recovered.
std::vector<Milestone> milestones(const std::vector<Metrics>& curve, const std::vector<double>& thresholds);

// {"dist_A_norm": [{"threshold", "step", "samples"}...], "support_recovered": {"step", "samples"}},
// with null step and samples for a milestone never reached (the run's own summary says where
// it stopped).
nlohmann::json milestones_json(const std::vector<Milestone>& ms);

}  // namespace scb
