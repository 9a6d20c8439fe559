// docs/model.md section 5: the update rules as the CPU backend applies them to a RunPack: soft-thresholding,
// projection, preconditioning, renormalisation, the drain without it, and divergence.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "scb/core/backend.hpp"
#include "scb/cpu/cpu_backend.hpp"
#include "scb/cpu/cpu_kernels.hpp"
#include "scb/core/model.hpp"
#include "scb/core/runpack.hpp"
#include "scb/core/trainer.hpp"
#include "test_util.hpp"

namespace {

using scbtest::json;

// A one-run pack of a small problem; `patch` is merged into scbtest::small_doc.
scb::RunPack make_pack(const json& patch) {
  const scb::Config cfg = scbtest::make_config(scbtest::small_doc(patch));
  scb::RunPack pack;
  pack.add_run(cfg, scb::make_problem(cfg));
  return pack;
}

// Steps a pack `steps` times with a one-thread CPU backend, calling `each` after every step.
template <typename F>
void step_pack(scb::RunPack& pack, int steps, F&& each) {
  auto backend = scb::make_cpu_backend(1);
  backend->attach(pack);
  for (int s = 0; s < steps; ++s) {
    backend->step();
    backend->download();
    each(s);
  }
}
void step_pack(scb::RunPack& pack, int steps) {
  step_pack(pack, steps, [](int) {});
}

std::vector<double> column_sums(const scb::RunPack& pack, size_t r = 0) {
  std::vector<double> s(pack.N, 0.0);
  const float* A = pack.A_of(r);
  for (uint32_t k = 0; k < pack.N; ++k)
    for (uint32_t t = 0; t < pack.T; ++t) s[k] += A[size_t(k) * pack.T + t];
  return s;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// ---- Scalar rules ----

template <typename Real>
void check_soft_threshold() {
  const Real tau = Real(0.25);
  EXPECT_EQ(scb::soft_threshold<Real>(Real(1), tau), Real(0.75));
  EXPECT_EQ(scb::soft_threshold<Real>(Real(-1), tau), Real(-0.75));
  EXPECT_EQ(scb::soft_threshold<Real>(Real(0.25), tau), Real(0));
  EXPECT_EQ(scb::soft_threshold<Real>(Real(-0.25), tau), Real(0));
  EXPECT_EQ(scb::soft_threshold<Real>(Real(0.1), tau), Real(0));
  EXPECT_EQ(scb::soft_threshold<Real>(Real(0), tau), Real(0));
  for (int i = -400; i <= 400; ++i) {
    const Real z = Real(i) / Real(100);
    const Real s = scb::soft_threshold<Real>(z, tau);
    // Odd, zero inside [-tau, tau], shrinks by exactly tau outside.
    EXPECT_EQ(scb::soft_threshold<Real>(-z, tau), -s) << z;
    if (std::abs(z) <= tau) {
      EXPECT_EQ(s, Real(0)) << z;
    } else {
      EXPECT_NEAR(std::abs(s), std::abs(z) - tau, 1e-6) << z;
      EXPECT_EQ(s > 0, z > 0) << z;
    }
    // With tau = 0 it is the identity.
    EXPECT_EQ(scb::soft_threshold<Real>(z, Real(0)), z);
    // It is the proximal map of tau |.|: no grid point beats it on 1/2 (x - z)^2 + tau |x|.
    const double obj = 0.5 * double(s - z) * double(s - z) + double(tau) * std::abs(double(s));
    for (int j = -500; j <= 500; j += 7) {
      const double x = j / 100.0;
      EXPECT_LE(obj, 0.5 * (x - double(z)) * (x - double(z)) + double(tau) * std::abs(x) + 1e-6);
    }
  }
}

// The branch-free soft_threshold (model.hpp) is bit for bit the textbook branchy form for every
// float: all exponents near and far from tau, subnormals, signed zeros, infinities and NaN.
TEST(SoftThreshold, BranchFreeEqualsBranchyBitForBit) {
  auto branchy = [](float z, float tau) { return z > tau ? z - tau : (z < -tau ? z + tau : 0.0f); };
  std::vector<float> taus = {0.0f, 1e-7f, 2.5e-6f, 0.125f, 3.0f, std::numeric_limits<float>::denorm_min()};
  std::vector<float> zs = {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::denorm_min()};
  for (float tau : taus)
    for (float d : {0.0f, 1.0f, -1.0f}) zs.push_back(std::nextafter(tau, tau + d)), zs.push_back(-std::nextafter(tau, tau + d));
  for (uint32_t i = 0; i < 200000; ++i) {  // random bit patterns: every exponent
    const scb::Philox4 w = scb::philox(11, i, 0, 0, scbtest::kTestStream);
    float z;
    std::memcpy(&z, &w.v[0], sizeof z);
    zs.push_back(z);
  }
  for (float tau : taus)
    for (float z : zs) {
      const float a = scb::soft_threshold(z, tau), b = branchy(z, tau);
      uint32_t ba, bb;
      std::memcpy(&ba, &a, 4);
      std::memcpy(&bb, &b, 4);
      ASSERT_EQ(ba, bb) << "z=" << z << " tau=" << tau;
    }
}

// shrink_column runs as an AVX-512, AVX2 or baseline clone: whichever this CPU picks gives the
// bits of a plain scalar loop (same operations, same order), for a column with signs, zeros,
// entries right at the threshold, a ragged last tile and an out-of-range entry.
TEST(ShrinkColumn, DispatchedCloneEqualsPlainLoop) {
  const uint32_t T = 1000 + 37;
  std::vector<float> a(T);
  for (uint32_t t = 0; t < T; ++t) a[t] = float(scbtest::test_uniform(3, t) - 0.3) * 1e-3f;
  a[5] = 0.0f, a[6] = -0.0f, a[7] = 2.5e-7f, a[8] = -2.5e-7f;
  for (bool threshold : {true, false})
    for (float limit : {1.0f, 4e-4f}) {
      const scb::AUpdateRule rule{0.02f, 3.0f, 0.0f, 2.5e-7f, threshold};
      const float c = 1.0f / 0.93f;
      std::vector<float> got = a, want = a;
      const uint32_t tiles = (T + scb::kTileLength - 1) / scb::kTileLength;
      std::vector<double> got_sums(size_t(tiles) * 3, -1.0), want_sums(tiles);
      const bool got_bad = scb::shrink_column(got.data(), T, c, rule, limit, got_sums.data() + 1, 3);
      bool want_bad = false;
      for (uint32_t tile = 0; tile < tiles; ++tile) {
        const uint32_t t0 = tile * scb::kTileLength, len = std::min(T - t0, scb::kTileLength);
        double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (uint32_t i = 0; i < len; ++i) {
          want[t0 + i] = scb::update_attention(want[t0 + i] * c, 0.0f, rule);
          part[i % 8] += double(want[t0 + i]);
          want_bad |= !(std::fabs(want[t0 + i]) <= limit);
        }
        want_sums[tile] = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
      }
      EXPECT_TRUE(same_bits(got, want)) << "threshold " << threshold;
      EXPECT_EQ(got_bad, want_bad) << "limit " << limit;
      EXPECT_EQ(want_bad, limit < 1.0f);
      for (uint32_t tile = 0; tile < tiles; ++tile) {
        EXPECT_EQ(got_sums[size_t(tile) * 3 + 1], want_sums[tile]) << "tile " << tile;
        EXPECT_EQ(got_sums[size_t(tile) * 3], -1.0) << "wrote outside its stride";
      }
    }
}

// The same with what the previous test leaves out: NaN, infinities and -0 in the column, a
// non-zero projection mean, an infinite pending scale, and the zero flags (a tile that stays all
// +0, and one that holds a -0).
TEST(ShrinkColumn, SpecialValuesAndZeroFlagsEqualPlainLoop) {
  const uint32_t T = 4 * scb::kTileLength + 9;
  std::vector<float> a(T);
  for (uint32_t t = 0; t < T; ++t) a[t] = float(scbtest::test_uniform(4, t) - 0.5) * 1e-6f;
  for (uint32_t t = scb::kTileLength; t < 3 * scb::kTileLength; ++t) a[t] = 0.0f;  // tile 1 stays +0,
  a[2 * scb::kTileLength + 3] = -0.0f;  // tile 2 holds a -0 (+0 after the update when thresholded)
  a[3] = NAN, a[17] = INFINITY, a[40] = -INFINITY, a[3 * scb::kTileLength + 1] = 3e38f;
  for (float mean : {0.0f, 1e-4f})
    for (float c : {1.0f, 1.0f / 0.97f, INFINITY})
      for (bool threshold : {true, false}) {
        const scb::AUpdateRule rule{0.02f, 2.0f, mean, 2e-7f, threshold};
        std::vector<float> got = a, want = a;
        const uint32_t tiles = (T + scb::kTileLength - 1) / scb::kTileLength;
        std::vector<double> got_sums(tiles), want_sums(tiles);
        std::vector<uint8_t> flags(tiles, 0), want_flags(tiles);
        const bool got_bad = scb::shrink_column(got.data(), T, c, rule, 1.0f, got_sums.data(), 1, flags.data());
        bool want_bad = false;
        for (uint32_t tile = 0; tile < tiles; ++tile) {
          const uint32_t t0 = tile * scb::kTileLength, len = std::min(T - t0, scb::kTileLength);
          for (uint32_t i = t0; i < t0 + len; ++i) want[i] = scb::update_attention(want[i] * c, 0.0f, rule);
          want_sums[tile] = scb::tile_sum_scalar(want.data() + t0, len, 1.0f, want_bad);
          want_flags[tile] = scb::tile_is_zero(want.data() + t0, len);
        }
        const std::string what = "mean " + std::to_string(mean) + " c " + std::to_string(c) + " threshold " +
                                 std::to_string(threshold);
        EXPECT_TRUE(same_bits(got, want)) << what;
        EXPECT_EQ(got_bad, want_bad) << what;
        EXPECT_TRUE(want_bad) << what;  // the NaN and the infinities are out of range
        for (uint32_t tile = 0; tile < tiles; ++tile) {
          uint64_t gb, wb;  // NaN sums compare by their bits
          std::memcpy(&gb, &got_sums[tile], 8), std::memcpy(&wb, &want_sums[tile], 8);
          EXPECT_EQ(gb, wb) << what << " tile " << tile;
          EXPECT_EQ(flags[tile], want_flags[tile]) << what << " tile " << tile;
        }
        if (mean == 0.0f && c == 1.0f) {
          EXPECT_EQ(want_flags[1], 1) << what;               // the all-zero tile stays +0
          EXPECT_EQ(want_flags[2], threshold ? 1 : 0) << what;  // S_tau(-0) = +0; without it -0 stays
        }
      }
}

// tile_sum (AVX2 where available) gives tile_sum_scalar's bits and range verdict for every
// length up to a tile, with infinities, NaN and entries just past the limit anywhere in it.
TEST(TileSum, VectorEqualsScalarBitForBit) {
  std::vector<float> a(scb::kTileLength);
  for (uint32_t t = 0; t < a.size(); ++t) a[t] = float(scbtest::test_uniform(9, t) - 0.4) * (t % 5 == 0 ? 1e20f : 1e-3f);
  for (float special : {0.0f, INFINITY, -INFINITY, NAN, 0.50001f})
    for (uint32_t at : {0u, 7u, 8u, 63u})
      for (uint32_t len = 1; len <= scb::kTileLength; ++len) {
        std::vector<float> v = a;
        if (special != 0.0f) v[at] = special;
        bool got_bad = false, want_bad = false;
        const double got = scb::tile_sum(v.data(), len, 0.5f, got_bad);
        const double want = scb::tile_sum_scalar(v.data(), len, 0.5f, want_bad);
        uint64_t gb, wb;
        std::memcpy(&gb, &got, 8), std::memcpy(&wb, &want, 8);
        ASSERT_EQ(gb, wb) << "len " << len << " special " << special << " at " << at;
        ASSERT_EQ(got_bad, want_bad) << "len " << len << " special " << special << " at " << at;
      }
}

// Skipping all-zero tiles is exact: with the flags shrink_column leaves such tiles alone and
// gives the same bits, sums and flags as the full pass; a non-zero tile is never skipped unless
// flagged, and a pending scale of inf or a non-zero mean turns skipping off.
TEST(ShrinkColumn, SkippingZeroTilesIsExact) {
  const uint32_t T = 64 * 6 + 10, tiles = 7;
  std::vector<float> a(T, 0.0f);
  for (uint32_t t = 64; t < 128; ++t) a[t] = 1e-3f;   // tile 1: shrinks but stays non-zero
  a[200] = 1e-9f;                                      // tile 3: thresholded to zero this pass
  a[T - 1] = -0.0f;                                    // last tile: -0 is not +0, so not skippable
  for (float mean : {0.0f, 1e-4f}) {
    const scb::AUpdateRule rule{0.02f, 2.0f, mean, 1e-6f, true};
    std::vector<uint8_t> flags(tiles);
    for (uint32_t i = 0; i < tiles; ++i) flags[i] = scb::tile_is_zero(a.data() + 64 * i, std::min(64u, T - 64 * i));
    EXPECT_EQ(flags, (std::vector<uint8_t>{1, 0, 1, 0, 1, 1, 0}));
    std::vector<float> full = a, skip = a;
    std::vector<double> s_full(tiles), s_skip(tiles);
    const bool b_full = scb::shrink_column(full.data(), T, 1.25f, rule, 1.0f, s_full.data(), 1);
    const bool b_skip = scb::shrink_column(skip.data(), T, 1.25f, rule, 1.0f, s_skip.data(), 1, flags.data());
    EXPECT_TRUE(same_bits(full, skip)) << "mean " << mean;
    EXPECT_EQ(s_full, s_skip);
    EXPECT_EQ(b_full, b_skip);
    for (uint32_t i = 0; i < tiles; ++i)
      EXPECT_EQ(flags[i], scb::tile_is_zero(full.data() + 64 * i, std::min(64u, T - 64 * i))) << "tile " << i;
  }
  // The skip is taken: a tile wrongly flagged zero is left as it was.
  std::vector<float> b = a;
  std::vector<uint8_t> lie(tiles, 1);
  scb::shrink_column(b.data(), T, 1.0f, scb::AUpdateRule{0.02f, 2.0f, 0.0f, 1e-6f, true}, 1.0f, nullptr, 1, lie.data());
  EXPECT_EQ(b[64], 1e-3f);
  // ...but not with an infinite pending scale (+0 * inf is NaN, which the bound reports).
  EXPECT_TRUE(scb::shrink_column(b.data(), T, INFINITY, scb::AUpdateRule{0.02f, 2.0f, 0.0f, 0.0f, false}, 1.0f,
                                 nullptr, 1, lie.data()));
  EXPECT_TRUE(std::isnan(b[0]));
}

// The residual r = V h - e_{x_o}, g = V^T r through the transposed copy of V (vectorised axpy
// loops, the CPU backend's path from N = 32) and row by row give the same bits, for N not a
// multiple of 4 and each output token; and they equal a plain double loop (N <= 4: unrolled, and
// in vector lanes where AVX2 runs).
TEST(SampleResidual, TransposedAndRowPathsAgreeBitForBit) {
  for (uint32_t N : {1u, 2u, 3u, 4u, 5u, 7u, 33u, 130u}) {
    std::vector<float> V(size_t(N) * N), VT(size_t(N) * N);
    std::vector<double> h(N);
    for (uint32_t i = 0; i < N; ++i) {
      h[i] = scbtest::test_uniform(5, i) / N;
      for (uint32_t j = 0; j < N; ++j) V[size_t(i) * N + j] = float(scbtest::test_uniform(6, i, j) - 0.4);
    }
    for (uint32_t i = 0; i < N; ++i)
      for (uint32_t j = 0; j < N; ++j) VT[size_t(j) * N + i] = V[size_t(i) * N + j];
    for (uint32_t x_o : {0u, N / 2, N - 1}) {
      std::vector<double> r1(N), g1(N), r2(N), g2(N), r3(N), g3(N, 0.0);
      scb::sample_residual(V.data(), VT.data(), N, h.data(), x_o, r1.data(), g1.data());
      scb::sample_residual(V.data(), nullptr, N, h.data(), x_o, r2.data(), g2.data());
      for (uint32_t i = 0; i < N; ++i) {
        double acc = 0;
        for (uint32_t j = 0; j < N; ++j) acc += double(V[size_t(i) * N + j]) * h[j];
        r3[i] = acc - (i == x_o ? 1.0 : 0.0);
      }
      for (uint32_t i = 0; i < N; ++i)
        for (uint32_t j = 0; j < N; ++j) g3[j] += double(V[size_t(i) * N + j]) * r3[i];
      EXPECT_EQ(0, std::memcmp(r1.data(), r2.data(), N * sizeof(double))) << N;
      EXPECT_EQ(0, std::memcmp(g1.data(), g2.data(), N * sizeof(double))) << N;
      EXPECT_EQ(0, std::memcmp(r1.data(), r3.data(), N * sizeof(double))) << N;
      EXPECT_EQ(0, std::memcmp(g1.data(), g3.data(), N * sizeof(double))) << N;
      // With the mean's sum, sum_j g_j counts_j (from the registers at N <= 4): the same r, g and sum.
      std::vector<uint32_t> counts(N);
      for (uint32_t j = 0; j < N; ++j) counts[j] = (j * 7 + x_o) % 11;
      std::vector<double> r4(N), g4(N);
      const double m = scb::sample_residual_mean(V.data(), VT.data(), N, h.data(), x_o, counts.data(), r4.data(), g4.data());
      double want_m = 0;
      for (uint32_t j = 0; j < N; ++j) want_m += g3[j] * counts[j];
      EXPECT_EQ(0, std::memcmp(r4.data(), r3.data(), N * sizeof(double))) << N;
      EXPECT_EQ(0, std::memcmp(g4.data(), g3.data(), N * sizeof(double))) << N;
      EXPECT_EQ(0, std::memcmp(&m, &want_m, sizeof m)) << N;
    }
  }
}

TEST(SoftThreshold, Properties) {
  check_soft_threshold<float>();
  check_soft_threshold<double>();
}

TEST(UpdateRule, AttentionCoordinate) {
  // z = a - lr * (grad - mean) * inv_mu, then S_tau when thresholding.
  scb::AUpdateRule rule{0.5f, 4.0f, 0.25f, 0.125f, false};
  EXPECT_FLOAT_EQ(scb::update_attention(1.5f, 0.75f, rule), 0.5f);
  EXPECT_FLOAT_EQ(scb::update_attention(1.5f, -0.25f, rule), 2.5f);
  rule.threshold = true;
  // z = 1 - 0.5 * 0.5 * 4 = 0, inside [-tau, tau]: 0; outside, shrunk by tau = 0.125.
  EXPECT_EQ(scb::update_attention(1.0f, 0.75f, rule), 0.0f);
  EXPECT_FLOAT_EQ(scb::update_attention(2.0f, 0.75f, rule), 1.0f - 0.125f);
  EXPECT_FLOAT_EQ(scb::update_attention(-2.0f, 0.75f, rule), -3.0f + 0.125f);
}

// ---- Pack stepping ----

TEST(Updates, ProximalRenormalizeKeepsColumnsOnTheSimplexSum) {
  for (bool precondition : {true, false}) {
    scb::RunPack pack = make_pack({{"train", {{"algorithm", "proximal"}, {"stage1_steps", 0}, {"lambda", 0.05},
                                              {"renormalize", true}, {"precondition", precondition}}}});
    step_pack(pack, 15, [&](int s) {
      ASSERT_EQ(pack.status[0], scb::RunStatus::running) << "step " << s;
      for (double c : column_sums(pack)) EXPECT_NEAR(c, 1.0, 2e-6) << "step " << s;
    });
  }
}

// The CPU backend defers each step's renormalisation to the next pass over A (the forward reads
// a * scale, the update applies it) and applies it in download()/evaluate(). Where and how often
// that happens must not change one bit: stepping with a download after every step, after every
// third, or only at the end gives the same V and A, through stage 1, the switch to the proximal
// stage, and with softmax-free proximal runs with and without renormalisation.
TEST(Updates, DeferredRenormalisationNeverChangesResults) {
  for (bool renormalize : {true, false}) {
    auto run = [&](int download_every) {
      scb::RunPack pack = make_pack({{"problem", {{"N", 5}, {"T", 70}}},
                                     {"train", {{"algorithm", "proximal"}, {"stage1_steps", 4}, {"lambda", 0.01},
                                                {"batch_size", 8}, {"renormalize", renormalize}}}});
      auto backend = scb::make_cpu_backend(2);
      backend->attach(pack);
      for (int s = 1; s <= 20; ++s) {
        backend->step();
        if (download_every > 0 && s % download_every == 0) backend->download();
        if (download_every == 3 && s % 5 == 0) (void)backend->evaluate({0});
      }
      backend->download();
      EXPECT_EQ(pack.status[0], scb::RunStatus::running);
      return std::make_pair(pack.V, pack.A);
    };
    const auto every = run(1), some = run(3), end = run(0);
    EXPECT_TRUE(same_bits(every.first, end.first) && same_bits(every.second, end.second)) << renormalize;
    EXPECT_TRUE(same_bits(every.first, some.first) && same_bits(every.second, some.second)) << renormalize;
    if (renormalize)
      for (double c : column_sums([&] {
             scb::RunPack p2 = make_pack({{"problem", {{"N", 5}, {"T", 70}}}});
             p2.A = end.second;
             return p2;
           }()))
        EXPECT_NEAR(c, 1.0, 2e-6);
  }
}

TEST(Updates, ProximalThresholdMakesExactZeros) {
  scb::RunPack pack =
      make_pack({{"train", {{"algorithm", "proximal"}, {"stage1_steps", 0}, {"lambda", 0.5}, {"renormalize", true}}}});
  step_pack(pack, 30);
  ASSERT_EQ(pack.status[0], scb::RunStatus::running);
  const size_t zeros = std::count(pack.A.begin(), pack.A.end(), 0.0f);
  EXPECT_GT(zeros, pack.A.size() / 4);
  EXPECT_LT(zeros, pack.A.size());
  // Stage 1 (sgd-like) makes none.
  scb::RunPack stage1 =
      make_pack({{"train", {{"algorithm", "proximal"}, {"stage1_steps", 100}, {"lambda", 0.5}, {"renormalize", true}}}});
  step_pack(stage1, 30);
  EXPECT_EQ(std::count(stage1.A.begin(), stage1.A.end(), 0.0f), 0);
}

TEST(Updates, ProjectedSgdPreservesColumnSums) {
  for (const char* alg : {"sgd", "population"}) {
    for (bool precondition : {true, false}) {
      SCOPED_TRACE(testing::Message() << alg << " precondition " << precondition);
      scb::RunPack pack = make_pack({{"train", {{"algorithm", alg}, {"project", true}, {"precondition", precondition},
                                                {"stage1_steps", 1000}, {"renormalize", false}}}});
      const std::vector<double> before = column_sums(pack);
      const std::vector<float> A0 = pack.A;
      step_pack(pack, 10);
      const std::vector<double> after = column_sums(pack);
      for (uint32_t k = 0; k < pack.N; ++k) EXPECT_NEAR(after[k], before[k], 2e-6) << "column " << k;
      EXPECT_FALSE(same_bits(A0, pack.A)) << "A did not move";

      // Without the projection the sums move: the check above can fail.
      scb::RunPack free = make_pack({{"train", {{"algorithm", alg}, {"project", false}, {"precondition", precondition},
                                                {"stage1_steps", 1000}, {"renormalize", false}}}});
      step_pack(free, 10);
      const std::vector<double> moved = column_sums(free);
      double dev = 0;
      for (uint32_t k = 0; k < free.N; ++k) dev = std::max(dev, std::abs(moved[k] - before[k]));
      EXPECT_GT(dev, 1e-4);
    }
  }
}

TEST(Updates, ProjectedPopulationNoisePreservesColumnSums) {
  // docs/model.md section 5: population mode is "the exact gradient plus noise" with "the same update rules",
  // and P_A subtracts the column mean of the gradient; the noisy gradient is projected too.
  scb::RunPack pack = make_pack({{"train", {{"algorithm", "population"}, {"noise", 1.0}, {"batch_size", 4},
                                            {"project", true}, {"stage1_steps", 1000}, {"renormalize", false}}}});
  const std::vector<double> before = column_sums(pack);
  step_pack(pack, 10);
  const std::vector<double> after = column_sums(pack);
  for (uint32_t k = 0; k < pack.N; ++k) EXPECT_NEAR(after[k], before[k], 2e-6) << "column " << k;
}

TEST(Updates, SgdIgnoresLambda) {
  scb::RunPack a = make_pack({{"train", {{"algorithm", "sgd"}, {"lambda", 0.0}}}});
  scb::RunPack b = make_pack({{"train", {{"algorithm", "sgd"}, {"lambda", 0.5}, {"stage1_steps", 0}}}});
  step_pack(a, 10);
  step_pack(b, 10);
  EXPECT_TRUE(same_bits(a.A, b.A));
  EXPECT_TRUE(same_bits(a.V, b.V));
}

TEST(Updates, ProximalStageOneIsSgd) {
  // proximal runs exactly as sgd for stage1_steps steps and departs from it afterwards.
  scb::RunPack sgd = make_pack({{"train", {{"algorithm", "sgd"}, {"lambda", 0.1}}}});
  scb::RunPack prox = make_pack({{"train", {{"algorithm", "proximal"}, {"lambda", 0.1}, {"stage1_steps", 3}}}});
  auto b1 = scb::make_cpu_backend(1), b2 = scb::make_cpu_backend(1);
  b1->attach(sgd);
  b2->attach(prox);
  for (int s = 0; s < 3; ++s) {
    b1->step();
    b2->step();
  }
  EXPECT_TRUE(same_bits(sgd.A, prox.A));
  EXPECT_TRUE(same_bits(sgd.V, prox.V));
  b1->step();
  b2->step();
  EXPECT_TRUE(same_bits(sgd.V, prox.V));  // the V update is the same rule in both stages
  EXPECT_FALSE(same_bits(sgd.A, prox.A));
}

TEST(Updates, WithoutRenormalizeColumnSumsDrain) {
  // Population gradient, projection on: the gradient step keeps every column sum, and the
  // threshold then removes tau from each of the T (positive, > tau) entries: -T tau per step.
  const double lr_A = 0.01, lambda = 0.1, tau = lr_A * lambda;
  const uint32_t T = 40;
  scb::RunPack pack = make_pack({{"train", {{"algorithm", "population"}, {"stage1_steps", 0}, {"lambda", lambda},
                                            {"lr_A", lr_A}, {"renormalize", false}, {"project", true}}}});
  ASSERT_EQ(pack.T, T);
  std::vector<double> prev = column_sums(pack);
  step_pack(pack, 10, [&](int s) {
    const std::vector<double> cur = column_sums(pack);
    for (uint32_t k = 0; k < pack.N; ++k) EXPECT_NEAR(prev[k] - cur[k], T * tau, 1e-5) << "step " << s << " column " << k;
    prev = cur;
  });
  for (double c : prev) EXPECT_NEAR(c, 1 - 10 * T * tau, 1e-4);
  EXPECT_EQ(pack.status[0], scb::RunStatus::running);

  // With renormalisation the same run keeps sum 1.
  scb::RunPack renorm = make_pack({{"train", {{"algorithm", "population"}, {"stage1_steps", 0}, {"lambda", lambda},
                                              {"lr_A", lr_A}, {"renormalize", true}, {"project", true}}}});
  step_pack(renorm, 10);
  for (double c : column_sums(renorm)) EXPECT_NEAR(c, 1.0, 2e-6);
}

TEST(Updates, DistortionWithoutRenormalize) {
  // Sampled proximal SGD, long enough for the drain to matter: without renormalisation the
  // attention columns lose mass and V grows to compensate (docs/model.md section 5); with it, neither happens.
  auto train = [](bool renormalize) {
    scb::RunPack pack = make_pack({{"problem", {{"T", 30}}},
                                   {"train", {{"algorithm", "proximal"}, {"steps", 3000}, {"stage1_steps", 500},
                                              {"lambda", 0.02}, {"renormalize", renormalize}}},
                                   {"eval", {{"every", 3000}}}});
    auto backend = scb::make_cpu_backend(1);
    const auto res = scb::train_pack(pack, *backend);
    EXPECT_EQ(res[0].status, scb::RunStatus::done);
    double vsum = 0;
    for (float v : pack.V) vsum += v;
    const std::vector<double> sums = column_sums(pack);
    return std::pair<double, double>(vsum / pack.N, *std::max_element(sums.begin(), sums.end()));
  };
  const auto [v_renorm, a_renorm] = train(true);
  const auto [v_drain, a_drain] = train(false);
  EXPECT_NEAR(a_renorm, 1.0, 1e-5);
  EXPECT_LT(a_drain, 0.9);
  EXPECT_GT(v_drain, 1.1 * v_renorm) << "mean column sum of V: drained " << v_drain << " vs renormalised " << v_renorm;
}

TEST(Updates, PreconditionDividesTheStepByMu) {
  for (const char* alg : {"sgd", "population"}) {
    SCOPED_TRACE(alg);
    const json base = {{"problem", {{"N", 4}, {"T", 40}, {"Q", 3}, {"seed", 4}}},
                       {"train", {{"algorithm", alg}, {"stage1_steps", 100}}}};
    json on = base, off = base;
    on["train"]["precondition"] = true;
    off["train"]["precondition"] = false;
    scb::RunPack p_on = make_pack(on), p_off = make_pack(off);
    // At the stationary (or uniform) initialisation the A-gradient is constant on every column
    // and the projection removes it; start both packs from the same non-trivial point instead.
    for (size_t e = 0; e < p_on.V.size(); ++e) p_on.V[e] = p_off.V[e] = float(scbtest::test_uniform(21, uint32_t(e), 1));
    for (size_t e = 0; e < p_on.A.size(); ++e)
      p_on.A[e] = p_off.A[e] = float(2 * scbtest::test_uniform(21, uint32_t(e), 2) / p_on.T);
    const std::vector<float> A0 = p_on.A;
    step_pack(p_on, 1);
    step_pack(p_off, 1);
    EXPECT_TRUE(same_bits(p_on.V, p_off.V));
    const scb::Problem& pb = p_on.problem(0);
    int compared = 0;
    for (uint32_t k = 0; k < pb.N; ++k) {
      for (uint32_t t = 0; t < pb.T; ++t) {
        const size_t e = size_t(k) * pb.T + t;
        const double d_on = double(p_on.A[e]) - A0[e], d_off = double(p_off.A[e]) - A0[e];
        if (std::abs(d_off) < 1e-5) continue;
        EXPECT_NEAR(d_on * pb.mu[k], d_off, 1e-3 * std::abs(d_off) + 1e-7) << "column " << k << " position " << t;
        ++compared;
      }
    }
    EXPECT_GT(compared, int(pb.T));
    double min_mu = 1;
    for (double m : pb.mu) min_mu = std::min(min_mu, m);
    EXPECT_LT(min_mu, 0.2);  // so 1/mu_k is far from 1 and the test can tell
  }
}

TEST(Updates, DivergenceIsDetectedAndIsolated) {
  // A threshold larger than every entry empties the columns: renormalisation cannot rescue a
  // zero sum, the run is marked diverged at once.
  {
    scb::RunPack pack =
        make_pack({{"train", {{"algorithm", "proximal"}, {"stage1_steps", 0}, {"lambda", 1000}, {"renormalize", true}}}});
    auto backend = scb::make_cpu_backend(1);
    const auto res = scb::train_pack(pack, *backend);
    EXPECT_EQ(res[0].status, scb::RunStatus::diverged);
    EXPECT_GE(res[0].diverged_step, 0);
    EXPECT_LE(res[0].diverged_step, 1);
    EXPECT_LT(pack.step[0], pack.steps[0]);
  }
  // A huge V step diverges one run of a pack; the other run is unaffected.
  {
    const scb::Config good = scbtest::make_config(scbtest::small_doc({{"train", {{"seed", 3}}}}));
    const scb::Config bad = scbtest::make_config(scbtest::small_doc({{"train", {{"seed", 3}, {"lr_V", 1e9}}}}));
    const auto pb = scb::make_problem(good);
    scb::RunPack pack, alone;
    pack.add_run(bad, pb);
    pack.add_run(good, pb);
    alone.add_run(good, pb);
    auto b1 = scb::make_cpu_backend(1), b2 = scb::make_cpu_backend(1);
    const auto res = scb::train_pack(pack, *b1);
    const auto res_alone = scb::train_pack(alone, *b2);
    EXPECT_EQ(res[0].status, scb::RunStatus::diverged);
    EXPECT_LT(pack.step[0], pack.steps[0]);
    EXPECT_EQ(res[1].status, scb::RunStatus::done);
    EXPECT_EQ(pack.step[1], pack.steps[1]);
    EXPECT_EQ(std::memcmp(pack.A_of(1), alone.A_of(0), sizeof(float) * alone.N * alone.T), 0);
    EXPECT_EQ(res[1].final_metrics.loss, res_alone[0].final_metrics.loss);
  }
}

TEST(Updates, DivergedStepMeansTheSameForEveryCause) {
  // Both runs blow up in their first step: one through V (lr_V huge), one through A (a
  // threshold that empties the columns, so renormalisation fails). The pack's step counter and
  // the recorded diverged_step should not depend on which matrix failed.
  auto run = [](const json& train) {
    scb::RunPack pack = make_pack({{"train", train}});
    auto backend = scb::make_cpu_backend(1);
    const auto res = scb::train_pack(pack, *backend);
    EXPECT_EQ(res[0].status, scb::RunStatus::diverged);
    return std::pair<int64_t, int64_t>(res[0].diverged_step, pack.step[0]);
  };
  const auto v = run({{"algorithm", "proximal"}, {"lr_V", 1e9}, {"stage1_steps", 0}});
  const auto a = run({{"algorithm", "proximal"}, {"lambda", 1000}, {"stage1_steps", 0}});
  EXPECT_EQ(v.first, a.first) << "diverged_step";
  EXPECT_EQ(v.second, a.second) << "pack.step";
}

}  // namespace

namespace {

// Phase 3's samples by column (list_samples_by_column): each column's samples in sample order,
// every sample once, for vocabularies of one to 500 columns and batches of one to 300 samples.
TEST(ListSamplesByColumn, StableCountingSort) {
  std::mt19937 gen(21);
  for (uint32_t N : {1u, 3u, 20u, 500u}) {
    for (uint32_t B : {1u, 7u, 64u, 300u}) {
      std::vector<uint32_t> query(B), begin(N + 1, 77), by_column(B, 77);
      for (uint32_t& k : query) k = uint32_t(gen() % N);
      scb::list_samples_by_column(query.data(), B, N, begin.data(), by_column.data());
      ASSERT_EQ(begin[0], 0u);
      ASSERT_EQ(begin[N], B);
      for (uint32_t c = 0; c < N; ++c) {
        std::vector<uint32_t> want;
        for (uint32_t b = 0; b < B; ++b)
          if (query[b] == c) want.push_back(b);
        const std::vector<uint32_t> got(by_column.begin() + begin[c], by_column.begin() + begin[c + 1]);
        ASSERT_EQ(got, want) << "N=" << N << " B=" << B << " column " << c;
      }
    }
  }
}

// gather_column (the row of a queried column that phase 3 streams at large T) adds its samples in
// the order listed, from +0.0, bit for bit; values spread over twenty decades make that order
// matter (the same samples in reverse order give other bits somewhere, so this test can fail).
TEST(GatherColumn, AddsSamplesInListedOrderFromZero) {
  std::mt19937 gen(22);
  const uint32_t N = 37, T = 300, B = 40, stride = 48, len = 64, t0 = 192;
  std::vector<uint16_t> tokens(size_t(B) * T);
  for (auto& t : tokens) t = uint16_t(gen() % N);
  std::vector<double> g(size_t(B) * stride, 1e300);  // past N: never read
  for (uint32_t b = 0; b < B; ++b)
    for (uint32_t j = 0; j < N; ++j) g[size_t(b) * stride + j] = (double(gen()) - 2.1e9) * std::pow(10.0, double(gen() % 20) - 10);
  std::vector<uint32_t> samples;
  for (uint32_t b = 0; b < B; b += 1 + gen() % 2) samples.push_back(b);
  const auto sum_in_order = [&](const std::vector<uint32_t>& order) {
    std::vector<double> row(len, 0.0);
    for (uint32_t b : order)
      for (uint32_t i = 0; i < len; ++i) row[i] += g[size_t(b) * stride + tokens[size_t(b) * T + t0 + i]];
    return row;
  };
  std::vector<double> got(len + 1, -7.0);
  scb::gather_column(tokens.data() + t0, T, g.data(), stride, samples.data(), uint32_t(samples.size()), len, got.data());
  const std::vector<double> want = sum_in_order(samples);
  for (uint32_t i = 0; i < len; ++i) ASSERT_EQ(std::memcmp(&got[i], &want[i], sizeof(double)), 0) << "position " << i;
  EXPECT_EQ(got[len], -7.0) << "wrote past len";
  const std::vector<double> reversed = sum_in_order(std::vector<uint32_t>(samples.rbegin(), samples.rend()));
  EXPECT_FALSE(std::equal(want.begin(), want.end(), reversed.begin())) << "the order never mattered: a weak test";
  std::vector<double> none(len, -7.0);
  scb::gather_column(tokens.data() + t0, T, g.data(), stride, samples.data(), 0, len, none.data());
  for (double x : none) ASSERT_TRUE(x == 0.0 && !std::signbit(x)) << "no sample: +0.0";
}

}  // namespace

// sum_outer_rows against the plain loop it replaces (dV filled with +0.0, then dV[i][j] += r_i h_j
// sample by sample), bit for bit: sizes with a partial last chunk of sixteen columns and an odd
// row count, values of mixed sign and magnitude (a changed order of additions shows in the bits),
// a column whose products are all -0.0 (a sum from +0.0 ends +0.0, one from the first product
// -0.0), and guard entries past dV that must stay untouched.
TEST(SumOuterRows, EqualsSampleBySampleLoopBitForBit) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (uint32_t N : {5u, 16u, 37u, 100u}) {
    const uint32_t stride = (N + 15) / 16 * 16, B = 23;
    std::vector<double> R(size_t(B) * stride, 0.0), H(size_t(B) * stride, 0.0);
    for (uint32_t b = 0; b < B; ++b)
      for (uint32_t j = 0; j < N; ++j) {
        R[size_t(b) * stride + j] = u(rng) * std::pow(10.0, int(rng() % 9) - 4);
        H[size_t(b) * stride + j] = j == 1 ? -0.0 : u(rng) * std::pow(10.0, int(rng() % 9) - 4);
      }
    for (uint32_t b = 0; b < B; ++b) R[size_t(b) * stride] = 1.0 + b;  // row 0, column 1: -0.0 only
    constexpr size_t kGuard = 16;
    std::vector<double> want(size_t(N) * N, 0.0), got(size_t(N) * N + kGuard, 7.0);
    for (uint32_t b = 0; b < B; ++b)
      for (uint32_t i = 0; i < N; ++i)
        for (uint32_t j = 0; j < N; ++j) want[size_t(i) * N + j] += R[size_t(b) * stride + i] * H[size_t(b) * stride + j];
    // In blocks of rows as the phase hands them out, an odd-sized last block included.
    for (uint32_t i0 = 0; i0 < N; i0 += 7) scb::sum_outer_rows(R.data(), H.data(), stride, B, N, i0, std::min(N, i0 + 7), got.data());
    EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(double))) << "N = " << N;
    EXPECT_FALSE(std::signbit(got[1])) << "N = " << N;
    for (size_t e = want.size(); e < got.size(); ++e) EXPECT_EQ(got[e], 7.0) << "N = " << N << " past dV";
  }
}
