#pragma once
// Run ids: the one name a run keeps across expansion, resume, shards and merge. Kept apart from
// everything else because nothing here may ever change (ids are written into every table).
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "scb/core/hash.hpp"

namespace scb {

// A stable name for a resolved config: 16 hex digits of a 64-bit hash of its canonical
// JSON (sorted keys; 1.0 and 1 print alike).
std::string run_id_of(const nlohmann::json& resolved_config);

}  // namespace scb
