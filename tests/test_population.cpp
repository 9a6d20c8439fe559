// docs/model.md sections 3, 4 and 6: the exact population loss against Monte Carlo over forward_sample, the
// population and per-sample gradients against finite differences and against each other, and
// the reported metrics against direct dense computations.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "scb/core/population.hpp"
#include "scb/core/problem.hpp"
#include "scb/core/trainer.hpp"
#include "scb/cpu/cpu_backend.hpp"
#include "scb/cpu/sample.hpp"
#include "test_util.hpp"

namespace {

using scbtest::json;

std::shared_ptr<const scb::Problem> small_problem(uint64_t seed = 3, uint32_t N = 4, uint32_t T = 12, uint32_t Q = 3,
                                                  const char* weights = "dirichlet") {
  return scb::make_problem(
      scbtest::make_config(json{{"problem", {{"N", N}, {"T", T}, {"Q", Q}, {"seed", seed}, {"weights", weights}}}}));
}

// Non-trivial parameters: V entries in [-0.3, 0.9], A entries in [-0.5/T, 2.5/T] (column sums not 1).
template <typename Real>
void random_params(uint32_t N, uint32_t T, uint64_t seed, std::vector<Real>& V, std::vector<Real>& A) {
  V.resize(size_t(N) * N);
  A.resize(size_t(N) * T);
  for (size_t e = 0; e < V.size(); ++e) V[e] = static_cast<Real>(-0.3 + 1.2 * scbtest::test_uniform(seed, uint32_t(e), 1));
  for (size_t e = 0; e < A.size(); ++e)
    A[e] = static_cast<Real>((-0.5 + 3.0 * scbtest::test_uniform(seed, uint32_t(e), 2)) / T);
}

struct SampleBuffers {
  std::vector<uint32_t> tokens, counts;
  std::vector<double> h, r, g;
  SampleBuffers(uint32_t N, uint32_t T) : tokens(T), counts(N), h(N), r(N), g(N) {}
  scb::SampleResult run(const scb::Problem& pb, const float* V, const float* A, uint64_t seed, uint32_t step,
                        uint32_t sample) {
    return scb::forward_sample(pb.view(), V, A, seed, step, sample, tokens.data(), h.data(), counts.data(), r.data(),
                               g.data());
  }
  double loss() const {
    double s = 0;
    for (double x : r) s += x * x;
    return 0.5 * s;
  }
};

struct MonteCarlo {
  double mean, se;
};

MonteCarlo mc_loss(const scb::Problem& pb, const float* V, const float* A, int M, uint64_t seed) {
  SampleBuffers buf(pb.N, pb.T);
  double s = 0, s2 = 0;
  for (int i = 0; i < M; ++i) {
    buf.run(pb, V, A, seed, uint32_t(i) >> 16, uint32_t(i) & 0xffffu);
    const double l = buf.loss();
    s += l;
    s2 += l * l;
  }
  const double mean = s / M;
  return {mean, std::sqrt(std::max(s2 / M - mean * mean, 0.0) / M)};
}

TEST(PopulationLoss, MatchesMonteCarlo) {
  const auto pb = small_problem();
  const int M = 1000000;
  for (uint64_t pseed : {1ull, 2ull}) {
    std::vector<float> V, A;
    random_params(pb->N, pb->T, pseed, V, A);
    const double L = scb::population_loss(*pb, V.data(), A.data());
    const MonteCarlo mc = mc_loss(*pb, V.data(), A.data(), M, 77 + pseed);
    EXPECT_NEAR(mc.mean, L, 4 * mc.se) << "params " << pseed << ": MC " << mc.mean << " +- " << mc.se;
    EXPECT_LT(mc.se, 2e-3 * L);  // the test has resolution
    // The formula is not just close to some constant: it separates distinct parameters.
    EXPECT_GT(L - pb->bayes_loss, 10 * mc.se);
  }
}

TEST(PopulationLoss, BayesLossMatchesMonteCarloAtTruth) {
  for (const char* weights : {"uniform", "dirichlet"}) {
    const auto pb = small_problem(5, 4, 12, 3, weights);
    std::vector<float> V(pb->P.begin(), pb->P.end());
    const std::vector<double> Qd = pb->dense_Q_by_columns();
    std::vector<float> A(Qd.begin(), Qd.end());
    const MonteCarlo mc = mc_loss(*pb, V.data(), A.data(), 1000000, 11);
    EXPECT_NEAR(mc.mean, pb->bayes_loss, 4 * mc.se) << weights;
    EXPECT_NEAR(scb::population_loss(*pb, pb->P.data(), Qd.data()), pb->bayes_loss, 1e-12) << weights;
    EXPECT_DOUBLE_EQ(scb::bayes_loss(*pb), pb->bayes_loss);
  }
}

TEST(PopulationLoss, BayesPredictorIsOptimal) {
  const auto pb = small_problem(8, 5, 9, 2);
  for (uint64_t s = 1; s <= 50; ++s) {
    std::vector<double> V, A;
    random_params(pb->N, pb->T, s, V, A);
    EXPECT_GE(scb::population_loss(*pb, V.data(), A.data()), pb->bayes_loss - 1e-12);
  }
}

// A plain mirror of docs/model.md section 4 in the engine's order of operations: every sum from
// +0 in ascending index order, one column at a time.
template <typename Real>
double plain_loss(const scb::Problem& pb, const Real* V, const Real* A) {
  const uint32_t N = pb.N, T = pb.T;
  const double* mu = pb.mu.data();
  std::vector<double> Vmu(N);
  double trDPtV = 0, trDVtV = 0, muVmu = 0, vmu2 = 0;
  for (uint32_t i = 0; i < N; ++i) {
    double vmu = 0;
    for (uint32_t j = 0; j < N; ++j) {
      const double v = static_cast<double>(V[size_t(i) * N + j]);
      vmu += v * mu[j];
      trDPtV += mu[j] * pb.P[size_t(i) * N + j] * v;
      trDVtV += mu[j] * v * v;
    }
    Vmu[i] = vmu;
  }
  for (uint32_t i = 0; i < N; ++i) muVmu += mu[i] * Vmu[i], vmu2 += Vmu[i] * Vmu[i];
  const double c1 = trDPtV - muVmu, c2 = muVmu, c3 = trDVtV - vmu2, c4 = vmu2;
  double L = 0;
  for (uint32_t k = 0; k < N; ++k) {
    double sa = 0, n2 = 0, qa = 0, sq = 0;
    for (uint32_t t = 0; t < T; ++t) {
      const double x = static_cast<double>(A[size_t(k) * T + t]);
      sa += x;
      n2 += x * x;
    }
    for (uint32_t s = pb.q_ptr[k]; s < pb.q_ptr[k + 1]; ++s) {
      qa += pb.q_w[s] * static_cast<double>(A[size_t(k) * T + pb.q_pos[s]]);
      sq += pb.q_w[s];
    }
    L += mu[k] * (0.5 - qa * c1 - sa * sq * c2 + 0.5 * n2 * c3 + 0.5 * sa * sa * c4);
  }
  return L;
}

// The engine sums eight columns side by side in vector lanes; each column's sums must still be
// the one-column loop's, bit for bit (a one-ulp change of a sum would hide from the golden
// digests, which print the loss to 10 digits): N below, at and past a group of eight.
TEST(PopulationLoss, EveryColumnSummedInPositionOrderBitForBit) {
  for (uint32_t N : {7u, 8u, 12u, 17u}) {
    const auto pb = small_problem(5, N, 53, 3);
    std::vector<float> Vf, Af;
    std::vector<double> Vd, Ad;
    random_params(N, pb->T, 11, Vf, Af);
    random_params(N, pb->T, 12, Vd, Ad);
    const double got_f = scb::population_loss(*pb, Vf.data(), Af.data()), want_f = plain_loss(*pb, Vf.data(), Af.data());
    const double got_d = scb::population_loss(*pb, Vd.data(), Ad.data()), want_d = plain_loss(*pb, Vd.data(), Ad.data());
    uint64_t a, b;
    std::memcpy(&a, &got_f, 8), std::memcpy(&b, &want_f, 8);
    EXPECT_EQ(a, b) << "float, N = " << N << ": " << got_f << " against " << want_f;
    std::memcpy(&a, &got_d, 8), std::memcpy(&b, &want_d, 8);
    EXPECT_EQ(a, b) << "double, N = " << N << ": " << got_d << " against " << want_d;
  }
}

TEST(PopulationLoss, ClosedFormAtStationaryInit) {
  // V = mu 1^T, a = 1/T: V h = mu, and x_o ~ mu, so L = 1/2 (1 - ||mu||^2).
  const auto pb = small_problem(4, 5, 30, 4);
  const uint32_t N = pb->N, T = pb->T;
  std::vector<double> V(N * N), A(size_t(N) * T, 1.0 / T);
  double mu2 = 0;
  for (uint32_t i = 0; i < N; ++i) {
    mu2 += pb->mu[i] * pb->mu[i];
    for (uint32_t j = 0; j < N; ++j) V[i * N + j] = pb->mu[i];
  }
  EXPECT_NEAR(scb::population_loss(*pb, V.data(), A.data()), 0.5 * (1 - mu2), 1e-14);
}

TEST(Sampling, TokensQueriesPositionsAndOutputsFollowTheModel) {
  const auto pb = small_problem(6, 4, 12, 3);
  const uint32_t N = pb->N, T = pb->T;
  const scb::ProblemView pv = pb->view();
  const int M = 200000;
  std::vector<double> tok(N, 0), ks(size_t(N) * T, 0), trans(size_t(N) * N, 0);
  for (int i = 0; i < M; ++i) {
    const scb::SampleMeta m = scb::draw_sample_meta(pv, 5, 0, uint32_t(i));
    ks[size_t(m.k) * T + m.s] += 1;
    uint32_t x[4];
    for (uint32_t blk = 0; blk < T / 4; ++blk) {
      scb::draw_token_block(pv, 5, 0, uint32_t(i), blk, x);
      for (uint32_t l = 0; l < 4; ++l) {
        tok[x[l]] += 1;
        ASSERT_EQ(x[l], scb::draw_token(pv, 5, 0, uint32_t(i), 4 * blk + l));
      }
    }
    const uint32_t xs = scb::draw_token(pv, 5, 0, uint32_t(i), m.s);
    trans[size_t(scb::draw_output(pv, xs, m.output_word)) * N + xs] += 1;
  }
  const std::vector<double> Qd = pb->dense_Q_by_columns();
  double c_tok = 0, c_ks = 0, c_tr = 0, df_ks = -1, df_tr = -1;
  for (uint32_t j = 0; j < N; ++j) {
    const double e = pb->mu[j] * M * T;
    c_tok += (tok[j] - e) * (tok[j] - e) / e;
  }
  for (uint32_t k = 0; k < N; ++k)
    for (uint32_t t = 0; t < T; ++t) {
      const double e = pb->mu[k] * Qd[k * T + t] * M;
      if (e == 0) {
        EXPECT_EQ(ks[k * T + t], 0.0) << "position " << t << " outside the support of q^(" << k << ")";
        continue;
      }
      c_ks += (ks[k * T + t] - e) * (ks[k * T + t] - e) / e;
      df_ks += 1;
    }
  for (uint32_t i = 0; i < N; ++i)
    for (uint32_t j = 0; j < N; ++j) {
      const double e = pb->P[i * N + j] * pb->mu[j] * M;
      if (e == 0) continue;
      c_tr += (trans[i * N + j] - e) * (trans[i * N + j] - e) / e;
      df_tr += 1;
    }
  EXPECT_LT(c_tok, scbtest::chi2_critical_1e6(N - 1));
  EXPECT_LT(c_ks, scbtest::chi2_critical_1e6(df_ks));
  EXPECT_LT(c_tr, scbtest::chi2_critical_1e6(df_tr));
}

// ---- Gradients ----

TEST(PopulationGradient, MatchesCentralDifferences) {
  const auto pb = small_problem(7, 4, 12, 3);
  const uint32_t N = pb->N, T = pb->T;
  std::vector<double> V, A;
  random_params(N, T, 3, V, A);
  std::vector<double> dV(N * N), dA(size_t(N) * T);
  scb::population_gradient(*pb, V.data(), A.data(), dV.data(), dA.data());
  // L is quadratic in any single coordinate, so central differences are exact up to rounding.
  const double h = 1e-3;
  auto fd = [&](std::vector<double>& x, size_t e) {
    const double x0 = x[e];
    x[e] = x0 + h;
    const double up = scb::population_loss(*pb, V.data(), A.data());
    x[e] = x0 - h;
    const double down = scb::population_loss(*pb, V.data(), A.data());
    x[e] = x0;
    return (up - down) / (2 * h);
  };
  double max_grad = 0;
  for (size_t e = 0; e < V.size(); ++e) {
    EXPECT_NEAR(dV[e], fd(V, e), 1e-10) << "dV[" << e / N << "][" << e % N << "]";
    max_grad = std::max(max_grad, std::abs(dV[e]));
  }
  for (size_t e = 0; e < A.size(); ++e) {
    EXPECT_NEAR(dA[e], fd(A, e), 1e-10) << "dA column " << e / T << " position " << e % T;
    max_grad = std::max(max_grad, std::abs(dA[e]));
  }
  EXPECT_GT(max_grad, 1e-3);  // not a trivially zero gradient

  // The affine terms reproduce dA, and their mean is the column mean.
  std::vector<double> dV2(N * N);
  const scb::AttentionGradientTerms terms = scb::population_gradient_terms(*pb, V.data(), A.data(), dV2.data());
  const std::vector<double> Qd = pb->dense_Q_by_columns();
  for (uint32_t k = 0; k < N; ++k) {
    double mean = 0;
    for (uint32_t t = 0; t < T; ++t) {
      const double x = terms.base[k] + terms.slope[k] * A[k * T + t] + terms.spike[k] * Qd[k * T + t];
      EXPECT_NEAR(x, dA[k * T + t], 1e-14);
      mean += dA[k * T + t] / T;
    }
    EXPECT_NEAR(terms.mean[k], mean, 1e-14) << "column " << k;
  }
  for (size_t e = 0; e < dV.size(); ++e) EXPECT_EQ(dV[e], dV2[e]);
  // Null outputs are allowed.
  std::vector<double> dA_only(size_t(N) * T);
  scb::population_gradient<double>(*pb, V.data(), A.data(), nullptr, dA_only.data());
  EXPECT_EQ(dA_only, dA);
}

TEST(PopulationGradient, VanishesAtTheTruthOnTheConstraintSet) {
  // At (P, Q) the V-gradient is zero and the A-gradient is constant on each column
  // (a multiple of 1: orthogonal to the constraint set {1^T a = 1}).
  const auto pb = small_problem(9, 4, 10, 3);
  const uint32_t N = pb->N, T = pb->T;
  const std::vector<double> Qd = pb->dense_Q_by_columns();
  std::vector<double> dV(N * N), dA(size_t(N) * T);
  scb::population_gradient(*pb, pb->P.data(), Qd.data(), dV.data(), dA.data());
  for (double x : dV) EXPECT_NEAR(x, 0.0, 1e-14);
  for (uint32_t k = 0; k < N; ++k)
    for (uint32_t t = 0; t < T; ++t) EXPECT_NEAR(dA[k * T + t], dA[k * T], 1e-14);
}

// Derivative at 0 of the quadratic through (-hm, f_m), (0, f_0), (hp, f_p): exact for quadratics.
double quadratic_slope(double hm, double hp, double fm, double f0, double fp) {
  return (hm * hm * fp - hp * hp * fm + (hp * hp - hm * hm) * f0) / (hp * hm * (hp + hm));
}

TEST(SampleGradient, MatchesFiniteDifferencesOfTheSampleLoss) {
  const auto pb = small_problem(10, 4, 12, 3);
  const uint32_t N = pb->N, T = pb->T;
  std::vector<float> V, A;
  random_params(N, T, 4, V, A);
  SampleBuffers buf(N, T);
  const float h = 1.0f / 64;
  int checked_other_columns = 0;
  for (uint32_t sample = 0; sample < 20; ++sample) {
    const scb::SampleResult res = buf.run(*pb, V.data(), A.data(), 99, 3, sample);
    const std::vector<uint32_t> tokens = buf.tokens;
    const std::vector<double> r = buf.r, hv = buf.h, g = buf.g;
    const double l0 = buf.loss();
    // Internal consistency: h and counts are the scatter of a^(k) and of ones by token,
    // r = V h - e_{x_o}, g = V^T r.
    std::vector<double> h2(N, 0.0);
    std::vector<uint32_t> c2(N, 0);
    for (uint32_t t = 0; t < T; ++t) {
      ASSERT_LT(tokens[t], N);
      h2[tokens[t]] += A[res.k * T + t];
      ++c2[tokens[t]];
    }
    for (uint32_t j = 0; j < N; ++j) {
      EXPECT_NEAR(hv[j], h2[j], 1e-15);
      EXPECT_EQ(buf.counts[j], c2[j]);
      double vh = 0, vtr = 0;
      for (uint32_t m = 0; m < N; ++m) {
        vh += double(V[j * N + m]) * hv[m];
        vtr += double(V[m * N + j]) * r[m];
      }
      EXPECT_NEAR(r[j], vh - (j == res.x_o ? 1.0 : 0.0), 1e-14);
      EXPECT_NEAR(g[j], vtr, 1e-14);
    }
    // a_mean = mean over positions of the A-gradient column g[x_t].
    double gm = 0;
    for (uint32_t t = 0; t < T; ++t) gm += g[tokens[t]];
    EXPECT_NEAR(res.a_mean, gm / T, 1e-14);

    // Finite differences through forward_sample itself: the same (seed, step, sample) draws
    // the same tokens, query and output whatever the parameters.
    auto fd = [&](std::vector<float>& x, size_t e) {
      const float x0 = x[e];
      x[e] = x0 + h;
      const double hp = double(x[e]) - double(x0);
      buf.run(*pb, V.data(), A.data(), 99, 3, sample);
      const double fp = buf.loss();
      EXPECT_EQ(buf.tokens, tokens);
      x[e] = x0 - h;
      const double hm = double(x0) - double(x[e]);
      buf.run(*pb, V.data(), A.data(), 99, 3, sample);
      const double fm = buf.loss();
      x[e] = x0;
      return quadratic_slope(hm, hp, fm, l0, fp);
    };
    for (uint32_t i = 0; i < N; ++i)
      for (uint32_t j = 0; j < N; ++j)
        EXPECT_NEAR(r[i] * hv[j], fd(V, i * N + j), 1e-9) << "sample " << sample << " dV[" << i << "][" << j << "]";
    for (uint32_t t = 0; t < T; ++t)
      EXPECT_NEAR(g[tokens[t]], fd(A, res.k * T + t), 1e-9) << "sample " << sample << " dA position " << t;
    // Columns other than k get nothing.
    const uint32_t other = (res.k + 1) % N;
    for (uint32_t t = 0; t < T; t += 5) {
      EXPECT_NEAR(fd(A, other * T + t), 0.0, 1e-12);
      ++checked_other_columns;
    }
  }
  EXPECT_GT(checked_other_columns, 0);
}

TEST(SampleGradient, MeanMatchesPopulationGradient) {
  const auto pb = small_problem(12, 4, 12, 3);
  const uint32_t N = pb->N, T = pb->T;
  std::vector<float> V, A;
  random_params(N, T, 5, V, A);
  std::vector<double> pdV(N * N), pdA(size_t(N) * T);
  scb::population_gradient(*pb, V.data(), A.data(), pdV.data(), pdA.data());

  const int M = 400000;
  SampleBuffers buf(N, T);
  std::vector<double> sV(N * N, 0), sV2(N * N, 0), sA(size_t(N) * T, 0), sA2(size_t(N) * T, 0);
  for (int i = 0; i < M; ++i) {
    const scb::SampleResult res = buf.run(*pb, V.data(), A.data(), 2718, uint32_t(i) >> 16, uint32_t(i) & 0xffffu);
    for (uint32_t a = 0; a < N; ++a)
      for (uint32_t b = 0; b < N; ++b) {
        const double x = buf.r[a] * buf.h[b];
        sV[a * N + b] += x;
        sV2[a * N + b] += x * x;
      }
    for (uint32_t t = 0; t < T; ++t) {
      const double x = buf.g[buf.tokens[t]];
      sA[res.k * T + t] += x;
      sA2[res.k * T + t] += x * x;
    }
  }
  double diff2 = 0, norm2 = 0;
  auto check = [&](const std::vector<double>& s, const std::vector<double>& s2, const std::vector<double>& pop,
                   const char* what) {
    for (size_t e = 0; e < s.size(); ++e) {
      const double mean = s[e] / M, se = std::sqrt(std::max(s2[e] / M - mean * mean, 0.0) / M);
      EXPECT_NEAR(mean, pop[e], 5 * se + 1e-12) << what << "[" << e << "]";
      diff2 += (mean - pop[e]) * (mean - pop[e]);
      norm2 += pop[e] * pop[e];
    }
  };
  check(sV, sV2, pdV, "dV");
  check(sA, sA2, pdA, "dA");
  EXPECT_LT(std::sqrt(diff2 / norm2), 0.02);
}

// ---- Metrics ----

TEST(Metrics, ZeroAtTheTruth) {
  const auto pb = small_problem(13, 5, 20, 3);
  const std::vector<double> Qd = pb->dense_Q_by_columns();
  const scb::Metrics m = scb::compute_metrics(*pb, pb->P.data(), Qd.data());
  EXPECT_NEAR(m.loss, pb->bayes_loss, 1e-12);
  EXPECT_NEAR(m.excess_loss, 0.0, 1e-12);
  EXPECT_NEAR(m.dist_V, 0.0, 1e-12);
  EXPECT_NEAR(m.dist_A, 0.0, 1e-7);
  EXPECT_NEAR(m.dist_V_norm, 0.0, 1e-7);
  EXPECT_NEAR(m.dist_A_norm, 0.0, 1e-7);
  EXPECT_EQ(m.nnz_A, 5 * 3);
}

TEST(Metrics, MatchDenseComputation) {
  const auto pb = small_problem(14, 4, 15, 3);
  const uint32_t N = pb->N, T = pb->T;
  std::vector<double> V, A;
  random_params(N, T, 6, V, A);
  A[3] = 0;
  A[T + 7] = 0;
  for (uint32_t t = 0; t < T; ++t) A[2 * T + t] = -std::abs(A[2 * T + t]) - 0.01;  // all negative: uniform
  const std::vector<double> Qd = pb->dense_Q_by_columns();
  const scb::Metrics m = scb::compute_metrics(*pb, V.data(), A.data());

  double dv = 0, dvn = 0, da = 0, dan = 0;
  int64_t nnz = 0;
  for (uint32_t j = 0; j < N; ++j) {
    double s = 0;
    for (uint32_t i = 0; i < N; ++i) s += V[i * N + j];
    for (uint32_t i = 0; i < N; ++i) {
      dv += std::pow(V[i * N + j] - pb->P[i * N + j], 2);
      dvn += std::pow(V[i * N + j] / s - pb->P[i * N + j], 2);
    }
  }
  for (uint32_t k = 0; k < N; ++k) {
    double pos = 0;
    for (uint32_t t = 0; t < T; ++t) pos += std::max(A[k * T + t], 0.0);
    for (uint32_t t = 0; t < T; ++t) {
      const double a = A[k * T + t], q = Qd[k * T + t];
      const double ahat = pos > 0 ? std::max(a, 0.0) / pos : 1.0 / T;
      da += (a - q) * (a - q);
      dan += (ahat - q) * (ahat - q);
      nnz += a != 0;
    }
  }
  EXPECT_NEAR(m.loss, scb::population_loss(*pb, V.data(), A.data()), 1e-15);
  EXPECT_NEAR(m.excess_loss, m.loss - pb->bayes_loss, 1e-15);
  EXPECT_NEAR(m.dist_V, std::sqrt(dv), 1e-12);
  EXPECT_NEAR(m.dist_V_norm, std::sqrt(dvn), 1e-12);
  EXPECT_NEAR(m.dist_A, std::sqrt(da), 1e-12);
  EXPECT_NEAR(m.dist_A_norm, std::sqrt(dan), 1e-12);
  EXPECT_EQ(m.nnz_A, nnz);
  EXPECT_EQ(m.nnz_A, int64_t(N) * T - 2);
}

TEST(Metrics, FinalNormalisation) {
  const double a[4] = {1, -1, 3, 0};
  double out[4];
  scb::normalize_attention_column(a, 4, out);
  EXPECT_DOUBLE_EQ(out[0], 0.25);
  EXPECT_DOUBLE_EQ(out[1], 0.0);
  EXPECT_DOUBLE_EQ(out[2], 0.75);
  EXPECT_DOUBLE_EQ(out[3], 0.0);
  const float neg[3] = {-1, 0, -2};
  double outn[3];
  scb::normalize_attention_column(neg, 3, outn);
  for (double x : outn) EXPECT_DOUBLE_EQ(x, 1.0 / 3);
  // V-hat divides each column (index j of V[i*N + j]) by its sum.
  const double V[4] = {1, 2, 3, 2};
  double Vn[4];
  scb::normalize_value_columns(V, 2, Vn);
  EXPECT_DOUBLE_EQ(Vn[0], 0.25);
  EXPECT_DOUBLE_EQ(Vn[2], 0.75);
  EXPECT_DOUBLE_EQ(Vn[1], 0.5);
  EXPECT_DOUBLE_EQ(Vn[3], 0.5);
}

}  // namespace

// The CPU backend keeps a population step's A-noise from the column sums to the update where its
// budget allows and draws it again where not: a pack of noisy runs with and without room, on one
// thread (whole-run steps) and two (T large enough for the phased schedule; the last tile
// partial), gives the same bits. The pack mixes runs that keep the noise with one without noise,
// one without projection and one that stops early (inactive for the last steps).
TEST(PopulationNoise, KeptOrDrawnAgainGivesTheSameBits) {
  const auto config_of = [](uint64_t seed, double noise, bool project, int steps) {
    return scbtest::make_config(json{
        {"problem", {{"N", 6}, {"T", 4000}, {"Q", 2}, {"seed", 2}}},
        {"train", {{"algorithm", "population"}, {"steps", steps}, {"batch_size", 64}, {"seed", seed}, {"lr_A", 5e-4},
                   {"lambda", 0.004}, {"stage1_steps", 10}, {"noise", noise}, {"project", project}}},
        {"eval", {{"every", 10}}}});
  };
  const std::vector<scb::Config> cfgs = {config_of(3, 0.05, true, 30), config_of(4, 0.05, true, 20),
                                         config_of(5, 0.0, true, 30), config_of(6, 0.05, false, 30)};
  EXPECT_TRUE(scb::keeps_noise(cfgs[0]));
  EXPECT_FALSE(scb::keeps_noise(cfgs[2]));
  EXPECT_FALSE(scb::keeps_noise(cfgs[3]));
  const auto pack_of = [&] {
    scb::RunPack pack;
    for (const scb::Config& cfg : cfgs) pack.add_run(cfg, scb::make_problem(cfg));
    return pack;
  };
  std::vector<std::vector<float>> A, V;
  for (int threads : {1, 2})
    for (uint64_t budget : {uint64_t(0), scb::kKeptNoiseMaxBytes}) {
      scb::RunPack pack = pack_of();
      auto backend = scb::make_cpu_backend(threads, budget);
      scb::train_pack(pack, *backend);
      for (size_t r = 0; r < pack.size(); ++r) EXPECT_EQ(pack.status[r], scb::RunStatus::done);
      A.push_back(pack.A);
      V.push_back(pack.V);
    }
  for (size_t i = 1; i < A.size(); ++i) {
    EXPECT_EQ(0, std::memcmp(A[0].data(), A[i].data(), A[0].size() * sizeof(float))) << "case " << i;
    EXPECT_EQ(0, std::memcmp(V[0].data(), V[i].data(), V[0].size() * sizeof(float))) << "case " << i;
  }
  EXPECT_NE(0, std::memcmp(A[0].data(), pack_of().A.data(), A[0].size() * sizeof(float))) << "A never moved";
}

// The kept noise is the CPU backend's: its footprint counts it (whole tiles), the device's does not,
// and a sampled run's is the same on both.
TEST(PopulationNoise, CountedInTheCpuFootprintOnly) {
  const auto cfg = scbtest::make_config(json{{"problem", {{"N", 6}, {"T", 4000}, {"Q", 2}, {"seed", 2}}},
                                              {"train", {{"algorithm", "population"}, {"noise", 0.5}}}});
  EXPECT_EQ(scb::run_footprint(cfg, true).scratch - scb::run_footprint(cfg, false).scratch, 8u * 6 * 64 * 63);
  const auto sampled = scbtest::make_config(json{{"problem", {{"N", 6}, {"T", 4000}, {"Q", 2}, {"seed", 2}}}});
  EXPECT_EQ(scb::run_footprint(sampled, true).total(), scb::run_footprint(sampled, false).total());
}
