#pragma once
// Every JSON document a user hands the engine (configs, sweep files, --set values, a base file)
// is read here, and only here, so that the rules below hold for all of them:
//  - nesting deeper than kMaxJsonDepth is refused before anything recursive sees the document
//    (the schema is three levels deep; a pathological file must not reach the stack's end);
//  - a key given twice in one object is refused (JSON allows it and the last would silently win);
//  - a number beyond the range of a double (1e309) is refused naming its key.
// Each refusal is a ConfigError "origin: key: what is wrong".
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "scb/core/config_error.hpp"

namespace scb {

inline constexpr int kMaxJsonDepth = 64;

// Text that is not JSON at all (as opposed to JSON the rules above refuse): `--set` takes such
// text as a bare string.
class JsonSyntaxError : public ConfigError {
 public:
  using ConfigError::ConfigError;
};

nlohmann::json parse_json_text(const std::string& text, const std::string& origin);
nlohmann::ordered_json parse_ordered_json_text(const std::string& text, const std::string& origin);
// Reads a file and parses it as above; a missing or unreadable file is a ConfigError naming it.
nlohmann::json load_json_file(const std::filesystem::path& path);
std::string read_text_file(const std::filesystem::path& path, const std::string& what);

}  // namespace scb
