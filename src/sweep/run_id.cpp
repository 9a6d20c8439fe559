// Run ids (see run_id.hpp): the hash and the canonical text it is taken of, nothing else, so
// that a change here is visible as the change of every run id it is.
#include "scb/sweep/run_id.hpp"

#include <cmath>

#include <fmt/format.h>

namespace scb {

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

std::string run_id_of(const json& resolved_config) { return fmt::format("{:016x}", hash64(canonical_json(resolved_config))); }

}  // namespace scb
