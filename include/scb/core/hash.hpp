#pragma once
// The engine's one non-cryptographic hash: run ids, sweep ids and the content hashes that pin
// input files all use it, so its definition may never change (ids are written in every table).
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace scb {

// FNV-1a over the bytes, then the splitmix64 finaliser so that every input bit reaches every
// output bit.
uint64_t hash64(std::string_view bytes);
// The text ids are hashed from: sorted keys, no spaces, integral floats printed as integers
// (1.0 and 1 are one value).
std::string canonical_json(const nlohmann::json& value);

}  // namespace scb
