// docs/rng.md: Philox4x32-10 against the Random123 known-answer vectors, the uniform helpers, and
// the integer Walker/Vose alias tables (exact probabilities and a chi-square test of sampling).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "scb/core/alias.hpp"
#include "scb/core/philox.hpp"
#include "scb/cpu/token_draw.hpp"
#include "test_util.hpp"

namespace {

using scb::Philox4;

void expect_words(const Philox4& got, std::array<uint32_t, 4> want) {
  for (int i = 0; i < 4; ++i) EXPECT_EQ(got.v[i], want[i]) << "word " << i;
}

TEST(Philox, KnownAnswerZero) {
  expect_words(scb::philox4x32_10(Philox4{{0, 0, 0, 0}}, 0, 0), {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
}

TEST(Philox, KnownAnswerAllOnes) {
  const uint32_t f = 0xffffffffu;
  expect_words(scb::philox4x32_10(Philox4{{f, f, f, f}}, f, f), {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
}

TEST(Philox, KnownAnswerPi) {
  expect_words(scb::philox4x32_10(Philox4{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u),
               {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST(Philox, SeedIsLowThenHighKeyWord) {
  // scb::philox(seed, c0..c3): k0 = low 32 bits of seed, k1 = high 32 bits; counter in order.
  expect_words(scb::philox(0x299f31d0a4093822ull, 0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u),
               {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
  expect_words(scb::philox(0xffffffffffffffffull, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu),
               {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  // Swapping the halves of the key changes the output.
  const Philox4 a = scb::philox(0x0000000100000002ull, 1, 2, 3, 4);
  const Philox4 b = scb::philox(0x0000000200000001ull, 1, 2, 3, 4);
  EXPECT_NE(a.v[0], b.v[0]);
  const Philox4 c = scb::philox4x32_10(Philox4{{1, 2, 3, 4}}, 2, 1);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(a.v[i], c.v[i]);
}

TEST(Philox, EveryCounterWordMatters) {
  const Philox4 base = scb::philox(7, 0, 0, 0, 0);
  for (int i = 0; i < 4; ++i) {
    uint32_t c[4] = {0, 0, 0, 0};
    c[i] = 1;
    const Philox4 other = scb::philox(7, c[0], c[1], c[2], c[3]);
    EXPECT_NE(base.v[0], other.v[0]) << "counter word " << i;
  }
}

TEST(Uniform, Open01NeverReturnsOne) {
  // philox.hpp promises a value in (0, 1), "never 0 or 1". With all 53 bits set,
  // (2^53 - 1) + 0.5 is a rounding tie in double and rounds to 2^53, so the result is 1.0.
  EXPECT_LT(scb::uniform_open01(0xffffffffu, 0xffffffffu), 1.0);
  EXPECT_LT(scb::uniform_open01(0xffffffffu, 0xfffff800u), 1.0);
}

TEST(Uniform, Open01Range) {
  EXPECT_GT(scb::uniform_open01(0, 0), 0.0);
  EXPECT_LT(scb::uniform_open01(0, 0), 0x1.0p-52);
  EXPECT_LT(scb::uniform_open01(0xffffffffu, 0xffffefffu), 1.0);
  EXPECT_GT(scb::uniform_open01(0xffffffffu, 0xffffefffu), 1.0 - 0x1.0p-51);
  // 53 bits: the low word contributes its top 21 bits.
  EXPECT_NE(scb::uniform_open01(0, 0), scb::uniform_open01(0, 0x800u));
  EXPECT_LT(scb::uniform_open01(0x1u, 0), scb::uniform_open01(0x2u, 0));
  // Moments over Philox words.
  const int n = 400000;
  double s = 0, s2 = 0, lo = 1, hi = 0;
  for (int i = 0; i < n / 2; ++i) {
    const Philox4 w = scb::philox(3, uint32_t(i), 0, 0, scbtest::kTestStream);
    for (double u : {scb::uniform_open01(w.v[0], w.v[1]), scb::uniform_open01(w.v[2], w.v[3])}) {
      ASSERT_GT(u, 0.0);
      ASSERT_LT(u, 1.0);
      s += u;
      s2 += u * u;
      lo = std::min(lo, u);
      hi = std::max(hi, u);
    }
  }
  const double mean = s / n, var = s2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 6 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(var, 1.0 / 12, 6 * std::sqrt(1.0 / 180 / n));
  EXPECT_LT(lo, 1e-4);
  EXPECT_GT(hi, 1 - 1e-4);
}

TEST(Uniform, BelowMatchesWideMultiply) {
  const std::vector<uint64_t> ns = {1, 2, 3, 7, 100, 1000000007ull, 0xffffffffull, 0x100000000ull, 0x100000001ull,
                                    0x123456789abcdefull, 1ull << 63, 0xffffffffffffffffull};
  for (uint64_t n : ns) {
    for (uint32_t i = 0; i < 2000; ++i) {
      const Philox4 w = scb::philox(11, i, uint32_t(n), uint32_t(n >> 32), scbtest::kTestStream);
      const uint64_t x = (uint64_t(w.v[0]) << 32) | w.v[1];
      const uint64_t want = static_cast<uint64_t>((static_cast<unsigned __int128>(x) * n) >> 64);
      const uint64_t got = scb::uniform_below(w.v[0], w.v[1], n);
      ASSERT_EQ(got, want) << "n=" << n << " i=" << i;
      ASSERT_LT(got, n);
    }
    // Extremes of the word.
    EXPECT_EQ(scb::uniform_below(0, 0, n), 0u);
    EXPECT_EQ(scb::uniform_below(0xffffffffu, 0xffffffffu, n), n - 1) << "n=" << n;
  }
}

TEST(Uniform, BelowIsUniformOnSmallRange) {
  const uint64_t n = 10;
  const int draws = 500000;
  std::vector<double> count(n, 0);
  for (int i = 0; i < draws; ++i) {
    const Philox4 w = scb::philox(5, uint32_t(i), 1, 0, scbtest::kTestStream);
    count[scb::uniform_below(w.v[0], w.v[1], n)] += 1;
  }
  double chi2 = 0;
  for (double c : count) chi2 += (c - double(draws) / n) * (c - double(draws) / n) / (double(draws) / n);
  EXPECT_LT(chi2, scbtest::chi2_critical_1e6(n - 1));
}

// ---- Alias tables ----

std::vector<double> random_distribution(uint32_t n, uint64_t seed, double zero_fraction = 0) {
  std::vector<double> p(n);
  for (uint32_t i = 0; i < n; ++i) {
    const double u = scbtest::test_uniform(seed, i, 1);
    p[i] = u < zero_fraction ? 0.0 : -std::log(scbtest::test_uniform(seed, i, 2));
  }
  if (std::accumulate(p.begin(), p.end(), 0.0) == 0) p[0] = 1;
  const double s = std::accumulate(p.begin(), p.end(), 0.0);
  for (double& x : p) x /= s;
  return p;
}

void expect_table_matches(const std::vector<double>& p, const char* what) {
  const scb::AliasTable t = scb::build_alias_table(p);
  ASSERT_EQ(t.size(), p.size()) << what;
  const std::vector<double> q = scb::alias_probabilities(t);
  ASSERT_EQ(q.size(), p.size()) << what;
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_NEAR(q[i], p[i], 1e-9) << what << " outcome " << i;
    if (p[i] == 0) EXPECT_EQ(q[i], 0.0) << what << ": a zero-probability outcome must be impossible, outcome " << i;
    EXPECT_LT(t.alias[i], t.size()) << what;
  }
}

TEST(Alias, ProbabilitiesMatchInput) {
  expect_table_matches({1.0}, "n=1");
  expect_table_matches({0.25, 0.25, 0.25, 0.25}, "uniform");
  expect_table_matches({0.5, 0.25, 0.125, 0.125}, "dyadic");
  expect_table_matches({0.0, 0.3, 0.0, 0.7}, "with zeros");
  expect_table_matches({0.0, 0.0, 1.0, 0.0, 0.0}, "one-hot");
  expect_table_matches({1.0, 0.0}, "one-hot first");
  expect_table_matches({0.0, 1.0}, "one-hot last");
  expect_table_matches({1.0 / 3, 1.0 / 3, 1.0 / 3}, "thirds");
  expect_table_matches({1e-12, 1 - 1e-12}, "tiny");
  expect_table_matches(random_distribution(7, 1), "random 7");
  expect_table_matches(random_distribution(50, 2, 0.3), "random 50 with zeros");
  expect_table_matches(random_distribution(500, 3), "random 500");
  expect_table_matches(random_distribution(500, 4, 0.8), "random 500 mostly zeros");
  std::vector<double> skew(300, 1e-6);
  skew[17] = 1 - 299e-6;
  expect_table_matches(skew, "skewed 300");
}

TEST(Alias, BuildIsAPureFunctionOfP) {
  const std::vector<double> p = random_distribution(40, 9, 0.2);
  const scb::AliasTable a = scb::build_alias_table(p), b = scb::build_alias_table(p);
  EXPECT_EQ(a.threshold, b.threshold);
  EXPECT_EQ(a.alias, b.alias);
}

TEST(Alias, RejectsBadInput) {
  EXPECT_ANY_THROW(scb::build_alias_table(std::vector<double>{}));
  EXPECT_ANY_THROW(scb::build_alias_table(std::vector<double>{0.5, -0.1, 0.6}));
  EXPECT_ANY_THROW(scb::build_alias_table(std::vector<double>{0.0, 0.0}));
  EXPECT_ANY_THROW(scb::build_alias_table(std::vector<double>{0.5, std::numeric_limits<double>::quiet_NaN()}));
}

TEST(Alias, ZeroProbabilityOutcomesAreNeverDrawn) {
  const std::vector<double> p = {0.0, 0.3, 0.0, 0.7, 0.0};
  const scb::AliasTable t = scb::build_alias_table(p);
  // Evenly spaced words across the whole 32-bit range, including both ends.
  for (uint64_t i = 0; i <= 100000; ++i) {
    const uint32_t u = static_cast<uint32_t>(i * 0xffffffffull / 100000);
    const uint32_t x = t.sample(u);
    ASSERT_TRUE(x == 1 || x == 3) << "u=" << u << " drew " << x;
  }
  const scb::AliasTable one = scb::build_alias_table(std::vector<double>{1.0});
  EXPECT_EQ(one.sample(0), 0u);
  EXPECT_EQ(one.sample(0xffffffffu), 0u);
}

// Chi-square of alias_sample driven by Philox words against the input distribution.
double alias_chi2(const std::vector<double>& p_expected, const std::vector<double>& p_table, int draws,
                  size_t& zero_hits, double& df) {
  const scb::AliasTable t = scb::build_alias_table(p_table);
  std::vector<double> count(t.size(), 0);
  for (int i = 0; i < draws / 4; ++i) {
    const Philox4 w = scb::philox(2024, uint32_t(i), 0, 0, scbtest::kTestStream);
    for (int l = 0; l < 4; ++l)
      count[scb::alias_sample(t.threshold.data(), t.alias.data(), t.size(), w.v[l])] += 1;
  }
  double chi2 = 0;
  zero_hits = 0;
  df = -1;
  for (size_t i = 0; i < count.size(); ++i) {
    if (p_expected[i] == 0) {
      zero_hits += static_cast<size_t>(count[i]);
      continue;
    }
    const double e = p_expected[i] * draws;
    chi2 += (count[i] - e) * (count[i] - e) / e;
    df += 1;
  }
  return chi2;
}

TEST(Alias, ChiSquareOfSampling) {
  const int draws = 2000000;
  for (auto [n, zeros] : {std::pair<uint32_t, double>{13, 0.0}, {37, 0.25}, {50, 0.0}}) {
    const std::vector<double> p = random_distribution(n, 100 + n, zeros);
    size_t zero_hits = 0;
    double df = 0;
    const double chi2 = alias_chi2(p, p, draws, zero_hits, df);
    EXPECT_EQ(zero_hits, 0u) << "n=" << n;
    EXPECT_LT(chi2, scbtest::chi2_critical_1e6(df)) << "n=" << n << " df=" << df;
  }
}

TEST(Alias, ChiSquareDetectsAWrongTable) {
  // The same statistic rejects a table built for a slightly different distribution, so the
  // test above has power.
  const int draws = 2000000;
  const std::vector<double> p = random_distribution(20, 77);
  std::vector<double> wrong = p;
  wrong[3] += 0.01;  // the table normalises by the total: about 1% mass moves to outcome 3
  size_t zero_hits = 0;
  double df = 0;
  const double chi2 = alias_chi2(p, wrong, draws, zero_hits, df);
  EXPECT_GT(chi2, scbtest::chi2_critical_1e6(df));
}

}  // namespace

namespace {

// The token-drawing schedules this CPU runs (scalar always).
std::vector<scb::DrawIsa> supported_draw_isas() {
  std::vector<scb::DrawIsa> isas;
  for (scb::DrawIsa isa : {scb::DrawIsa::scalar, scb::DrawIsa::avx2, scb::DrawIsa::avx2_gather, scb::DrawIsa::avx512})
    if (scb::draw_isa_supported(isa)) isas.push_back(isa);
  return isas;
}

// The CPU's token drawing in every schedule this machine supports (scalar, AVX2, AVX-512) gives
// draw_token_block's tokens bit for bit, for any chunk start and length, on tables with 2 to 500
// outcomes (skewed and alias-heavy tables included: the mu of a random Dirichlet P), on each side of the
// register-table sizes (AVX2: 8, 16; AVX-512: 16, 32, 64) and beyond them (gathers).
TEST(TokenDraw, EverySupportedScheduleEqualsDrawTokenBlock) {
  const std::vector<scb::DrawIsa> isas = supported_draw_isas();
  if (isas.size() < 4) std::printf("[ note ] only %zu of 4 token-drawing schedules run on this CPU\n", isas.size());
  for (uint32_t N : {2u, 3u, 8u, 9u, 16u, 17u, 32u, 33u, 64u, 65u, 100u, 500u}) {
    const auto pb = scb::make_problem(
        scbtest::make_config(scbtest::json{{"problem", {{"N", N}, {"T", 1000}, {"Q", 2}, {"seed", N + 7}}}}));
    const scb::ProblemView pv = pb->view();
    for (uint32_t t0 : {0u, 4u, 32u, 996u}) {
      for (uint32_t n : {1u, 3u, 4u, 31u, 32u, 33u, 63u, 64u, 65u, 100u, 128u, 200u, 256u}) {
        std::vector<uint32_t> want(n);
        for (uint32_t i = 0; i < n; ++i) want[i] = scb::draw_token(pv, 0x1234567890abull, 9, 5, t0 + i);
        for (scb::DrawIsa isa : isas) {
          std::vector<uint32_t> got(n + 1, 0xdeadu);
          scb::draw_tokens_with(isa, pv, 0x1234567890abull, 9, 5, t0, n, got.data());
          for (uint32_t i = 0; i < n; ++i)
            ASSERT_EQ(got[i], want[i]) << "N=" << N << " t=" << t0 + i << " schedule " << scb::draw_isa_name(isa);
          EXPECT_EQ(got[n], 0xdeadu) << "wrote past n";
          std::vector<uint16_t> narrow(n + 1, 0xdeadu);  // the 16-bit form the engine keeps
          scb::draw_tokens_with(isa, pv, 0x1234567890abull, 9, 5, t0, n, narrow.data());
          for (uint32_t i = 0; i < n; ++i)
            ASSERT_EQ(narrow[i], want[i]) << "N=" << N << " t=" << t0 + i << " 16-bit, schedule " << scb::draw_isa_name(isa);
          EXPECT_EQ(narrow[n], 0xdeadu) << "wrote past n (16-bit)";
        }
        std::vector<uint32_t> got(n);
        scb::draw_tokens(pv, 0x1234567890abull, 9, 5, t0, n, got.data());
        EXPECT_EQ(got, want) << "draw_tokens (" << scb::token_draw_isa() << ")";
      }
    }
  }
}

}  // namespace

namespace {

// draw_sample_tokens (several whole samples in one call; the AVX2 schedule's rounds cross sample
// boundaries) gives each sample's draw_token tokens, in every schedule this machine supports: for
// T a multiple of 4 (the crossing case, with samples of fewer and more than 8 blocks and a last
// round part empty) and not (sample by sample), at a large sample index and seed (all 64 bits).
TEST(TokenDraw, SeveralSamplesEqualDrawTokenSampleBySample) {
  const std::vector<scb::DrawIsa> isas = supported_draw_isas();
  for (uint32_t N : {3u, 9u, 17u, 40u, 100u, 200u}) {
    for (uint32_t T : {4u, 8u, 12u, 28u, 32u, 36u, 60u, 64u, 68u, 100u, 101u, 256u}) {
      const auto pb = scb::make_problem(
          scbtest::make_config(scbtest::json{{"problem", {{"N", N}, {"T", T}, {"Q", 1}, {"seed", N + T}}}}));
      const scb::ProblemView pv = pb->view();
      for (uint32_t sample0 : {0u, 13u, 0xfffffff0u}) {
        for (uint32_t count : {1u, 2u, 3u, 7u, 8u, 9u}) {
          std::vector<uint32_t> want(size_t(count) * T);
          for (uint32_t i = 0; i < count; ++i)
            for (uint32_t t = 0; t < T; ++t) want[size_t(i) * T + t] = scb::draw_token(pv, 0xfedcba9876543210ull, 77, sample0 + i, t);
          for (scb::DrawIsa isa : isas) {
            std::vector<uint32_t> got(want.size() + 1, 0xdeadu);
            scb::draw_sample_tokens_with(isa, pv, 0xfedcba9876543210ull, 77, sample0, count, got.data());
            EXPECT_EQ(got.back(), 0xdeadu) << "wrote past count x T";
            got.pop_back();
            ASSERT_EQ(got, want) << "N=" << N << " T=" << T << " sample0=" << sample0 << " count=" << count
                                 << " schedule " << scb::draw_isa_name(isa);
            std::vector<uint16_t> narrow(want.size() + 1, 0xdeadu);  // the 16-bit form the engine keeps
            scb::draw_sample_tokens_with(isa, pv, 0xfedcba9876543210ull, 77, sample0, count, narrow.data());
            EXPECT_EQ(narrow.back(), 0xdeadu) << "wrote past count x T (16-bit)";
            ASSERT_TRUE(std::equal(want.begin(), want.end(), narrow.begin()))
                << "16-bit: N=" << N << " T=" << T << " sample0=" << sample0 << " count=" << count << " schedule "
                << scb::draw_isa_name(isa);
          }
          std::vector<uint32_t> got(want.size());
          scb::draw_sample_tokens(pv, 0xfedcba9876543210ull, 77, sample0, count, got.data());
          EXPECT_EQ(got, want) << "draw_sample_tokens (" << scb::token_draw_isa() << ")";
        }
      }
    }
  }
}

}  // namespace

namespace {

// draw_sample_metas (sixteen samples per Philox call with AVX-512) gives draw_sample_meta's query,
// position and output word for each sample, in every schedule this machine supports: mu's table
// in registers and in gathers (N up to 200), supports of 1 to 20 positions, any count and a
// sample index near the top of its range.
TEST(TokenDraw, SampleMetasEqualDrawSampleMeta) {
  const std::vector<scb::DrawIsa> isas = supported_draw_isas();
  for (uint32_t N : {2u, 3u, 17u, 40u, 100u, 200u}) {
    for (uint32_t Q : {1u, 2u, 5u, 20u}) {
      const auto pb = scb::make_problem(scbtest::make_config(
          scbtest::json{{"problem", {{"N", N}, {"T", 400}, {"Q", Q}, {"seed", N * 31 + Q}}}}));
      const scb::ProblemView pv = pb->view();
      for (uint32_t sample0 : {0u, 5u, 0xffffffc0u}) {
        for (uint32_t count : {1u, 7u, 16u, 17u, 33u}) {
          for (scb::DrawIsa isa : isas) {
            std::vector<scb::SampleMeta> got(count + 1, scb::SampleMeta{0xdead, 0xdead, 0xdead});
            scb::draw_sample_metas_with(isa, pv, 0x0123456789abcdefull, 41, sample0, count, got.data());
            for (uint32_t i = 0; i < count; ++i) {
              const scb::SampleMeta want = scb::draw_sample_meta(pv, 0x0123456789abcdefull, 41, sample0 + i);
              const std::string at = "N=" + std::to_string(N) + " Q=" + std::to_string(Q) + " sample " +
                                     std::to_string(sample0 + i) + " schedule " + scb::draw_isa_name(isa);
              ASSERT_EQ(got[i].k, want.k) << at;
              ASSERT_EQ(got[i].s, want.s) << at;
              ASSERT_EQ(got[i].output_word, want.output_word) << at;
            }
            EXPECT_EQ(got[count].k, 0xdeadu) << "wrote past count";
          }
        }
      }
    }
  }
}

}  // namespace
