#include "scb/core/alias.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace scb {

AliasTable build_alias_table(std::span<const double> p) {
  const size_t n = p.size();
  if (n == 0 || n > 0xFFFFFFFFu) throw std::invalid_argument("alias table: bad size");
  double total = 0;
  for (double x : p) {
    if (!(x >= 0) || !std::isfinite(x)) throw std::invalid_argument("alias table: bad probability");
    total += x;
  }
  if (!(total > 0)) throw std::invalid_argument("alias table: probabilities sum to zero");

  // Integer weights summing exactly to 2^32: floor, then hand the remainder to the largest
  // fractional parts (ties by index), so the table is a pure function of p.
  constexpr uint64_t kOne = uint64_t{1} << 32;
  std::vector<uint64_t> w(n);
  std::vector<double> frac(n);
  uint64_t assigned = 0;
  for (size_t i = 0; i < n; ++i) {
    const double scaled = p[i] / total * static_cast<double>(kOne);
    w[i] = static_cast<uint64_t>(std::floor(scaled));
    frac[i] = scaled - std::floor(scaled);
    assigned += w[i];
  }
  if (assigned > kOne) {  // rounding of p/total can overshoot by a few units
    for (size_t i = 0; assigned > kOne; i = (i + 1) % n)
      if (w[i] > 0) { --w[i]; --assigned; }
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return frac[a] > frac[b]; });
  for (size_t i = 0; assigned < kOne; i = (i + 1) % n) {
    if (p[order[i]] > 0) { ++w[order[i]]; ++assigned; }
  }

  // Vose in exact integers: bucket capacity is 2^32, weight i contributes w_i * n.
  AliasTable t;
  t.threshold.assign(n, 0xFFFFFFFFu);
  t.alias.resize(n);
  std::iota(t.alias.begin(), t.alias.end(), uint32_t{0});
  std::vector<uint64_t> scaled(n);
  std::vector<uint32_t> small, large;
  for (size_t i = 0; i < n; ++i) {
    scaled[i] = w[i] * n;
    (scaled[i] < kOne ? small : large).push_back(static_cast<uint32_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    const uint32_t l = small.back();
    small.pop_back();
    const uint32_t g = large.back();
    t.threshold[l] = static_cast<uint32_t>(scaled[l]);
    t.alias[l] = g;
    scaled[g] = scaled[g] + scaled[l] - kOne;
    if (scaled[g] < kOne) {
      large.pop_back();
      small.push_back(g);
    }
  }
  // Whatever remains is full (exactly 2^32 in exact arithmetic): always its own outcome.
  return t;
}

std::vector<double> alias_probabilities(const AliasTable& table) {
  const uint32_t n = table.size();
  std::vector<double> p(n, 0.0);
  constexpr double kOne = 4294967296.0;
  for (uint32_t i = 0; i < n; ++i) {
    const double accept = static_cast<double>(table.threshold[i]) / kOne;
    p[i] += accept / n;
    p[table.alias[i]] += (1.0 - accept) / n;
  }
  return p;
}

}  // namespace scb
