#pragma once
// Walker/Vose alias tables with integer thresholds. The table is built once on the host
// in exact integer arithmetic; sampling uses one 32-bit word and integers only, so the
// CPU and the GPU draw bit-identical tokens from the same Philox words.
#include <cstdint>
#include <span>
#include <vector>

#include "scb/core/hd.hpp"

namespace scb {

// One draw from a table of size n: the word u is split as u * n = idx * 2^32 + frac;
// idx picks a bucket uniformly, frac (uniform given idx) decides bucket or alias.
SCB_HD uint32_t alias_sample(const uint32_t* threshold, const uint32_t* alias, uint32_t n,
                             uint32_t u) {
  const uint64_t x = static_cast<uint64_t>(u) * n;
  const uint32_t idx = static_cast<uint32_t>(x >> 32);
  const uint32_t frac = static_cast<uint32_t>(x);
  return frac < threshold[idx] ? idx : alias[idx];
}

struct AliasTable {
  std::vector<uint32_t> threshold;  // accept bucket i when frac < threshold[i]
  std::vector<uint32_t> alias;      // otherwise return alias[i]
  uint32_t size() const { return static_cast<uint32_t>(threshold.size()); }
  uint32_t sample(uint32_t u) const {
    return alias_sample(threshold.data(), alias.data(), size(), u);
  }
};

// Builds the table for probabilities p (non-negative, summing to about 1). Probabilities are
// first rounded to integer weights summing exactly to 2^32, then split by Vose's method in
// exact integer arithmetic: the result depends on p only, never on floating-point order.
AliasTable build_alias_table(std::span<const double> p);

// The exact probability the table assigns to each outcome (for tests): sum over buckets.
std::vector<double> alias_probabilities(const AliasTable& table);

}  // namespace scb
