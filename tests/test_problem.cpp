// docs/model.md section 1 and docs/rng.md: problem generation from a seed (determinism,
// stochasticity, supports, weights), the Gamma sampler, and validation of explicit P and Q.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include "scb/core/npy.hpp"
#include "scb/core/population.hpp"
#include "scb/core/problem.hpp"
#include "test_util.hpp"

namespace {

using scbtest::json;
using scbtest::make_config;

std::shared_ptr<const scb::Problem> problem_of(const json& problem_keys) {
  return scb::make_problem(make_config(json{{"problem", problem_keys}}));
}

void expect_valid_chain(const scb::Problem& pb) {
  const uint32_t N = pb.N;
  ASSERT_EQ(pb.P.size(), size_t(N) * N);
  ASSERT_EQ(pb.mu.size(), N);
  for (uint32_t j = 0; j < N; ++j) {
    double s = 0;
    for (uint32_t i = 0; i < N; ++i) {
      EXPECT_GE(pb.P[i * N + j], 0.0);
      s += pb.P[i * N + j];
    }
    EXPECT_NEAR(s, 1.0, 1e-12) << "column " << j;
  }
  double total = 0;
  for (uint32_t i = 0; i < N; ++i) {
    double pm = 0;
    for (uint32_t j = 0; j < N; ++j) pm += pb.P[i * N + j] * pb.mu[j];
    EXPECT_NEAR(pm, pb.mu[i], 1e-12) << "(P mu)_" << i;
    EXPECT_GT(pb.mu[i], 0.0);
    total += pb.mu[i];
  }
  EXPECT_NEAR(total, 1.0, 1e-12);
}

void expect_supports(const scb::Problem& pb, uint32_t Q, uint32_t lo) {
  ASSERT_EQ(pb.q_ptr.size(), pb.N + 1);
  EXPECT_EQ(pb.q_ptr[0], 0u);
  EXPECT_EQ(pb.Q, Q);
  for (uint32_t k = 0; k < pb.N; ++k) {
    const uint32_t b = pb.q_ptr[k], e = pb.q_ptr[k + 1];
    ASSERT_EQ(e - b, Q) << "column " << k;
    double s = 0;
    for (uint32_t i = b; i < e; ++i) {
      EXPECT_GE(pb.q_pos[i], lo) << "column " << k;
      EXPECT_LT(pb.q_pos[i], pb.T) << "column " << k;
      if (i > b) EXPECT_LT(pb.q_pos[i - 1], pb.q_pos[i]) << "column " << k << ": positions must be distinct, ascending";
      EXPECT_GT(pb.q_w[i], 0.0);
      s += pb.q_w[i];
    }
    EXPECT_NEAR(s, 1.0, 1e-12) << "column " << k;
  }
}

TEST(Problem, SameSeedIsBitIdentical) {
  const json keys = {{"N", 5}, {"T", 60}, {"Q", 4}, {"seed", 42}, {"weights", "dirichlet"}};
  const auto a = problem_of(keys), b = problem_of(keys);
  EXPECT_EQ(a->P, b->P);  // vector == compares every double exactly
  EXPECT_EQ(a->mu, b->mu);
  EXPECT_EQ(a->q_ptr, b->q_ptr);
  EXPECT_EQ(a->q_pos, b->q_pos);
  EXPECT_EQ(a->q_w, b->q_w);
  EXPECT_EQ(a->mu_table.threshold, b->mu_table.threshold);
  EXPECT_EQ(a->P_threshold, b->P_threshold);
  EXPECT_EQ(a->q_alias, b->q_alias);
  EXPECT_EQ(a->bayes_loss, b->bayes_loss);

  json other = keys;
  other["seed"] = 43;
  const auto c = problem_of(other);
  EXPECT_NE(a->P, c->P);
  EXPECT_NE(a->q_pos, c->q_pos);
  EXPECT_NE(a->q_w, c->q_w);
}

TEST(Problem, GeneratedChainIsStochasticAndStationary) {
  for (uint64_t seed : {1ull, 2ull, 3ull, 0xfedcba9876543210ull}) {
    for (double alpha : {0.2, 1.0, 5.0}) {
      const auto pb = problem_of({{"N", 7}, {"T", 30}, {"Q", 3}, {"seed", seed}, {"P", {{"dirichlet", alpha}}}});
      SCOPED_TRACE(testing::Message() << "seed " << seed << " alpha " << alpha);
      expect_valid_chain(*pb);
      expect_supports(*pb, 3, 0);
      for (double w : pb->q_w) EXPECT_DOUBLE_EQ(w, 1.0 / 3);
    }
  }
}

TEST(Problem, SupportEdgeCases) {
  // Q = T: every position, once.
  const auto full = problem_of({{"N", 3}, {"T", 6}, {"Q", 6}});
  expect_supports(*full, 6, 0);
  for (uint32_t k = 0; k < 3; ++k)
    for (uint32_t t = 0; t < 6; ++t) EXPECT_EQ(full->q_pos[full->q_ptr[k] + t], t);
  // Q = 1: a single position with weight 1.
  const auto one = problem_of({{"N", 4}, {"T", 50}, {"Q", 1}, {"weights", "dirichlet"}});
  expect_supports(*one, 1, 0);
  for (double w : one->q_w) EXPECT_DOUBLE_EQ(w, 1.0);
}

TEST(Problem, RecentSupportStaysInWindow) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const auto pb = problem_of({{"N", 5}, {"T", 200}, {"Q", 4}, {"seed", seed}, {"support", "recent"}, {"window", 10}});
    expect_supports(*pb, 4, 190);
  }
  // window = Q: exactly the last Q positions.
  const auto tight = problem_of({{"N", 3}, {"T", 100}, {"Q", 3}, {"support", "recent"}, {"window", 3}});
  for (uint32_t k = 0; k < 3; ++k)
    for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(tight->q_pos[tight->q_ptr[k] + i], 97 + i);
  // window 0 means T: positions spread over the whole context.
  std::set<uint32_t> seen;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    const auto pb = problem_of({{"N", 3}, {"T", 20}, {"Q", 2}, {"seed", seed}, {"support", "recent"}});
    expect_supports(*pb, 2, 0);
    seen.insert(pb->q_pos.begin(), pb->q_pos.end());
  }
  EXPECT_LT(*seen.begin(), 10u);
}

TEST(Problem, SupportPositionsAreUniform) {
  // Each position of [T] (or of the window) is in a support with probability Q / W.
  const uint32_t T = 10, Q = 3;
  std::vector<double> count(T, 0), recent(T, 0);
  double columns = 0;
  for (uint64_t seed = 1; seed <= 400; ++seed) {
    const auto pb = problem_of({{"N", 4}, {"T", T}, {"Q", Q}, {"seed", seed}});
    for (uint32_t p : pb->q_pos) count[p] += 1;
    const auto rc = problem_of({{"N", 4}, {"T", T}, {"Q", Q}, {"seed", seed}, {"support", "recent"}, {"window", 5}});
    for (uint32_t p : rc->q_pos) recent[p] += 1;
    columns += 4;
  }
  double chi2 = 0, chi2r = 0;
  for (uint32_t t = 0; t < T; ++t) {
    const double e = columns * Q / T;
    chi2 += (count[t] - e) * (count[t] - e) / e;
    if (t < 5) {
      EXPECT_EQ(recent[t], 0.0);
    } else {
      const double er = columns * Q / 5;
      chi2r += (recent[t] - er) * (recent[t] - er) / er;
    }
  }
  EXPECT_LT(chi2, scbtest::chi2_critical_1e6(T - 1));
  EXPECT_LT(chi2r, scbtest::chi2_critical_1e6(4));
}

TEST(Problem, DirichletWeightsSumToOne) {
  const auto pb = problem_of({{"N", 6}, {"T", 80}, {"Q", 5}, {"weights", "dirichlet"}, {"weights_alpha", 0.5}});
  expect_supports(*pb, 5, 0);
  bool any_unequal = false;
  for (double w : pb->q_w) any_unequal |= std::abs(w - 0.2) > 1e-3;
  EXPECT_TRUE(any_unequal) << "Dirichlet weights came out uniform";
  EXPECT_GT(pb->bayes_loss, 0.0);
  EXPECT_LT(pb->bayes_loss, 0.5);
}

TEST(Problem, DirichletColumnsHaveTheRightSpread) {
  // Dirichlet(alpha) over N outcomes: each entry has mean 1/N and variance (1/N)(1 - 1/N)/(N alpha + 1).
  for (double alpha : {0.3, 1.0, 4.0}) {
    const uint32_t N = 4;
    double s = 0, s2 = 0, n = 0;
    for (uint64_t seed = 1; seed <= 300; ++seed) {
      const auto pb = problem_of({{"N", N}, {"T", 4}, {"Q", 1}, {"seed", seed}, {"P", {{"dirichlet", alpha}}}});
      for (double x : pb->P) {
        s += x;
        s2 += x * x;
        n += 1;
      }
    }
    const double mean = s / n, var = s2 / n - mean * mean;
    const double want = (1.0 / N) * (1 - 1.0 / N) / (N * alpha + 1);
    EXPECT_NEAR(mean, 1.0 / N, 1e-12);  // columns sum to one exactly
    EXPECT_NEAR(var, want, 0.15 * want) << "alpha " << alpha;
  }
}

TEST(Problem, GammaDrawMoments) {
  for (double alpha : {0.3, 1.0, 2.5, 10.0}) {
    const int n = 40000;
    double s = 0, s2 = 0;
    for (int i = 0; i < n; ++i) {
      const double g = scb::gamma_draw(9, alpha, scb::kStreamPDirichlet, uint32_t(i % 200), uint32_t(i / 200));
      ASSERT_GT(g, 0.0);
      ASSERT_TRUE(std::isfinite(g));
      s += g;
      s2 += g * g;
    }
    const double mean = s / n, var = s2 / n - mean * mean;
    // Gamma(alpha, 1): mean = var = alpha; sd of the sample variance ~ alpha sqrt((2 + 6/alpha)/n).
    EXPECT_NEAR(mean, alpha, 6 * std::sqrt(alpha / n)) << "alpha " << alpha;
    EXPECT_NEAR(var, alpha, 6 * alpha * std::sqrt((2 + 6 / alpha) / n)) << "alpha " << alpha;
  }
  // Deterministic in its coordinates, and every coordinate matters.
  const double g = scb::gamma_draw(1, 2.0, scb::kStreamPDirichlet, 3, 4);
  EXPECT_EQ(g, scb::gamma_draw(1, 2.0, scb::kStreamPDirichlet, 3, 4));
  EXPECT_NE(g, scb::gamma_draw(2, 2.0, scb::kStreamPDirichlet, 3, 4));
  EXPECT_NE(g, scb::gamma_draw(1, 2.0, scb::kStreamQWeights, 3, 4));
  EXPECT_NE(g, scb::gamma_draw(1, 2.0, scb::kStreamPDirichlet, 4, 3));
}

TEST(Problem, StationaryDistributionOfTwoStateChain) {
  // P = [[1-a, b], [a, 1-b]] (columns: current state) has mu = (b, a) / (a + b).
  const double a = 0.3, b = 0.05;
  const std::vector<double> P = {1 - a, b, a, 1 - b};
  const std::vector<double> mu = scb::stationary_distribution(P, 2);
  EXPECT_NEAR(mu[0], b / (a + b), 1e-14);
  EXPECT_NEAR(mu[1], a / (a + b), 1e-14);
}

TEST(Problem, ExplicitMatricesRoundTrip) {
  // A generated problem fed back through problem_from_matrices gives the same problem.
  const auto gen = problem_of({{"N", 4}, {"T", 25}, {"Q", 3}, {"seed", 5}, {"weights", "dirichlet"}});
  const scb::Problem pb = scb::problem_from_matrices(4, 25, gen->P, gen->dense_Q_by_columns(), 3, "P", "Q");
  EXPECT_EQ(pb.q_ptr, gen->q_ptr);
  EXPECT_EQ(pb.q_pos, gen->q_pos);
  EXPECT_EQ(pb.q_w, gen->q_w);
  for (uint32_t i = 0; i < 4; ++i) EXPECT_NEAR(pb.mu[i], gen->mu[i], 1e-14);
  EXPECT_NEAR(pb.bayes_loss, gen->bayes_loss, 1e-14);

  // And through the config: JSON arrays (Q_matrix is T x N, rows = positions).
  json Pj = json::array(), Qj = json::array();
  for (uint32_t i = 0; i < 4; ++i) {
    json row = json::array();
    for (uint32_t j = 0; j < 4; ++j) row.push_back(gen->P[i * 4 + j]);
    Pj.push_back(row);
  }
  const std::vector<double> Qd = gen->dense_Q_by_columns();
  for (uint32_t t = 0; t < 25; ++t) {
    json row = json::array();
    for (uint32_t k = 0; k < 4; ++k) row.push_back(Qd[k * 25 + t]);
    Qj.push_back(row);
  }
  const auto cfgd = problem_of({{"N", 4}, {"T", 25}, {"Q", 3}, {"P", Pj}, {"Q_matrix", Qj}});
  EXPECT_EQ(cfgd->P, gen->P);
  EXPECT_EQ(cfgd->q_pos, gen->q_pos);
  EXPECT_EQ(cfgd->q_w, gen->q_w);

  // And from .npy files (relative paths resolve against the config's directory).
  scbtest::TempDir dir("npyP");
  scb::write_npy(dir / "P.npy", {4, 4}, gen->P.data());
  json doc = {{"problem", {{"N", 4}, {"T", 25}, {"Q", 3}, {"seed", 5}, {"weights", "dirichlet"}, {"P", "P.npy"}}}};
  const auto fromfile = scb::make_problem(scb::resolve_config(doc, dir.path()));
  EXPECT_EQ(fromfile->P, gen->P);
  EXPECT_EQ(fromfile->q_pos, gen->q_pos);
}

// ---- Validation of explicit inputs ----

template <typename F>
std::string config_error_of(F&& f) {
  try {
    f();
  } catch (const scb::ConfigError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("WRONG EXCEPTION TYPE: ") + e.what();
  }
  return "NO EXCEPTION";
}

void expect_P_rejected(const std::vector<double>& P, uint32_t N, const std::string& words) {
  const std::string msg = config_error_of([&] { scb::validate_transition_matrix(P, N, "problem.P"); });
  EXPECT_EQ(msg.rfind("problem.P", 0), 0u) << msg;
  EXPECT_NE(msg.find(words), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(Validation, AcceptsIrreducibleAperiodicChains) {
  EXPECT_NO_THROW(scb::validate_transition_matrix({0.5, 1.0, 0.5, 0.0}, 2, "problem.P"));
  EXPECT_NO_THROW(scb::validate_transition_matrix({1.0}, 1, "problem.P"));
  // A 3-cycle plus one self-loop is aperiodic.
  EXPECT_NO_THROW(scb::validate_transition_matrix({0.5, 0, 1, 0.5, 0, 0, 0, 1, 0}, 3, "problem.P"));
  // Cycles 0 -> 1 -> 0 and 0 -> 1 -> 2 -> 0, no self-loop: lengths 2 and 3, gcd 1.
  EXPECT_NO_THROW(scb::validate_transition_matrix({0, 0.5, 1, 1, 0, 0, 0, 0.5, 0}, 3, "problem.P"));
}

TEST(Validation, RejectsNonStochastic) {
  expect_P_rejected({0.6, 0.5, 0.5, 0.5}, 2, "sum");
  expect_P_rejected({0.5, 0.5, 0.5, 0.5 - 1e-8}, 2, "sum");
}

TEST(Validation, RejectsReducible) {
  // {0, 1} is closed: state 2 is never reached from it.
  expect_P_rejected({0.5, 0.5, 0.2, 0.5, 0.5, 0.2, 0, 0, 0.6}, 3, "irreducible");
  expect_P_rejected({1, 0, 0, 1}, 2, "irreducible");
}

TEST(Validation, RejectsPeriodic) {
  expect_P_rejected({0, 1, 1, 0}, 2, "periodic");
  expect_P_rejected({0, 0, 1, 1, 0, 0, 0, 1, 0}, 3, "periodic");  // 3-cycle
  // Bipartite 4-state chain: period 2.
  expect_P_rejected({0, 0.5, 0, 0.5, 0.5, 0, 0.5, 0, 0, 0.5, 0, 0.5, 0.5, 0, 0.5, 0}, 4, "periodic");
}

TEST(Validation, ExplicitInputErrorsNameTheKey) {
  auto err = [](const json& problem) { return config_error_of([&] { problem_of(problem); }); };
  auto starts = [](const std::string& msg, const std::string& key) {
    EXPECT_EQ(msg.rfind(key, 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  };
  // Wrong shape: 2 rows for N = 3, a short row.
  starts(err({{"N", 3}, {"P", {{0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}}}}), "problem.P");
  starts(err({{"N", 2}, {"P", {{0.5, 0.5}, {0.5}}}}), "problem.P");
  starts(err({{"N", 2}, {"P", {{0.5, "x"}, {0.5, 0.5}}}}), "problem.P");
  starts(err({{"N", 2}, {"P", {{1.5, 0.5}, {-0.5, 0.5}}}}), "problem.P");
  // Non-stochastic, periodic.
  starts(err({{"N", 2}, {"P", {{0.6, 0.5}, {0.5, 0.5}}}}), "problem.P");
  starts(err({{"N", 2}, {"P", {{0.0, 1.0}, {1.0, 0.0}}}}), "problem.P");
  // A .npy path that does not exist, and one of the wrong shape.
  starts(err({{"N", 2}, {"P", "no/such/file.npy"}}), "problem.P");
  scbtest::TempDir dir("badshape");
  const double eye[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  scb::write_npy(dir / "P3.npy", {3, 3}, eye);
  starts(err({{"N", 2}, {"P", (dir / "P3.npy").string()}}), "problem.P");

  // Q_matrix: wrong shape (N x T instead of T x N), columns not summing to 1, too many non-zeros.
  const json P2 = {{0.5, 0.5}, {0.5, 0.5}};
  starts(err({{"N", 2}, {"T", 3}, {"Q", 2}, {"P", P2}, {"Q_matrix", {{1, 0, 0}, {0, 1, 0}}}}), "problem.Q_matrix");
  starts(err({{"N", 2}, {"T", 3}, {"Q", 2}, {"P", P2}, {"Q_matrix", {{0.5, 1}, {0.4, 0}, {0, 0}}}}), "problem.Q_matrix");
  const std::string many =
      err({{"N", 2}, {"T", 3}, {"Q", 2}, {"P", P2}, {"Q_matrix", {{0.4, 1}, {0.3, 0}, {0.3, 0}}}});
  starts(many, "problem.Q_matrix");
  EXPECT_NE(many.find("non-zeros"), std::string::npos) << many;
  // The same Q with Q = 3 is fine.
  EXPECT_NO_THROW(problem_of({{"N", 2}, {"T", 3}, {"Q", 3}, {"P", P2}, {"Q_matrix", {{0.4, 1}, {0.3, 0}, {0.3, 0}}}}));
}

TEST(Validation, ProblemFromMatricesChecksQ) {
  const std::vector<double> P = {0.5, 0.5, 0.5, 0.5};
  // Column 1 has three non-zeros, max_support 2.
  const std::vector<double> Q = {1, 0, 0, 0.2, 0.3, 0.5};
  EXPECT_THROW(scb::problem_from_matrices(2, 3, P, Q, 2, "P", "Q"), scb::ConfigError);
  EXPECT_NO_THROW(scb::problem_from_matrices(2, 3, P, Q, 3, "P", "Q"));
  const std::vector<double> negative = {1, 0, 0, 1.2, -0.2, 0};
  EXPECT_THROW(scb::problem_from_matrices(2, 3, P, negative, 3, "P", "Q"), scb::ConfigError);
  const std::vector<double> short_sum = {1, 0, 0, 0.5, 0.4, 0};
  EXPECT_THROW(scb::problem_from_matrices(2, 3, P, short_sum, 3, "P", "Q"), scb::ConfigError);
  EXPECT_THROW(scb::problem_from_matrices(2, 3, {0, 1, 1, 0}, Q, 3, "P", "Q"), scb::ConfigError);
}

}  // namespace
