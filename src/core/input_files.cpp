// Input files and their content hashes (see input_files.hpp).
#include "scb/core/input_files.hpp"

#include <fmt/format.h>

#include "scb/core/hash.hpp"
#include "scb/core/json_text.hpp"

namespace scb {

namespace fs = std::filesystem;

std::vector<InputFile> input_files(const Config& cfg) {
  std::vector<InputFile> files;
  auto add = [&](const char* key, const nlohmann::json& v) {
    if (!v.is_string()) return;
    const fs::path p = v.get<std::string>();
    files.push_back({key, (p.is_relative() ? cfg.base_dir / p : p).lexically_normal()});
  };
  add("problem.P", cfg.problem.P);
  if (cfg.problem.P.is_object() && cfg.problem.P.contains("mix")) add("problem.P.mix", cfg.problem.P["mix"]);
  add("problem.Q_matrix", cfg.problem.Q_matrix);
  if (!cfg.model.init_V.empty()) files.push_back({"model.init.V", cfg.model.init_V});
  if (!cfg.model.init_A.empty()) files.push_back({"model.init.A", cfg.model.init_A});
  return files;
}

std::string content_hash(const fs::path& path) {
  return fmt::format("fnv1a64:{:016x}", hash64(read_text_file(path, "the input file")));
}

void InputHashes::add(const Config& cfg) {
  for (const InputFile& f : input_files(cfg))
    if (!hash_of_.count(f.path.string())) hash_of_[f.path.string()] = content_hash(f.path);
}

nlohmann::json InputHashes::json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [path, hash] : hash_of_) j[path] = hash;
  return j;
}

nlohmann::json InputHashes::of(const Config& cfg) const {
  nlohmann::json j = nlohmann::json::object();
  for (const InputFile& f : input_files(cfg)) j[f.key] = {{"path", f.path.string()}, {"hash", hash_of_.at(f.path.string())}};
  return j;
}

std::string input_changes(const nlohmann::json& recorded, const nlohmann::json& now) {
  std::string changes;
  if (!recorded.is_object() || !now.is_object()) return changes;
  for (auto it = recorded.begin(); it != recorded.end(); ++it) {
    if (!now.contains(it.key()) || now[it.key()] == it.value()) continue;
    changes += fmt::format("{}{} (content {} then, {} now)", changes.empty() ? "" : "; ", it.key(), it.value().dump(),
                           now[it.key()].dump());
  }
  return changes;
}

}  // namespace scb
