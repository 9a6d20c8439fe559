// The end-of-step rules of scb/core/step_rules.hpp, which the CPU backend and the CUDA finish
// kernel both call: every case of the stage, the divergence verdict, the pending scales and the
// counters, with the CPU backend's convention (a diverged step counts, whatever its cause) as the
// reference. Then the same conventions observed through the CPU backend on real runs.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "scb/core/model.hpp"
#include "scb/core/step_rules.hpp"
#include "scb/cpu/cpu_backend.hpp"
#include "scb/core/trainer.hpp"
#include "test_util.hpp"

namespace {

using scb::RunCounters;
using scb::StepFaults;
using scb::StepStage;
using scb::StepVerdict;

constexpr bool kSgd = true, kSoftmax = true;

TEST(StepRules, StageBoundary) {
  // proximal / population: nothing before stage1_steps, threshold and renormalisation from it on.
  for (int64_t step : {0, 4}) {
    const StepStage s = scb::step_stage(!kSgd, !kSoftmax, step, 5, 0.01f, true);
    EXPECT_FALSE(s.threshold) << step;
    EXPECT_FALSE(s.renormalize) << step;
  }
  for (int64_t step : {5, 6, 1000}) {
    const StepStage s = scb::step_stage(!kSgd, !kSoftmax, step, 5, 0.01f, true);
    EXPECT_TRUE(s.threshold) << step;
    EXPECT_TRUE(s.renormalize) << step;
  }
  // lambda = 0 renormalises without thresholding; renormalize = false thresholds only.
  EXPECT_FALSE(scb::step_stage(!kSgd, !kSoftmax, 5, 5, 0.0f, true).threshold);
  EXPECT_TRUE(scb::step_stage(!kSgd, !kSoftmax, 5, 5, 0.0f, true).renormalize);
  EXPECT_TRUE(scb::step_stage(!kSgd, !kSoftmax, 5, 5, 0.01f, false).threshold);
  EXPECT_FALSE(scb::step_stage(!kSgd, !kSoftmax, 5, 5, 0.01f, false).renormalize);
  // stage1_steps = 0: from the first step.
  EXPECT_TRUE(scb::step_stage(!kSgd, !kSoftmax, 0, 0, 0.01f, true).renormalize);
  // Plain SGD and softmax attention never, at any step.
  for (int64_t step : {0, 5, 1000}) {
    const StepStage sgd = scb::step_stage(kSgd, !kSoftmax, step, 5, 0.01f, true);
    const StepStage soft = scb::step_stage(!kSgd, kSoftmax, step, 5, 0.01f, true);
    EXPECT_FALSE(sgd.threshold || sgd.renormalize) << step;
    EXPECT_FALSE(soft.threshold || soft.renormalize) << step;
  }
}

TEST(StepRules, ColumnDrainedIsNotPositiveAndFinite) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  for (double drained : {0.0, -0.0, -1e-300, -1.0, -inf, inf, nan, -nan}) EXPECT_TRUE(scb::column_drained(drained)) << drained;
  for (double fine : {1.0, 1e-300, 4.9e-324, DBL_MAX, 0.5}) EXPECT_FALSE(scb::column_drained(fine)) << fine;
  // The same predicate as the CPU backend's former test, !(sum > 0) || !isfinite(sum).
  for (double x : {0.0, -0.0, -1.0, 1.0, inf, -inf, nan, DBL_MAX, 4.9e-324})
    EXPECT_EQ(scb::column_drained(x), !(x > 0) || !std::isfinite(x)) << x;
}

const StepStage kRenorm{true, true};     // proximal stage
const StepStage kStageOne{false, false};  // stage 1, SGD, softmax

TEST(StepRules, CleanStep) {
  const StepVerdict v = scb::step_verdict(kRenorm, StepFaults{false, false, false});
  EXPECT_FALSE(v.diverged);
  EXPECT_TRUE(v.rescale);
  EXPECT_TRUE(v.refresh_attention);
  EXPECT_EQ(scb::pending_scale(v, 4.0), 0.25f);
  const StepVerdict one = scb::step_verdict(kStageOne, StepFaults{false, false, false});
  EXPECT_FALSE(one.diverged);
  EXPECT_FALSE(one.rescale);
  EXPECT_EQ(scb::pending_scale(one, 4.0), 1.0f);
}

TEST(StepRules, VBadOrABadAloneDiverges) {
  for (const bool v_bad : {true, false})
    for (const StepStage& stage : {kRenorm, kStageOne}) {
      const StepVerdict v = scb::step_verdict(stage, StepFaults{v_bad, !v_bad, false});
      EXPECT_TRUE(v.diverged) << v_bad;
      EXPECT_FALSE(v.rescale) << v_bad;
      EXPECT_FALSE(v.refresh_attention) << v_bad;
      EXPECT_EQ(scb::pending_scale(v, 4.0), 1.0f) << v_bad;
      EXPECT_FALSE(scb::column_sums_decide(stage, v_bad, !v_bad)) << v_bad;
    }
}

TEST(StepRules, BothBadDivergesOnce) {
  const StepVerdict v = scb::step_verdict(kRenorm, StepFaults{true, true, true});
  EXPECT_TRUE(v.diverged);
  EXPECT_FALSE(v.rescale);
  const RunCounters c = scb::count_step(RunCounters{7, 70, -1, false}, 10, v.diverged);
  EXPECT_EQ(c.step, 8);
  EXPECT_EQ(c.diverged_step, 8);
}

TEST(StepRules, DrainedColumnDivergesAndLeavesEveryScaleAtOne) {
  EXPECT_TRUE(scb::column_sums_decide(kRenorm, false, false));
  const StepVerdict v = scb::step_verdict(kRenorm, StepFaults{false, false, true});
  EXPECT_TRUE(v.diverged);
  EXPECT_FALSE(v.rescale);
  // Columns before the drained one (sums 2 and 4 here) are not rescaled either.
  for (double sum : {2.0, 4.0, 0.0, -1.0}) EXPECT_EQ(scb::pending_scale(v, sum), 1.0f) << sum;
  // A drained flag means nothing where the sums do not decide: no renormalisation this step.
  EXPECT_FALSE(scb::column_sums_decide(kStageOne, false, false));
  EXPECT_FALSE(scb::step_verdict(kStageOne, StepFaults{false, false, true}).diverged);
}

TEST(StepRules, ADivergedStepCountsWhateverTheCause) {
  // The step that starts at counter s diverges: s + 1 steps taken, diverged_step = s + 1, and its
  // samples consumed, for a bad V, a bad A or a drained column alike.
  for (const StepFaults f : {StepFaults{true, false, false}, StepFaults{false, true, false},
                             StepFaults{true, true, false}, StepFaults{false, false, true}}) {
    const StepVerdict v = scb::step_verdict(kRenorm, f);
    const RunCounters c = scb::count_step(RunCounters{3, 48, -1, false}, 16, v.diverged);
    EXPECT_TRUE(c.diverged);
    EXPECT_EQ(c.step, 4);
    EXPECT_EQ(c.samples, 64);
    EXPECT_EQ(c.diverged_step, 4);
  }
  const RunCounters clean = scb::count_step(RunCounters{3, 48, -1, false}, 16, false);
  EXPECT_FALSE(clean.diverged);
  EXPECT_EQ(clean.step, 4);
  EXPECT_EQ(clean.samples, 64);
  EXPECT_EQ(clean.diverged_step, -1);
  // A run already diverged keeps its first diverged_step.
  const RunCounters again = scb::count_step(RunCounters{9, 90, 5, true}, 10, true);
  EXPECT_EQ(again.diverged_step, 5);
}

TEST(StepRules, LastStep) {
  // The last step (counter steps - 1) counts like any other: the run ends at `steps`, and a
  // divergence in it records diverged_step = steps.
  const int64_t steps = 20;
  const RunCounters done = scb::count_step(RunCounters{steps - 1, (steps - 1) * 8, -1, false}, 8, false);
  EXPECT_EQ(done.step, steps);
  EXPECT_EQ(done.samples, steps * 8);
  EXPECT_FALSE(done.diverged);
  const RunCounters bad = scb::count_step(RunCounters{steps - 1, (steps - 1) * 8, -1, false}, 8,
                                          scb::step_verdict(kRenorm, StepFaults{true, false, false}).diverged);
  EXPECT_EQ(bad.step, steps);
  EXPECT_EQ(bad.diverged_step, steps);
}

// ---- Through the CPU backend ----

struct Outcome {
  scb::RunStatus status;
  int64_t step, samples, diverged_step;
};

Outcome train(const scbtest::json& train) {
  const scb::Config cfg = scbtest::make_config(scbtest::small_doc({{"train", train}}));
  scb::RunPack pack;
  pack.add_run(cfg, scb::make_problem(cfg));
  auto backend = scb::make_cpu_backend(1);
  scb::train_pack(pack, *backend);
  return {pack.status[0], pack.step[0], pack.samples[0], pack.diverged_step[0]};
}

TEST(StepRules, CpuBackendCountsTheDivergedStepForEveryCause) {
  // Bad through V (lr_V huge: the first step), through A (a huge lr_A without renormalisation; V
  // stays the clean control run's, since a step's V update reads the A from before it) and by a
  // drained column (a threshold that empties every column: the first step). The diverged step
  // is counted: diverged_step = step, and its samples consumed.
  EXPECT_EQ(train({{"algorithm", "sgd"}}).status, scb::RunStatus::done);
  const Outcome v = train({{"algorithm", "proximal"}, {"lr_V", 1e9}, {"stage1_steps", 0}});
  const Outcome a = train({{"algorithm", "sgd"}, {"lr_A", 1e9}});
  const Outcome drained = train({{"algorithm", "proximal"}, {"lambda", 1000}, {"stage1_steps", 0}});
  for (const Outcome& o : {v, a, drained}) {
    EXPECT_EQ(o.status, scb::RunStatus::diverged);
    EXPECT_GE(o.step, 1);
    EXPECT_EQ(o.diverged_step, o.step);
    EXPECT_EQ(o.samples, 16 * o.step);
  }
  EXPECT_EQ(v.step, 1);
  EXPECT_EQ(drained.step, 1);
  // Divergence at the stage boundary: stage 1 is clean, the first thresholded step drains.
  const Outcome late = train({{"algorithm", "proximal"}, {"lambda", 1000}, {"stage1_steps", 5}});
  EXPECT_EQ(late.status, scb::RunStatus::diverged);
  EXPECT_EQ(late.step, 6);
  EXPECT_EQ(late.diverged_step, 6);
}

}  // namespace

namespace {

// A one-run pack trained on the CPU backend until it ends (done or diverged), parameters downloaded.
scb::RunPack trained(const scbtest::json& train) {
  const scb::Config cfg = scbtest::make_config(scbtest::small_doc({{"train", train}}));
  scb::RunPack pack;
  pack.add_run(cfg, scb::make_problem(cfg));
  auto backend = scb::make_cpu_backend(1);
  scb::train_pack(pack, *backend);
  return pack;
}

double column_sum(const scb::RunPack& pack, uint32_t k) {
  double s = 0;
  for (uint32_t t = 0; t < pack.T; ++t) s += pack.A_of(0)[size_t(k) * pack.T + t];
  return s;
}

}  // namespace

// A step that drains a column diverges the run and leaves every column as the update left it,
// the columns before the drained one included (no rescale by 1/sum): its A equals, bit for bit,
// the same steps without renormalisation. Four steps of stage 1 spread the queried columns
// (B = 1: some column may stay uniform at 1/T); then a threshold tau = eta_A lambda above 1/T
// empties a column no sample moved while the others keep a positive sum. Seeds where column 0
// survives and a later column drains are the case the CUDA backend got wrong.
TEST(StepRules, DrainedColumnLeavesEarlierColumnsUnscaled) {
  int cases = 0;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    const scbtest::json train = {{"algorithm", "proximal"}, {"stage1_steps", 4}, {"batch_size", 1}, {"lr_A", 50.0},
                                 {"lambda", 0.0006},        {"seed", seed},      {"steps", 20}};
    const scb::RunPack drained = trained(train);
    if (drained.status[0] != scb::RunStatus::diverged || drained.step[0] != 5 || !(column_sum(drained, 0) > 0)) continue;
    scbtest::json plain = train;
    plain["renormalize"] = false;
    plain["steps"] = 5;
    const scb::RunPack unscaled = trained(plain);
    ++cases;
    EXPECT_EQ(drained.diverged_step[0], 5);
    EXPECT_NE(column_sum(drained, 0), 1.0) << "column 0 was renormalised";
    EXPECT_EQ(0, std::memcmp(drained.A.data(), unscaled.A.data(), drained.A.size() * sizeof(float))) << seed;
  }
  EXPECT_GE(cases, 3) << "too few seeds drain a later column while column 0 survives";
}
