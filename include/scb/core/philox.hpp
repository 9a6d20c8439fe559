#pragma once
// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11): the one generator of the engine.
// Counter-based, so any random number of any run can be recomputed from its coordinates
// on the CPU or the GPU, and results never depend on threads, packs, devices or resumes.
//
// Counter layout (docs/rng.md):  c0 = block of 4 positions (or element index),
//                           c1 = sample index within the step (or sub-index),
//                           c2 = step (or item index),  c3 = stream id (below).
// Key = the 64-bit seed: k0 = low 32 bits, k1 = high 32 bits.
#include <cstdint>

#include "scb/core/hd.hpp"

namespace scb {

struct Philox4 {
  uint32_t v[4];
};

// Stream ids: which kind of draw a counter belongs to. Changing one changes results.
enum Stream : uint32_t {
  kStreamTokens = 0,     // x_1..x_T: c0 = t/4, lane t%4; c1 = sample; c2 = step   (train.seed)
  kStreamSampleMeta = 1, // per sample: v0 -> query token k, v1 -> position s, v2 -> output x_o
  kStreamNoise = 2,      // population noise: c0 = coordinate / 4, c1 = 0 for A, 1 for V; c2 = step
  kStreamPDirichlet = 16,  // problem: Gamma draws for P[i][j]: c0 = attempt, c1 = i, c2 = j
  kStreamQSupport = 17,    // problem: support of q^(k): c0 = draw, c1 = k
  kStreamQWeights = 18,    // problem: Dirichlet weights of q^(k): c0 = attempt, c1 = slot, c2 = k
  kStreamMix = 19,         // problem: randomness for derived problems (e.g. correlated P)
};

SCB_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

SCB_HD Philox4 philox4x32_10(Philox4 ctr, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(kM0, ctr.v[0], hi0, lo0);
    philox_mulhilo(kM1, ctr.v[2], hi1, lo1);
    ctr = Philox4{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += kW0;
    k1 += kW1;
  }
  return ctr;
}

SCB_HD Philox4 philox(uint64_t seed, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3) {
  return philox4x32_10(Philox4{{c0, c1, c2, c3}}, static_cast<uint32_t>(seed),
                       static_cast<uint32_t>(seed >> 32));
}

// Uniform double in (0, 1) from two words (53 bits), never 0 or 1 (safe for log).
SCB_HD double uniform_open01(uint32_t hi, uint32_t lo) {
  const uint64_t bits = (static_cast<uint64_t>(hi) << 21) ^ (static_cast<uint64_t>(lo) >> 11);
  const double u = (static_cast<double>(bits & ((uint64_t{1} << 53) - 1)) + 0.5) * 0x1.0p-53;
  return u < 1.0 ? u : 1.0 - 0x1.0p-53;  // the top value rounds to 1.0: keep the interval open
}

// Uniform integer in [0, n) from two words (Lemire's multiply-shift on 64 bits; bias < n/2^64).
SCB_HD uint64_t uniform_below(uint32_t hi, uint32_t lo, uint64_t n) {
  const uint64_t x = (static_cast<uint64_t>(hi) << 32) | lo;
  // high 64 bits of the 128-bit product x * n
#if defined(__CUDA_ARCH__)
  return __umul64hi(x, n);
#else
  // Portable 64 x 64 -> high 64 bits from 32-bit halves (exact).
  const uint64_t x_lo = x & 0xFFFFFFFFu, x_hi = x >> 32, n_lo = n & 0xFFFFFFFFu, n_hi = n >> 32;
  const uint64_t lo_lo = x_lo * n_lo, hi_lo = x_hi * n_lo, lo_hi = x_lo * n_hi, hi_hi = x_hi * n_hi;
  const uint64_t cross = (lo_lo >> 32) + (hi_lo & 0xFFFFFFFFu) + lo_hi;
  return hi_hi + (hi_lo >> 32) + (cross >> 32);
#endif
}

}  // namespace scb
