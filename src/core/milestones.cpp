// Milestones (see milestones.hpp), read off the curve in its order.
#include "scb/core/milestones.hpp"

#include <cmath>

namespace scb {

std::vector<Milestone> milestones(const std::vector<Metrics>& curve, const std::vector<double>& thresholds) {
  std::vector<Milestone> ms;
  auto first = [&](Milestone m, auto&& hit) {
    for (const Metrics& p : curve)
      if (hit(p)) {
        m.step = p.step, m.samples = p.samples;
        break;
      }
    ms.push_back(m);
  };
  for (double level : thresholds)
    first(Milestone{"dist_A_norm", level}, [&](const Metrics& p) { return std::isfinite(p.dist_A_norm) && p.dist_A_norm <= level; });
  first(Milestone{"support_recovered", 0}, [](const Metrics& p) { return p.support_recovered; });
  return ms;
}

nlohmann::json milestones_json(const std::vector<Milestone>& ms) {
  using nlohmann::json;
  auto at = [](const Milestone& m) {
    return json{{"step", m.reached() ? json(m.step) : json(nullptr)}, {"samples", m.reached() ? json(m.samples) : json(nullptr)}};
  };
  json levels = json::array(), support = nullptr;
  for (const Milestone& m : ms) {
    if (m.metric == "dist_A_norm") {
      json e = at(m);
      e["threshold"] = m.threshold;
      levels.push_back(e);
    } else {
      support = at(m);
    }
  }
  return {{"dist_A_norm", levels}, {"support_recovered", support}};
}

}  // namespace scb
