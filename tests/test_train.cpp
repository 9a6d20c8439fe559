// docs/model.md section 5 and docs/rng.md end to end on the CPU backend: determinism across
// thread counts and pack layouts, the Gaussian gradient noise of the population simulation, the
// training driver's evaluation cadence, and the reference acceptance check (proximal beats SGD
// on configs/reference.json).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "scb/core/backend.hpp"
#include "scb/cpu/cpu_backend.hpp"
#include "scb/core/model.hpp"
#include "scb/core/population.hpp"
#include "scb/core/runpack.hpp"
#include "scb/core/trainer.hpp"
#include "test_util.hpp"

namespace {

using scbtest::json;

void expect_same_metrics(const scb::Metrics& a, const scb::Metrics& b, const std::string& what) {
  EXPECT_EQ(a.step, b.step) << what;
  EXPECT_EQ(a.samples, b.samples) << what;
  EXPECT_EQ(a.loss, b.loss) << what;
  EXPECT_EQ(a.excess_loss, b.excess_loss) << what;
  EXPECT_EQ(a.dist_V, b.dist_V) << what;
  EXPECT_EQ(a.dist_A, b.dist_A) << what;
  EXPECT_EQ(a.dist_V_norm, b.dist_V_norm) << what;
  EXPECT_EQ(a.dist_A_norm, b.dist_A_norm) << what;
  EXPECT_EQ(a.nnz_A, b.nnz_A) << what;
}

void expect_same_result(const scb::RunResult& a, const scb::RunResult& b, const std::string& what) {
  EXPECT_EQ(a.status, b.status) << what;
  EXPECT_EQ(a.diverged_step, b.diverged_step) << what;
  ASSERT_EQ(a.curve.size(), b.curve.size()) << what;
  for (size_t i = 0; i < a.curve.size(); ++i) expect_same_metrics(a.curve[i], b.curve[i], what + " curve " + std::to_string(i));
  expect_same_metrics(a.final_metrics, b.final_metrics, what + " final");
  expect_same_metrics(a.best, b.best, what + " best");
}

// Three runs of one algorithm: two share a problem, the third has its own.
std::vector<scb::Config> determinism_configs(const char* alg) {
  const bool pop = std::string(alg) == "population";
  auto cfg = [&](uint64_t problem_seed, uint64_t seed, double lambda, uint32_t B) {
    json train = {{"algorithm", alg}, {"steps", 30}, {"batch_size", B}, {"seed", seed}, {"stage1_steps", 10},
                  {"lambda", lambda}, {"lr_A", 0.05}};
    if (pop) {
      // Small noise: the noisy A-gradient is not projected (see the skipped test
      // Updates.ProjectedPopulationNoisePreservesColumnSums), so large noise drains columns
      // below zero sum and renormalisation marks the run diverged.
      train["noise"] = 0.05;
      train["lr_A"] = 0.02;
    }
    return scbtest::make_config(
        {{"problem", {{"N", 4}, {"T", 70}, {"Q", 3}, {"seed", problem_seed}}}, {"train", train}, {"eval", {{"every", 10}}}});
  };
  return {cfg(1, 0, 0.01, 24), cfg(1, 5, 0.05, 16), cfg(2, 1, 0.01, 8)};
}

struct Trained {
  scb::RunPack pack;
  std::vector<scb::RunResult> results;
};

Trained train(const std::vector<scb::Config>& cfgs, const std::vector<std::shared_ptr<const scb::Problem>>& pbs,
              int threads) {
  Trained t;
  for (size_t i = 0; i < cfgs.size(); ++i) t.pack.add_run(cfgs[i], pbs[i]);
  auto backend = scb::make_cpu_backend(threads);
  t.results = scb::train_pack(t.pack, *backend);
  return t;
}

// The default thread count (0) may change the threads from step to step (thread_choice.hpp):
// steps big enough to run in parallel, for long enough that it tries another count, give the
// bits of one thread.
TEST(Determinism, DefaultThreadCountGivesTheBitsOfOneThread) {
  const scb::Config cfg = scbtest::make_config(
      {{"problem", {{"N", 3}, {"T", 1000}, {"Q", 2}, {"seed", 3}}},
       {"train", {{"algorithm", "proximal"}, {"steps", 400}, {"batch_size", 96}, {"stage1_steps", 100},
                  {"lambda", 0.0005}, {"seed", 2}}},
       {"eval", {{"every", 100}}}});
  const auto pb = scb::make_problem(cfg);
  const Trained one = train({cfg, cfg}, {pb, pb}, 1), dflt = train({cfg, cfg}, {pb, pb}, 0);
  EXPECT_EQ(std::memcmp(one.pack.V.data(), dflt.pack.V.data(), one.pack.V.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(one.pack.A.data(), dflt.pack.A.data(), one.pack.A.size() * sizeof(float)), 0);
  for (size_t r = 0; r < 2; ++r) expect_same_result(one.results[r], dflt.results[r], "default threads");
}

TEST(Determinism, ThreadCountAndPackLayoutDoNotChangeResults) {
  for (const char* alg : {"sgd", "proximal", "population"}) {
    SCOPED_TRACE(alg);
    const std::vector<scb::Config> cfgs = determinism_configs(alg);
    const auto pb1 = scb::make_problem(cfgs[0]), pb2 = scb::make_problem(cfgs[2]);
    const std::vector<std::shared_ptr<const scb::Problem>> pbs = {pb1, pb1, pb2};
    const Trained one = train(cfgs, pbs, 1), two = train(cfgs, pbs, 2);
    ASSERT_EQ(one.pack.V.size(), two.pack.V.size());
    EXPECT_EQ(std::memcmp(one.pack.V.data(), two.pack.V.data(), one.pack.V.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(one.pack.A.data(), two.pack.A.data(), one.pack.A.size() * sizeof(float)), 0);
    for (size_t r = 0; r < cfgs.size(); ++r) {
      EXPECT_EQ(one.results[r].status, scb::RunStatus::done);
      EXPECT_EQ(one.pack.step[r], 30);
      expect_same_result(one.results[r], two.results[r], std::string(alg) + " run " + std::to_string(r) + " threads");
      // The same run alone in its own pack (and with another thread count) is bit-identical too.
      const Trained alone = train({cfgs[r]}, {pbs[r]}, r % 2 ? 1 : 2);
      EXPECT_EQ(std::memcmp(alone.pack.V_of(0), one.pack.V_of(r), sizeof(float) * 4 * 4), 0) << "run " << r;
      EXPECT_EQ(std::memcmp(alone.pack.A_of(0), one.pack.A_of(r), sizeof(float) * 4 * 70), 0) << "run " << r;
      expect_same_result(alone.results[0], one.results[r], std::string(alg) + " run " + std::to_string(r) + " alone");
    }
    // The runs really differ from each other (seeds, lambdas and problems are used).
    EXPECT_NE(std::memcmp(one.pack.A_of(0), one.pack.A_of(1), sizeof(float) * 4 * 70), 0);
    EXPECT_NE(one.results[0].final_metrics.loss, one.results[2].final_metrics.loss);
  }
}

// The CPU backend's two schedules (cpu_backend.cpp) give the same bits: three runs on two threads
// take the phased one (fewer than 4 runs per thread; steps above the parallel threshold, so both
// threads work), on one thread every run's whole step is one item. N = 40 puts V transposed into
// the residual and splits dV into two blocks of rows; each algorithm, with noise and softmax.
TEST(Determinism, PhasedAndWholeRunSchedulesGiveTheSameBits) {
  for (const char* kind : {"sgd", "proximal", "population", "softmax"}) {
    SCOPED_TRACE(kind);
    std::vector<scb::Config> cfgs;
    for (uint64_t seed : {0, 1, 2}) {
      json train = {{"algorithm", std::string(kind) == "softmax" ? "sgd" : kind}, {"steps", 12}, {"batch_size", 40},
                    {"seed", seed}, {"stage1_steps", 4}, {"lambda", 0.002 * double(seed + 1)}, {"lr_A", 0.02}};
      if (std::string(kind) == "population") train["noise"] = 0.02;
      json doc = {{"problem", {{"N", 40}, {"T", 2048}, {"Q", 3}, {"seed", 1}}}, {"train", train}, {"eval", {{"every", 4}}}};
      if (std::string(kind) == "softmax") doc["model"] = {{"attention", "softmax"}}, doc["train"]["lr_A"] = 20;
      cfgs.push_back(scbtest::make_config(doc));
    }
    const auto pb = scb::make_problem(cfgs[0]);
    const Trained phased = train(cfgs, {pb, pb, pb}, 2), whole = train(cfgs, {pb, pb, pb}, 1);
    EXPECT_EQ(std::memcmp(phased.pack.V.data(), whole.pack.V.data(), phased.pack.V.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(phased.pack.A.data(), whole.pack.A.data(), phased.pack.A.size() * sizeof(float)), 0);
    for (size_t r = 0; r < cfgs.size(); ++r) {
      expect_same_result(phased.results[r], whole.results[r], "schedules");
      EXPECT_EQ(phased.results[r].status, scb::RunStatus::done) << "run " << r;
      EXPECT_EQ(phased.pack.step[r], 12) << "run " << r;
    }
    EXPECT_NE(std::memcmp(phased.pack.A_of(0), phased.pack.A_of(1), sizeof(float) * 40 * 2048), 0);
  }
}

// The phased schedule's items at small N (cpu_backend.cpp): groups of sixteen short samples
// (their metas and tokens drawn together, the last group partial) and pairs of long ones, each
// scattered in pairs as whole-run steps do: the bits of one thread. Steps above the parallel
// threshold (B T >= 65,536), one run on two threads, so the phased schedule runs.
TEST(Determinism, PhasedPairsAndGroupsAtSmallNGiveTheBitsOfOneThread) {
  for (uint32_t T : {100u, 300u}) {
    const uint32_t B = T == 100 ? 700 : 223;  // 43 groups and 12 samples; 111 pairs and one
    const scb::Config cfg = scbtest::make_config(
        {{"problem", {{"N", 3}, {"T", T}, {"Q", 2}, {"seed", 5}}},
         {"train", {{"algorithm", "proximal"}, {"steps", 20}, {"batch_size", B}, {"stage1_steps", 5},
                    {"lambda", 0.001}, {"seed", 4}}},
         {"eval", {{"every", 10}}}});
    const auto pb = scb::make_problem(cfg);
    const Trained two = train({cfg}, {pb}, 2), one = train({cfg}, {pb}, 1);
    EXPECT_EQ(std::memcmp(two.pack.V.data(), one.pack.V.data(), one.pack.V.size() * sizeof(float)), 0) << "T=" << T;
    EXPECT_EQ(std::memcmp(two.pack.A.data(), one.pack.A.data(), one.pack.A.size() * sizeof(float)), 0) << "T=" << T;
    expect_same_result(two.results[0], one.results[0], "T=" + std::to_string(T));
  }
}

TEST(Determinism, RepeatedTrainingIsIdentical) {
  const std::vector<scb::Config> cfgs = determinism_configs("proximal");
  const auto pb = scb::make_problem(cfgs[0]);
  const Trained a = train({cfgs[0]}, {pb}, 2), b = train({cfgs[0]}, {pb}, 2);
  EXPECT_EQ(a.pack.A, b.pack.A);
  EXPECT_EQ(a.pack.V, b.pack.V);
}

// ---- Gaussian gradient noise ----

TEST(Noise, GradientNoiseIsStandardNormal) {
  const uint64_t n = 400000;
  double s = 0, s2 = 0, s4 = 0, lag1 = 0, lag2 = 0, tail = 0, prev = 0, prev2 = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const double z = scb::gradient_noise(17, 3, 0, i);
    ASSERT_TRUE(std::isfinite(z));
    s += z;
    s2 += z * z;
    s4 += z * z * z * z;
    tail += std::abs(z) > 3;
    if (i >= 1) lag1 += z * prev;
    if (i >= 2) lag2 += z * prev2;
    prev2 = prev;
    prev = z;
  }
  const double mean = s / n, var = s2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 5 / std::sqrt(double(n)));
  EXPECT_NEAR(var, 1.0, 5 * std::sqrt(2.0 / n));
  EXPECT_NEAR(s4 / n, 3.0, 0.1);                 // normal kurtosis
  EXPECT_NEAR(tail / n, 0.0027, 0.0006);         // P(|z| > 3)
  EXPECT_NEAR(lag1 / n, 0.0, 5 / std::sqrt(double(n)));
  EXPECT_NEAR(lag2 / n, 0.0, 5 / std::sqrt(double(n)));
  // Deterministic in (seed, step, matrix, index); each coordinate matters.
  const double z = scb::gradient_noise(17, 3, 0, 12345);
  EXPECT_EQ(z, scb::gradient_noise(17, 3, 0, 12345));
  EXPECT_NE(z, scb::gradient_noise(18, 3, 0, 12345));
  EXPECT_NE(z, scb::gradient_noise(17, 4, 0, 12345));
  EXPECT_NE(z, scb::gradient_noise(17, 3, 1, 12345));
  EXPECT_NE(z, scb::gradient_noise(17, 3, 0, 12346));
}

TEST(Noise, PopulationStepAddsNoiseOfStdNoiseOverSqrtB) {
  // Two population runs that differ only in train.noise: after one step (no projection, no
  // preconditioning, no threshold) their difference is -lr * (noise / sqrt(B)) * xi per coordinate.
  const double sigma = 0.5, lr = 0.01;
  const uint32_t B = 16, N = 30, T = 100;
  auto cfg = [&](double noise) {
    return scbtest::make_config({{"problem", {{"N", N}, {"T", T}, {"Q", 3}, {"seed", 4}}},
                                 {"train", {{"algorithm", "population"}, {"noise", noise}, {"batch_size", B}, {"seed", 9},
                                            {"lr_V", lr}, {"lr_A", lr}, {"project", false}, {"precondition", false},
                                            {"stage1_steps", 100}, {"steps", 1}}}});
  };
  const scb::Config noisy = cfg(sigma), clean = cfg(0);
  const auto pb = scb::make_problem(clean);
  scb::RunPack pack;
  pack.add_run(noisy, pb);
  pack.add_run(clean, pb);
  auto backend = scb::make_cpu_backend(1);
  backend->attach(pack);
  backend->step();
  backend->download();
  const double sd = sigma / std::sqrt(double(B));
  auto stats = [&](const float* a, const float* b, size_t n, uint32_t matrix) {
    double s = 0, s2 = 0, maxdev = 0;
    for (size_t e = 0; e < n; ++e) {
      const double xi = -(double(a[e]) - double(b[e])) / (lr * sd);
      s += xi;
      s2 += xi * xi;
      maxdev = std::max(maxdev, std::abs(xi - scb::gradient_noise(9, 0, matrix, e)));
    }
    const double mean = s / n;
    EXPECT_NEAR(mean, 0.0, 5 / std::sqrt(double(n))) << "matrix " << matrix;
    EXPECT_NEAR(s2 / n - mean * mean, 1.0, 6 * std::sqrt(2.0 / n)) << "matrix " << matrix;
    // The documented layout: matrix 0 = A by columns, 1 = V row-major, index = coordinate.
    EXPECT_LT(maxdev, 1e-2) << "matrix " << matrix;
  };
  stats(pack.A_of(0), pack.A_of(1), size_t(N) * T, 0);
  stats(pack.V_of(0), pack.V_of(1), size_t(N) * N, 1);
}

// ---- Training driver ----

TEST(Trainer, EvaluatesOnScheduleAndTracksTheBest) {
  const scb::Config cfg = scbtest::make_config(scbtest::small_doc(
      {{"train", {{"algorithm", "proximal"}, {"steps", 25}, {"stage1_steps", 5}, {"batch_size", 8}, {"lambda", 0.02}}},
       {"eval", {{"every", 10}}}}));
  const auto pb = scb::make_problem(cfg);
  const Trained t = train({cfg}, {pb}, 1);
  const scb::RunResult& res = t.results[0];
  ASSERT_EQ(res.curve.size(), 4u);
  const int64_t steps[] = {0, 10, 20, 25};
  size_t best = 0;
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(res.curve[i].step, steps[i]);
    EXPECT_EQ(res.curve[i].samples, steps[i] * 8);
    if (res.curve[i].dist_A_norm < res.curve[best].dist_A_norm) best = i;
  }
  expect_same_metrics(res.final_metrics, res.curve.back(), "final");
  expect_same_metrics(res.best, res.curve[best], "best");
  EXPECT_EQ(res.status, scb::RunStatus::done);
  EXPECT_EQ(t.pack.samples[0], 25 * 8);
  // The reported final metrics are those of the parameters left in the pack.
  const scb::Metrics m = scb::compute_metrics(*pb, t.pack.V_of(0), t.pack.A_of(0));
  EXPECT_EQ(m.loss, res.final_metrics.loss);
  EXPECT_EQ(m.dist_A_norm, res.final_metrics.dist_A_norm);
  // The first point is the initialisation: a = 1/T, V = mu 1^T.
  std::vector<float> V0(pb->N * pb->N), A0(size_t(pb->N) * pb->T);
  scb::initial_parameters(cfg, *pb, V0.data(), A0.data());
  EXPECT_EQ(scb::compute_metrics(*pb, V0.data(), A0.data()).loss, res.curve[0].loss);
}

TEST(Trainer, ZeroStepsEvaluatesTheStartOnly) {
  const scb::Config cfg = scbtest::make_config(scbtest::small_doc({{"train", {{"steps", 0}}}}));
  const Trained t = train({cfg}, {scb::make_problem(cfg)}, 1);
  ASSERT_EQ(t.results[0].curve.size(), 1u);
  EXPECT_EQ(t.results[0].curve[0].step, 0);
  EXPECT_EQ(t.results[0].status, scb::RunStatus::done);
}

// ---- The acceptance check of docs/model.md section 5 ----

TEST(Reference, ProximalBeatsSgdOnTheReferenceConfig) {
  const json doc = scb::load_json_file(std::filesystem::path(SCB_SOURCE_DIR) / "configs" / "reference.json");
  std::vector<scb::Config> prox_cfgs, sgd_cfgs;
  std::vector<std::shared_ptr<const scb::Problem>> pbs;
  for (uint64_t seed : {1u, 2u}) {
    json p = doc, s = doc;
    p["problem"]["seed"] = seed;
    s["problem"]["seed"] = seed;
    s["train"]["algorithm"] = "sgd";
    prox_cfgs.push_back(scbtest::make_config(p));
    sgd_cfgs.push_back(scbtest::make_config(s));
    pbs.push_back(scb::make_problem(prox_cfgs.back()));
  }
  // One thread: results are bit-identical for any thread count (Determinism above), and a
  // parallel suite leaves no core spare.
  const Trained prox = train(prox_cfgs, pbs, 1), sgd = train(sgd_cfgs, pbs, 1);
  for (size_t r = 0; r < 2; ++r) {
    SCOPED_TRACE(testing::Message() << "problem.seed " << r + 1);
    const scb::RunResult &p = prox.results[r], &s = sgd.results[r];
    ASSERT_EQ(p.status, scb::RunStatus::done);
    ASSERT_EQ(s.status, scb::RunStatus::done);
    EXPECT_EQ(p.final_metrics.step, 16000);
    EXPECT_EQ(p.final_metrics.samples, 16000 * 64);
    EXPECT_EQ(s.final_metrics.samples, 16000 * 64);
    EXPECT_EQ(p.curve.size(), 33u);
    const double pd = p.final_metrics.dist_A_norm, sd = s.final_metrics.dist_A_norm;
    EXPECT_LE(pd, 0.3) << "proximal final dist_A_norm";
    EXPECT_LE(pd, 0.6 * sd) << "proximal " << pd << " vs sgd " << sd;
    EXPECT_LE(p.best.dist_A_norm, pd);
    // Proximal training is sparse, SGD is not.
    EXPECT_LT(p.final_metrics.nnz_A, s.final_metrics.nnz_A);
  }
}

}  // namespace
