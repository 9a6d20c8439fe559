// The vectorised small-vocabulary loops (scb/cpu/small_vocab.hpp) against the scalar loops they
// replace, bit for bit: every N they take, lengths that are not multiples of four, chunks that
// continue earlier partial sums, and values that would expose a changed order or a lost sign
// (-0.0, subnormals, huge and tiny magnitudes mixed, a pending scale).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "scb/cpu/small_vocab.hpp"

namespace {

uint64_t bits(double x) {
  uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

std::vector<float> awkward_values(size_t n, std::mt19937& gen) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> a(n);
  for (size_t i = 0; i < n; ++i) {
    switch (gen() % 6) {
      case 0: a[i] = -0.0f; break;
      case 1: a[i] = std::numeric_limits<float>::denorm_min() * float(gen() % 7); break;
      case 2: a[i] = u(gen) * 1e30f; break;
      default: a[i] = u(gen); break;
    }
  }
  return a;
}

TEST(SmallVocab, ScatterEqualsScalarPartialSums) {
  std::mt19937 gen(11);
  for (uint32_t N = 1; N <= scb::kSmallVocabMaxN; ++N) {
    if (!scb::small_vocab_kernels(N)) GTEST_SKIP() << "no AVX2 on this CPU: the scalar loops run";
    for (uint32_t n : {1u, 3u, 4u, 7u, 64u, 100u, 256u}) {
      std::vector<uint32_t> x(n);
      for (auto& t : x) t = gen() % N;
      const std::vector<float> a = awkward_values(n, gen);
      for (float scale : {1.0f, 0.37f}) {
        // Start from partial sums of an earlier chunk, as forward_sample does.
        std::vector<double> want(4 * N), got(4 * N);
        std::vector<uint64_t> want_c(4 * N), got_c(4 * N);
        for (uint32_t e = 0; e < 4 * N; ++e) want[e] = got[e] = double(e % 3) * 0.25, want_c[e] = got_c[e] = e;
        for (uint32_t i = 0; i < n; ++i) {
          want[4 * x[i] + (i & 3u)] += static_cast<double>(a[i] * scale);
          ++want_c[4 * x[i] + (i & 3u)];
        }
        scb::scatter_small_vocab(x.data(), a.data(), scale, n, N, got.data(), got_c.data());
        for (uint32_t e = 0; e < 4 * N; ++e) {
          ASSERT_EQ(bits(got[e]), bits(want[e])) << "N=" << N << " n=" << n << " entry " << e;
          ASSERT_EQ(got_c[e], want_c[e]) << "N=" << N << " n=" << n << " entry " << e;
        }
        // fresh: as if part and count had been zeroed, whatever they hold.
        std::vector<double> fresh_want(4 * N, 0.0), fresh_got(4 * N, 7.5);
        std::vector<uint64_t> fresh_want_c(4 * N, 0), fresh_got_c(4 * N, 9);
        for (uint32_t i = 0; i < n; ++i) {
          fresh_want[4 * x[i] + (i & 3u)] += static_cast<double>(a[i] * scale);
          ++fresh_want_c[4 * x[i] + (i & 3u)];
        }
        scb::scatter_small_vocab(x.data(), a.data(), scale, n, N, fresh_got.data(), fresh_got_c.data(), true);
        for (uint32_t e = 0; e < 4 * N; ++e) {
          ASSERT_EQ(bits(fresh_got[e]), bits(fresh_want[e])) << "fresh N=" << N << " n=" << n << " entry " << e;
          ASSERT_EQ(fresh_got_c[e], fresh_want_c[e]) << "fresh N=" << N << " n=" << n << " entry " << e;
        }
      }
    }
  }
}

TEST(SmallVocab, ScatterFromZeroNeverTurnsSumsNegativeZero) {
  // A column of -0.0 attention: the scalar sums stay +0.0, and so must the lanes.
  if (!scb::small_vocab_kernels(3)) GTEST_SKIP() << "no AVX2 on this CPU: the scalar loops run";
  const std::vector<uint32_t> x = {0, 1, 2, 0, 1, 2, 0, 1};
  const std::vector<float> a(x.size(), -0.0f);
  std::vector<double> part(12, 0.0);
  std::vector<uint64_t> count(12, 0);
  scb::scatter_small_vocab(x.data(), a.data(), 1.0f, uint32_t(x.size()), 3, part.data(), count.data());
  for (double p : part) EXPECT_EQ(bits(p), bits(0.0));
}

TEST(SmallVocab, GatherEqualsScalarLoop) {
  std::mt19937 gen(5);
  for (uint32_t N = 1; N <= scb::kSmallVocabMaxN; ++N) {
    if (!scb::small_vocab_kernels(N)) GTEST_SKIP() << "no AVX2 on this CPU: the scalar loops run";
    double g[scb::kSmallVocabMaxN];
    for (uint32_t j = 0; j < scb::kSmallVocabMaxN; ++j) g[j] = j < N ? (double(gen()) - 2e9) * 1e-7 : 1e300;
    for (uint32_t len : {1u, 2u, 5u, 36u, 64u}) {
      std::vector<uint16_t> tok(len);
      for (auto& t : tok) t = uint16_t(gen() % N);
      std::vector<double> want(len), got(len);
      for (uint32_t i = 0; i < len; ++i) want[i] = got[i] = double(i) * 1e-17 - 0.5;
      for (int sample = 0; sample < 3; ++sample) {  // accumulated over samples, as gather_block does
        for (uint32_t i = 0; i < len; ++i) want[i] += g[tok[i]];
        scb::gather_small_vocab(tok.data(), g, len, got.data());
      }
      for (uint32_t i = 0; i < len; ++i) ASSERT_EQ(bits(got[i]), bits(want[i])) << "N=" << N << " i=" << i;
    }
  }
}

}  // namespace
