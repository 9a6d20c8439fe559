#pragma once
// The files a config reads (problem.P, problem.P.mix, problem.Q_matrix, model.init.V/A),
// pinned by content: a path says where the numbers were, not what they were. The sweep manifest
// and every run's summary.json record these hashes, so a file overwritten between a kill and a
// --resume, or between two shards, is refused instead of mixing two problems in one table.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scb/core/config.hpp"

namespace scb {

struct InputFile {
  std::string key;              // the config key that names it, such as problem.P
  std::filesystem::path path;   // absolute
};

std::vector<InputFile> input_files(const Config& cfg);

// "fnv1a64:<16 hex digits>" of the file's bytes; a ConfigError naming the file when unreadable.
std::string content_hash(const std::filesystem::path& path);

// Hashes by path, each file read once however many runs name it.
class InputHashes {
 public:
  void add(const Config& cfg);
  // {"<path>": "<hash>", ...}
  nlohmann::json json() const;
  // {"<key>": {"path": ..., "hash": ...}} for one config (its files must have been added).
  nlohmann::json of(const Config& cfg) const;

 private:
  std::map<std::string, std::string> hash_of_;
};

// The differences between two {"path": "hash"} records, as one line ("" when they agree on
// every path both name).
std::string input_changes(const nlohmann::json& recorded, const nlohmann::json& now);

}  // namespace scb
