// hash64 (see hash.hpp): written once; a change here would rename every run.
#include "scb/core/hash.hpp"

#include <cmath>

#include <fmt/format.h>

namespace scb {

uint64_t hash64(std::string_view bytes) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

using nlohmann::json;

std::string canonical_json(const json& v) {
  switch (v.type()) {
    case json::value_t::object: {
      std::string s = "{";
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {  // nlohmann::json keeps keys sorted
        if (!first) s += ',';
        s += json(it.key()).dump();
        s += ':';
        s += canonical_json(it.value());
        first = false;
      }
      return s + "}";
    }
    case json::value_t::array: {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) s += ',';
        s += canonical_json(v[i]);
      }
      return s + "]";
    }
    case json::value_t::number_float: {
      const double x = v.get<double>();
      if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 9.0e15) return fmt::format("{}", int64_t(x));
      return v.dump();
    }
    default:
      return v.dump();
  }
}

}  // namespace scb
