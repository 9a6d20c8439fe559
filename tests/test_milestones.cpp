// Milestones (samples to a threshold, support recovery): known curves give known crossings,
// a level never reached is censored (step -1, null in JSON), and support recovery is the strict
// top-Q rule on a known A; end to end, the reference proximal run recovers its support.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "scb/core/milestones.hpp"
#include "scb/core/problem.hpp"
#include "scb/sweep/train_run.hpp"

namespace {

scb::Metrics point(int64_t step, double dist, bool support = false) {
  scb::Metrics m;
  m.step = step, m.samples = step * 64, m.dist_A_norm = dist, m.support_recovered = support;
  return m;
}

TEST(Milestones, KnownCurveGivesKnownCrossings) {
  const std::vector<scb::Metrics> curve = {point(0, 1.2), point(100, 0.6), point(200, 0.3), point(300, NAN),
                                           point(400, 0.25, true), point(500, 0.4, true)};
  const std::vector<scb::Milestone> ms = scb::milestones(curve, {0.5, 0.3, 0.1});
  ASSERT_EQ(ms.size(), 4u);
  EXPECT_EQ(ms[0].step, 200);          // 0.6 > 0.5, then 0.3
  EXPECT_EQ(ms[1].step, 200);          // exactly at the level counts
  EXPECT_EQ(ms[1].samples, 200 * 64);
  EXPECT_FALSE(ms[2].reached());       // 0.1 never: censored
  EXPECT_EQ(ms[3].metric, "support_recovered");
  EXPECT_EQ(ms[3].step, 400);
  const nlohmann::json j = scb::milestones_json(ms);
  EXPECT_TRUE(j["dist_A_norm"][2]["step"].is_null());
  EXPECT_TRUE(j["dist_A_norm"][2]["samples"].is_null());
  EXPECT_EQ(j["dist_A_norm"][0]["threshold"], 0.5);
  EXPECT_EQ(j["support_recovered"]["step"], 400);
  EXPECT_TRUE(scb::milestones_json(scb::milestones({point(0, 1.0)}, {}))["support_recovered"]["step"].is_null());
}

TEST(Milestones, SupportRecoveryIsTheStrictTopQRule) {
  const std::vector<double> P = {0.5, 0.3, 0.2, 0.2, 0.5, 0.3, 0.3, 0.2, 0.5};
  std::vector<double> Q(3 * 4, 0.0);  // N = 3 columns of T = 4; supports {1, 3}, {0, 2}, {2, 3}
  Q[0 * 4 + 1] = Q[0 * 4 + 3] = 0.5;
  Q[1 * 4 + 0] = Q[1 * 4 + 2] = 0.5;
  Q[2 * 4 + 2] = Q[2 * 4 + 3] = 0.5;
  const scb::Problem pb = scb::problem_from_matrices(3, 4, P, Q, 2, "P", "Q");
  std::vector<float> A = {0.1f, 0.4f, 0.1f, 0.4f, 0.3f, 0.2f, 0.3f, 0.2f, 0.0f, 0.1f, 0.5f, 0.4f};
  EXPECT_TRUE(scb::support_recovered(pb, A.data()));
  A[0] = 0.4f;  // a tie with a support entry: not recovered
  EXPECT_FALSE(scb::support_recovered(pb, A.data()));
  A[0] = 0.1f, A[9] = 0.45f;  // an off-support entry above a support entry
  EXPECT_FALSE(scb::support_recovered(pb, A.data()));
}

TEST(Milestones, ReferenceProximalRunRecoversItsSupport) {
  const scb::Config cfg = scb::resolve_run_config(scb::load_json_file(std::string(SCB_SOURCE_DIR) + "/configs/reference.json"),
                                                  SCB_SOURCE_DIR, {"train.steps=8000"}, {});
  std::unique_ptr<scb::SingleRun> run = scb::prepare_single_run(cfg, scb::Device::cpu, 1);
  scb::train_single_run(*run);
  const std::vector<scb::Milestone> ms = scb::milestones(run->result.curve, cfg.eval.thresholds);
  EXPECT_TRUE(ms.back().reached());
  EXPECT_EQ(ms.back().step % cfg.eval.every, 0);
  EXPECT_FALSE(run->result.curve.front().support_recovered);  // uniform a_t = 1/T at step 0: all ties
}

}  // namespace
