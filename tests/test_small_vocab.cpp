// The vectorised small-vocabulary loops (scb/cpu/small_vocab.hpp) against the scalar loops they
// replace, bit for bit: every N they take, lengths that are not multiples of four, chunks that
// continue earlier partial sums, and values that would expose a changed order or a lost sign
// (-0.0, subnormals, huge and tiny magnitudes mixed, a pending scale).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "scb/core/problem.hpp"
#include "scb/cpu/sample.hpp"
#include "scb/cpu/small_vocab.hpp"
#include "scb/cpu/token_draw.hpp"
#include "test_util.hpp"

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
      std::vector<uint16_t> x(n);
      for (auto& t : x) t = uint16_t(gen() % N);
      const std::vector<float> a = awkward_values(n, gen);
      for (float scale : {1.0f, 0.37f}) {
        // Start from partial sums of an earlier chunk, as forward_sample does.
        // got holds four more entries than part needs: the vector loops must not write them.
        std::vector<double> want(4 * N), got(4 * N + 4, -3.0);
        std::vector<uint64_t> want_c(4 * N), got_c(4 * N + 4, 77);
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
        for (uint32_t e = 4 * N; e < 4 * N + 4; ++e)
          ASSERT_TRUE(got[e] == -3.0 && got_c[e] == 77) << "wrote past part, N=" << N << " n=" << n;
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
  const std::vector<uint16_t> x = {0, 1, 2, 0, 1, 2, 0, 1};
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

// A whole row of phase 3 (gather_column_small_vocab: summed in registers over the column's
// samples, listed in sample order) equals the samples added one by one in sample order from +0.0, for full and partial
// rows, columns queried by many, one or no samples, and values whose sum depends on the order.
TEST(SmallVocab, GatherColumnEqualsSamplesOneByOne) {
  std::mt19937 gen(6);
  for (uint32_t N = 1; N <= scb::kSmallVocabMaxN; ++N) {
    const uint32_t T = 100, B = 37, stride = 16;
    std::vector<uint16_t> tokens(size_t(B) * T);
    for (auto& t : tokens) t = uint16_t(gen() % N);
    std::vector<double> g(size_t(B) * stride, 1e300);
    std::vector<uint32_t> query(B);
    for (uint32_t b = 0; b < B; ++b) {
      query[b] = b == 5 ? N : uint32_t(gen() % N);  // column N: queried by sample 5 alone
      for (uint32_t j = 0; j < N; ++j) g[size_t(b) * stride + j] = (double(gen()) - 2.1e9) * std::pow(10.0, double(gen() % 20) - 10);
    }
    for (uint32_t column = 0; column <= N + 1; ++column) {  // N + 1: no sample
      for (uint32_t t0 : {0u, 64u}) {
        for (uint32_t len : {1u, 7u, 8u, 36u, 63u, 64u}) {
          if (t0 + len > T) continue;
          std::vector<double> want(len, 0.0), got(len + 1, -7.0);
          for (uint32_t b = 0; b < B; ++b)
            if (query[b] == column)
              for (uint32_t i = 0; i < len; ++i) want[i] += g[size_t(b) * stride + tokens[size_t(b) * T + t0 + i]];
          std::vector<uint32_t> samples;
          for (uint32_t b = 0; b < B; ++b)
            if (query[b] == column) samples.push_back(b);
          scb::gather_column_small_vocab(tokens.data() + t0, T, g.data(), stride, samples.data(), uint32_t(samples.size()),
                                         len, got.data());
          for (uint32_t i = 0; i < len; ++i)
            ASSERT_EQ(bits(got[i]), bits(want[i])) << "N=" << N << " column " << column << " len " << len << " i=" << i;
          EXPECT_EQ(got[len], -7.0) << "wrote past len";
        }
      }
    }
  }
}

}  // namespace

namespace {

// Two samples' scatters side by side give each sample's partial sums, bit for bit.
TEST(SmallVocab, ScatterPairEqualsEachSampleAlone) {
  std::mt19937 gen(12);
  for (uint32_t N = 1; N <= scb::kSmallVocabMaxN; ++N) {
    for (uint32_t n : {1u, 3u, 4u, 7u, 100u, 256u}) {
      for (bool fresh : {false, true}) {
        std::vector<uint16_t> x[2];
        std::vector<float> a[2];
        std::vector<double> want[2], got[2];
        std::vector<uint64_t> want_c[2], got_c[2];
        scb::ScatterStream pair[2];
        const float scale[2] = {1.0f, 0.37f};
        for (int q = 0; q < 2; ++q) {
          x[q].resize(n);
          for (auto& t : x[q]) t = gen() % N;
          a[q] = awkward_values(n, gen);
          want[q].assign(4 * N + 4, -3.0), want_c[q].assign(4 * N + 4, 77);
          for (uint32_t e = 0; e < 4 * N; ++e) want[q][e] = double(e % 5) * 0.125 + q, want_c[q][e] = e + q;
          got[q] = want[q], got_c[q] = want_c[q];
          scb::scatter_small_vocab(x[q].data(), a[q].data(), scale[q], n, N, want[q].data(), want_c[q].data(), fresh);
          pair[q] = {x[q].data(), a[q].data(), scale[q], got[q].data(), got_c[q].data()};
        }
        scb::scatter_small_vocab_pair(pair, n, N, fresh);
        for (int q = 0; q < 2; ++q)
          for (uint32_t e = 0; e < 4 * N + 4; ++e) {
            ASSERT_EQ(bits(got[q][e]), bits(want[q][e])) << "N=" << N << " n=" << n << " sample " << q << " entry " << e;
            ASSERT_EQ(got_c[q][e], want_c[q][e]) << "N=" << N << " n=" << n << " sample " << q << " entry " << e;
          }
      }
    }
  }
}

// forward_sample_pair against forward_sample of each sample: rows, tokens and results, for a
// vocabulary the pair runs side by side (N <= 4) and one it hands to forward_sample (N = 9), T
// over several chunks with a tail, with and without a pending scale, pre-drawn tokens and the
// columns widened beforehand.
TEST(ForwardSamplePair, EqualsEachSampleAlone) {
  for (uint32_t N : {2u, 3u, 4u, 9u}) {
    for (uint32_t T : {100u, 1001u}) {
      const auto pb = scb::make_problem(
          scbtest::make_config(scbtest::json{{"problem", {{"N", N}, {"T", T}, {"Q", 2}, {"seed", N * T}}}}));
      const scb::ProblemView pv = pb->view();
      std::mt19937 gen(N + T);
      std::uniform_real_distribution<float> u(0.0f, 1.0f);
      std::vector<float> V(size_t(N) * N), A(size_t(N) * T), scale(N);
      for (auto& v : V) v = u(gen);
      for (auto& v : A) v = u(gen) / float(T);
      for (auto& v : scale) v = 0.5f + u(gen);
      for (bool with_scale : {false, true}) {
        for (bool widened : {false, true})
          for (int predrawn : {0, 1, 2}) {  // drawn here; drawn before; drawn before into the token rows
            std::vector<uint16_t> drawn(2 * size_t(T));
            if (predrawn)
              for (uint32_t q = 0; q < 2; ++q)
                scb::draw_tokens(pv, 99, 5, 40 + q, 0, T, drawn.data() + size_t(q) * T);
            std::vector<uint16_t> tok[2][2];
            std::vector<double> h[2][2], r[2][2], g[2][2];
            std::vector<uint32_t> c[2][2];
            scb::SampleResult want[2], got[2];
            scb::SampleSlot<uint16_t> pair[2];
            scb::SampleMeta meta[2];  // drawn before, as forward_batch draws them, in the last case
            scb::draw_sample_metas(pv, 99, 5, 40, 2, meta);
            const float* sc = with_scale ? scale.data() : nullptr;
            for (int w = 0; w < 2; ++w)
              for (int q = 0; q < 2; ++q)
                tok[w][q].assign(T, 0), h[w][q].assign(N, 0), r[w][q].assign(N, 0), g[w][q].assign(N, 0), c[w][q].assign(N, 0);
            for (int q = 0; q < 2; ++q) {
              const uint16_t* d = predrawn ? drawn.data() + size_t(q) * T : nullptr;
              if (predrawn == 2) tok[1][q].assign(d, d + T);
              want[q] = scb::forward_sample(pv, V.data(), A.data(), 99, 5, 40 + q, tok[0][q].data(), h[0][q].data(),
                                            c[0][q].data(), r[0][q].data(), g[0][q].data(), sc, nullptr, d);
              pair[q] = {uint32_t(40 + q), tok[1][q].data(), h[1][q].data(), c[1][q].data(), r[1][q].data(), g[1][q].data(),
                         predrawn == 2 ? tok[1][q].data() : d, predrawn == 2 ? meta + q : nullptr};
            }
            std::vector<double> wide(size_t(N) * T);  // the columns widened once, as forward_batch does
            scb::widen_columns(A.data(), sc, N, T, wide.data());
            scb::forward_sample_pair(pv, V.data(), A.data(), 99, 5, pair, got, sc, nullptr,
                                     widened ? wide.data() : nullptr);
            for (int q = 0; q < 2; ++q) {
              const std::string at = "N=" + std::to_string(N) + " T=" + std::to_string(T) + " sample " +
                                     std::to_string(q) + (widened ? " widened" : "");
              EXPECT_EQ(got[q].k, want[q].k) << at;
              EXPECT_EQ(got[q].x_o, want[q].x_o) << at;
              EXPECT_EQ(bits(got[q].a_mean), bits(want[q].a_mean)) << at;
              EXPECT_EQ(tok[1][q], tok[0][q]) << at;
              EXPECT_EQ(c[1][q], c[0][q]) << at;
              for (uint32_t j = 0; j < N; ++j) {
                ASSERT_EQ(bits(h[1][q][j]), bits(h[0][q][j])) << at << " h " << j;
                ASSERT_EQ(bits(r[1][q][j]), bits(r[0][q][j])) << at << " r " << j;
                ASSERT_EQ(bits(g[1][q][j]), bits(g[0][q][j])) << at << " g " << j;
              }
            }
          }
      }
    }
  }
}

}  // namespace
