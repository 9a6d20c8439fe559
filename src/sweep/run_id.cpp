// Run ids (see run_id.hpp): the hash and the canonical text it is taken of, nothing else, so
// that a change here is visible as the change of every run id it is.
#include "scb/sweep/run_id.hpp"

#include "scb/core/config.hpp"

#include <cmath>

#include <fmt/format.h>

namespace scb {

using nlohmann::json;

std::string run_id_of(const json& resolved_config) {
  return fmt::format("{:016x}", hash64(canonical_json(run_identity(resolved_config))));
}

}  // namespace scb
