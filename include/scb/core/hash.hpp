#pragma once
// The engine's one non-cryptographic hash: run ids, sweep ids and the content hashes that pin
// input files all use it, so its definition may never change (ids are written in every table).
#include <cstdint>
#include <string_view>

namespace scb {

// FNV-1a over the bytes, then the splitmix64 finaliser so that every input bit reaches every
// output bit.
uint64_t hash64(std::string_view bytes);

}  // namespace scb
