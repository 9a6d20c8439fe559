// docs/rng.md section 4: the Box-Muller of gaussian.hpp (ln u and sin/cos of 2 pi u from IEEE
// operations alone) against long double references, its known answers, and the CPU's vectorised
// noise (draw_noise, the clone this machine runs) against the scalar gradient_noise, bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "scb/core/gaussian.hpp"
#include "scb/core/model.hpp"
#include "scb/cpu/noise_draw.hpp"

namespace {

double ulps(double got, long double want) {
  const double w = static_cast<double>(want);
  const double ulp = std::nextafter(std::fabs(w), INFINITY) - std::fabs(w);
  return static_cast<double>(std::fabs(static_cast<long double>(got) - want)) / ulp;
}

// Words at both ends, at every quarter turn (where the quadrant changes) and at random.
std::vector<uint32_t> test_words() {
  std::vector<uint32_t> w;
  for (uint32_t i = 0; i < 2048; ++i) w.push_back(i), w.push_back(0xFFFFFFFFu - i);
  for (uint64_t q = 0; q <= 8; ++q)  // multiples of 2^29: quarter turns and the halfway points between them
    for (int d = -64; d < 64; ++d) w.push_back(static_cast<uint32_t>((q << 29) + static_cast<uint64_t>(d)));
  std::mt19937_64 g(5);
  for (int i = 0; i < 1000000; ++i) w.push_back(static_cast<uint32_t>(g()));
  return w;
}

TEST(Gaussian, LogOfWordWithinTwoUlpOfLongDouble) {
  double worst = 0;
  for (uint32_t w : test_words()) {
    const long double u = (static_cast<long double>(w) + 0.5L) * 0x1p-32L;
    worst = std::max(worst, ulps(scb::log_of_word(w), logl(u)));
  }
  EXPECT_LE(worst, 2.0);
}

TEST(Gaussian, SinCosOfWordWithinTwoUlpOfLongDouble) {
  // The reference reduces exactly too (q quarter turns and the rest r), so that it is not the
  // long double rounding of 2 pi u near a zero of sin or cos that is measured.
  const long double half_pi = 1.57079632679489661923132169163975144L;
  double worst_sin = 0, worst_cos = 0, worst_turn = 0;
  for (uint32_t w : test_words()) {
    const uint32_t q = ((w >> 29) + 1u) >> 1;
    const long double r = (static_cast<long double>(w) + 0.5L - static_cast<long double>(q) * 1073741824.0L) * 0x1p-30L;
    ASSERT_LE(std::fabs(static_cast<double>(r)), 0.5) << w;
    const long double sr = sinl(half_pi * r), cr = cosl(half_pi * r);
    const long double S[4] = {sr, cr, -sr, -cr}, C[4] = {cr, -sr, -cr, sr};
    double s, c;
    scb::sincos_of_word(w, s, c);
    worst_sin = std::max(worst_sin, ulps(s, S[q & 3u]));
    worst_cos = std::max(worst_cos, ulps(c, C[q & 3u]));
    // Independently of the reduction: libm's sin and cos of the angle itself.
    const double angle = 6.283185307179586476925 * ((static_cast<double>(w) + 0.5) * 0x1.0p-32);
    worst_turn = std::max({worst_turn, std::fabs(s - std::sin(angle)), std::fabs(c - std::cos(angle))});
  }
  EXPECT_LE(worst_sin, 2.0);
  EXPECT_LE(worst_cos, 2.0);
  EXPECT_LT(worst_turn, 2e-15);  // libm's angle carries 2 pi u's rounding (about 1e-15 at u near 1)
}

TEST(Gaussian, KnownAnswers) {
  EXPECT_EQ(scb::log_of_word(0), -0x1.6dfb516f20bbfp+4);  // -33 ln 2: the deepest tail
  EXPECT_EQ(scb::log_of_word(0xFFFFFFFFu), -0x1.000000004p-33);
  double s, c;
  scb::sincos_of_word(0x40000000u, s, c);  // a quarter turn and half a word
  EXPECT_EQ(s, 1.0);
  EXPECT_EQ(c, -0x1.921fb54442d18p-31);
  // The first two noise blocks of (seed 17, step 3, A): pinned, because every population run's
  // bits hang on them (a change here is a change of results: README's list of such changes).
  const double want[8] = {-0x1.f52e966cf3f1dp-3, -0x1.851d205766c76p-3, -0x1.2c08257598c21p+0, 0x1.ac44f67b268fdp-1,
                          -0x1.393386e72290ep-1, -0x1.388d5198aeeeap-1, 0x1.c522b767d5279p-4, -0x1.940f4829e9d6p-1};
  for (uint32_t b = 0; b < 2; ++b) {
    double z[4];
    scb::gradient_noise_block(17, 3, 0, b, z);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(z[i], want[4 * b + i]) << "block " << b << " lane " << i;
  }
}

TEST(Gaussian, EveryNoiseFormEqualsGradientNoiseBitForBit) {
  // Every form this CPU runs (scalar, x86-64-v3, x86-64-v4) and the one draw_noise picks; every
  // start modulo four, lengths across one and several groups of sixteen blocks, both matrices,
  // and an index beyond 2^32 (its block still fits the 32-bit counter).
  std::vector<double> out(300);
  int forms = 0;
  for (scb::DrawIsa isa : {scb::DrawIsa::scalar, scb::DrawIsa::avx2, scb::DrawIsa::avx512}) {
    if (!scb::noise_isa_supported(isa)) continue;
    ++forms;
    for (uint64_t base : {uint64_t{0}, uint64_t{1000003}, (uint64_t{1} << 33) + 5})
      for (uint32_t matrix : {0u, 1u})
        for (uint32_t offset = 0; offset < 4; ++offset)
          for (uint32_t count : {0u, 1u, 3u, 4u, 5u, 63u, 64u, 65u, 130u, 300u}) {
            const uint64_t index0 = base + offset;
            scb::draw_noise_with(isa, 99, 7, matrix, index0, count, out.data());
            for (uint32_t i = 0; i < count; ++i)
              ASSERT_EQ(out[i], scb::gradient_noise(99, 7, matrix, index0 + i))
                  << scb::draw_isa_name(isa) << ": index " << index0 + i << " matrix " << matrix << " count " << count;
            scb::draw_noise(99, 7, matrix, index0, count, out.data());
            for (uint32_t i = 0; i < count; ++i) ASSERT_EQ(out[i], scb::gradient_noise(99, 7, matrix, index0 + i));
          }
  }
  std::printf("noise forms checked: %d\n", forms);
}

}  // namespace
