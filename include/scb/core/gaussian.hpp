#pragma once
// Box-Muller from two Philox words with nothing but correctly rounded IEEE operations (+, -, *,
// /, sqrt and fma): ln u by the atanh series after an exact split into exponent and mantissa,
// sin and cos of 2 pi u by Taylor polynomials after a reduction that is exact in u's own units
// (quarter turns of the 32-bit word). libm's log and sincos, and CUDA's, promise neither the
// same bits on every machine nor vectorised loops; these do both: the CPU's vectorised noise
// (src/cpu/noise_draw.cpp), its scalar form and the device compute the same normals, and
// every step of a population run costs a fraction of what libm's calls did. The words map to
// u = (w + 1/2) 2^-32, so u is never 0 or 1 and the tails end at sqrt(66 ln 2) = 6.76 sigma.
// Accuracy: within 2 units in the last place of the exact values (tests/test_gaussian.cpp).
#include <cmath>
#include <cstdint>
#include <cstring>

#include "scb/core/hd.hpp"

namespace scb {

SCB_HD uint64_t bits_of(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(x));
#else
  uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
#endif
}

SCB_HD double double_of(uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(b));
#else
  double x;
  std::memcpy(&x, &b, sizeof x);
  return x;
#endif
}

// w + 1/2, exactly (33 significant bits), through the signed 32-bit conversion every vector
// instruction set has.
SCB_HD double word_plus_half(uint32_t w) {
  return static_cast<double>(static_cast<int32_t>(w ^ 0x80000000u)) + 2147483648.5;
}

// ln((w + 1/2) 2^-32). d = w + 1/2 = m 2^e with m in [sqrt(1/2), sqrt(2)) (exact), then
// ln m = 2 atanh(f), f = (m - 1)/(m + 1), |f| <= 0.172, by its series to f^23 (the next term
// is below 2^-60 of the sum), and e ln 2 in two parts (ln2_hi has 20 zero bits: e ln2_hi is exact).
SCB_HD double log_of_word(uint32_t w) {
  const uint64_t b = bits_of(word_plus_half(w));
  // m > sqrt(2) compared on the mantissa bits, and halved through the exponent field: integer
  // selects, which GCC vectorises where it leaves a select on a double comparison scalar.
  const uint64_t mantissa = b & 0x000FFFFFFFFFFFFFull;
  const uint64_t high = mantissa > 0x6A09E667F3BCDull ? 1u : 0u;  // sqrt(2) = 0x1.6a09e667f3bcdp+0
  const double m = double_of(mantissa | ((0x3FFull - high) << 52));
  const double e = double_of(((b >> 52) + high) | 0x4330000000000000ull) - (4503599627370496.0 + 1023.0 + 32.0);
  const double f = (m - 1.0) / (m + 1.0), s = f * f;
  double p = 0x1.642c8590b2164p-5;  // 1/23
  p = fma(p, s, 0x1.8618618618618p-5);
  p = fma(p, s, 0x1.af286bca1af28p-5);
  p = fma(p, s, 0x1.e1e1e1e1e1e1ep-5);
  p = fma(p, s, 0x1.1111111111111p-4);
  p = fma(p, s, 0x1.3b13b13b13b14p-4);
  p = fma(p, s, 0x1.745d1745d1746p-4);
  p = fma(p, s, 0x1.c71c71c71c71cp-4);
  p = fma(p, s, 0x1.2492492492492p-3);
  p = fma(p, s, 0x1.999999999999ap-3);
  p = fma(p, s, 0x1.5555555555555p-2);
  const double two_f = 2.0 * f;
  const double ln_m = fma(two_f * s, p, two_f);  // 2f (1 + s p): the leading 1 added last
  return fma(e, 0x1.62e42fef00000p-1, fma(e, 0x1.473de6af278edp-34, ln_m));
}

// sin and cos of 2 pi (w + 1/2) 2^-32. q = the nearest quarter turn (0..4), r = the rest in
// quarter turns, exactly, in (-1/2, 1/2); sin and cos of (pi/2) r by Taylor polynomials in r
// (to r^17 and r^18: the next terms are below 2^-55), then the quadrant's signs and swap.
SCB_HD void sincos_of_word(uint32_t w, double& s, double& c) {
  const uint32_t q = ((w >> 29) + 1u) >> 1;
  const double r = (word_plus_half(w) - static_cast<double>(static_cast<int32_t>(q)) * 1073741824.0) * 0x1.0p-30;
  const double x = r * r;
  double ps = 0x1.aaec32af93359p-38;
  ps = fma(ps, x, -0x1.6fadb9f155744p-31);
  ps = fma(ps, x, 0x1.e8f434d018d63p-25);
  ps = fma(ps, x, -0x1.e3074fde8871fp-19);
  ps = fma(ps, x, 0x1.50783487ee782p-13);
  ps = fma(ps, x, -0x1.32d2cce62bd86p-8);
  ps = fma(ps, x, 0x1.466bc6775aae2p-4);
  ps = fma(ps, x, -0x1.4abbce625be53p-1);
  ps = fma(ps, x, 0x1.921fb54442d18p+0);
  const double sin_r = r * ps;
  double pc = -0x1.2a0c591af8314p-41;
  pc = fma(pc, x, 0x1.20c62c2f2d7f5p-34);
  pc = fma(pc, x, -0x1.b6e24f44b128fp-28);
  pc = fma(pc, x, 0x1.f9d38a3763cc3p-22);
  pc = fma(pc, x, -0x1.a6d1f2a204a8cp-16);
  pc = fma(pc, x, 0x1.e1f506891babbp-11);
  pc = fma(pc, x, -0x1.55d3c7e3cbffap-6);
  pc = fma(pc, x, 0x1.03c1f081b5ac4p-2);
  pc = fma(pc, x, -0x1.3bd3cc9be45dep+0);
  const double cos_r = fma(pc, x, 1.0);
  const bool odd = (q & 1u) != 0;
  const double s0 = odd ? cos_r : sin_r, c0 = odd ? sin_r : cos_r;
  s = (q & 2u) ? -s0 : s0;
  c = ((q + 1u) & 2u) ? -c0 : c0;
}

// The two normals of words (w0, w1): r cos(2 pi u1), r sin(2 pi u1) with r = sqrt(-2 ln u0).
SCB_HD void normal_pair(uint32_t w0, uint32_t w1, double& z_cos, double& z_sin) {
  const double radius = sqrt(-2.0 * log_of_word(w0));
  double s, c;
  sincos_of_word(w1, s, c);
  z_cos = radius * c;
  z_sin = radius * s;
}

}  // namespace scb
