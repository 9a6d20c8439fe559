#include "scb/core/config.hpp"

#include "scb/core/hash.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>

namespace scb {

namespace {

using nlohmann::json;

enum class Kind { integer, unsigned64, number, boolean, choice, special };

// One key of the schema: its dotted path, type, default and allowed range or choices.
struct KeySpec {
  const char* path;
  Kind kind;
  json default_value;
  double min = 0, max = 0;        // integer/number range (inclusive)
  bool min_exclusive = false;
  std::vector<std::string> choices = {};
  // Keys added after the first release are left out of resolved documents (config.json, the
  // manifest's base) at their default, so that run ids and files of existing sweeps stay as
  // they were; `in_run_id` false marks an execution option that never changes a result
  // (checkpointing), left out of the run id whatever its value, so it can be changed on --resume.
  bool added_later = false;
  bool in_run_id = true;
};

constexpr double kBig = 9.0e15;  // integers beyond this lose exactness in JSON readers

const std::vector<KeySpec>& schema() {
  static const std::vector<KeySpec> s = {
      {"problem.N", Kind::integer, 3, 2, 65535},
      {"problem.T", Kind::integer, 100, 1, 4294967295.0},
      {"problem.Q", Kind::integer, 2, 1, 4294967295.0},
      {"problem.seed", Kind::unsigned64, 1},
      {"problem.P", Kind::special, json{{"dirichlet", 1.0}}},
      {"problem.Q_matrix", Kind::special, nullptr},
      {"problem.support", Kind::choice, "uniform", 0, 0, false, {"uniform", "recent"}},
      {"problem.window", Kind::integer, 0, 0, 4294967295.0},
      {"problem.weights", Kind::choice, "uniform", 0, 0, false, {"uniform", "dirichlet"}},
      {"problem.weights_alpha", Kind::number, 1.0, 0, 1e6, true},
      {"model.attention", Kind::choice, "linear", 0, 0, false, {"linear", "softmax"}},
      {"model.init", Kind::special, "stationary"},
      {"train.algorithm", Kind::choice, "proximal", 0, 0, false, {"sgd", "proximal", "population"}},
      {"train.steps", Kind::integer, 16000, 0, kBig},
      {"train.batch_size", Kind::integer, 64, 1, 16777216},
      {"train.seed", Kind::unsigned64, 0},
      {"train.lr_V", Kind::number, 1.0, 0, 1e9},
      {"train.lr_A", Kind::number, 0.02, 0, 1e9},
      {"train.lambda", Kind::number, 0.005, 0, 1e9},
      {"train.stage1_steps", Kind::integer, 4000, 0, kBig},
      {"train.project", Kind::boolean, true},
      {"train.precondition", Kind::boolean, true},
      {"train.renormalize", Kind::boolean, true},
      {"train.noise", Kind::number, 0.0, 0, 1e9},
      {"train.divergence_limit", Kind::number, 1e6, 0, 1e300, true},
      {"eval.every", Kind::integer, 500, 1, kBig},
      {"train.checkpoint_every", Kind::special, 0, 0, 0, false, {}, true, false},
      {"eval.thresholds", Kind::special, json::array({0.5, 0.3, 0.1}), 0, 0, false, {}, true, true},
  };
  return s;
}

const KeySpec* find_key(const std::string& dotted) {
  for (const KeySpec& k : schema())
    if (dotted == k.path) return &k;
  return nullptr;
}

std::string allowed_children(const std::string& prefix) {
  std::string out;
  for (const KeySpec& k : schema()) {
    const std::string p = k.path;
    if (p.rfind(prefix + ".", 0) == 0) out += (out.empty() ? "" : ", ") + p.substr(prefix.size() + 1);
    else if (prefix.empty()) {
      const std::string top = p.substr(0, p.find('.'));
      if (out.find(top) == std::string::npos) out += (out.empty() ? "" : ", ") + top;
    }
  }
  return out;
}

std::string show(const json& v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::string range_text(const KeySpec& k) {
  auto num = [](double x) { return x >= 1e15 ? std::string("inf") : fmt::format("{:g}", x); };
  if (k.max >= kBig) return fmt::format("{} {}", k.min_exclusive ? ">" : ">=", num(k.min));
  return fmt::format("in {}{}, {}]", k.min_exclusive ? "(" : "[", num(k.min), num(k.max));
}

// train.checkpoint_every: steps (an integer, 0 = never) or a wall-time interval ("90s", "30m", "2h").
CheckpointEvery parse_checkpoint_every(const json& v) {
  const std::string bad = fmt::format("train.checkpoint_every: expected steps (an integer >= 0, 0 = never) or a wall time "
                                      "such as \"90s\", \"30m\" or \"2h\", got {}", show(v));
  CheckpointEvery c;
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t(kBig) : v.get<int64_t>() < 0) throw ConfigError(bad);
    c.steps = v.get<int64_t>();
    return c;
  }
  if (!v.is_string()) throw ConfigError(bad);
  const std::string t = v.get<std::string>();
  size_t used = 0;
  double x = 0;
  try {
    x = std::stod(t, &used);
  } catch (const std::exception&) {
    throw ConfigError(bad);
  }
  const std::string unit = t.substr(used);
  const double scale = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0;
  if (scale == 0 || !(x > 0) || !std::isfinite(x) || t.find_first_of(" +-eE") != std::string::npos) throw ConfigError(bad);
  c.seconds = x * scale;
  return c;
}

void check_thresholds(const json& v) {
  const bool ok = v.is_array() && v.size() <= 16 && std::all_of(v.begin(), v.end(), [](const json& x) {
                    return x.is_number() && x.get<double>() > 0 && std::isfinite(x.get<double>());
                  });
  if (!ok) throw ConfigError(fmt::format("eval.thresholds: expected a list of at most 16 numbers > 0 (dist_A_norm levels), got {}", show(v)));
}

void check_value(const KeySpec& k, const json& v) {
  const std::string path = k.path;
  switch (k.kind) {
    case Kind::integer: {
      if (!v.is_number_integer())
        throw ConfigError(fmt::format("{}: expected an integer {}, got {}", path, range_text(k), show(v)));
      const double x = v.is_number_unsigned() ? static_cast<double>(v.get<uint64_t>()) : static_cast<double>(v.get<int64_t>());
      if (x < k.min || x > k.max)
        throw ConfigError(fmt::format("{}: expected an integer {}, got {}", path, range_text(k), show(v)));
      break;
    }
    case Kind::unsigned64:
      if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
        throw ConfigError(fmt::format("{}: expected a non-negative integer (64-bit seed), got {}", path, show(v)));
      break;
    case Kind::number: {
      if (!v.is_number())
        throw ConfigError(fmt::format("{}: expected a number {}, got {}", path, range_text(k), show(v)));
      const double x = v.get<double>();
      if (!std::isfinite(x) || x < k.min || (k.min_exclusive && x == k.min) || x > k.max)
        throw ConfigError(fmt::format("{}: expected a number {}, got {}", path, range_text(k), show(v)));
      break;
    }
    case Kind::boolean:
      if (!v.is_boolean()) throw ConfigError(fmt::format("{}: expected true or false, got {}", path, show(v)));
      break;
    case Kind::choice: {
      std::string allowed;
      for (const auto& c : k.choices) allowed += (allowed.empty() ? "\"" : ", \"") + c + "\"";
      if (!v.is_string() || std::find(k.choices.begin(), k.choices.end(), v.get<std::string>()) == k.choices.end())
        throw ConfigError(fmt::format("{}: expected one of {}, got {}", path, allowed, show(v)));
      break;
    }
    case Kind::special:
      if (path == "problem.P") {
        if (v.is_object()) {
          if (!v.contains("dirichlet") || !v["dirichlet"].is_number() ||
              !(v["dirichlet"].get<double>() > 0) || !std::isfinite(v["dirichlet"].get<double>()))
            throw ConfigError(fmt::format("problem.P: expected {{\"dirichlet\": alpha > 0}}, an N x N array or a .npy path, got {}", show(v)));
          for (auto it = v.begin(); it != v.end(); ++it)
            if (it.key() != "dirichlet" && it.key() != "mix" && it.key() != "rho")
              throw ConfigError(fmt::format("problem.P.{}: unknown key (allowed: dirichlet, mix, rho)", it.key()));
          if (v.contains("mix") != v.contains("rho"))
            throw ConfigError("problem.P: \"mix\" (an N x N array or .npy path) and \"rho\" (in [0, 1]) go together");
          if (v.contains("rho") && (!v["rho"].is_number() || !(v["rho"].get<double>() >= 0 && v["rho"].get<double>() <= 1)))
            throw ConfigError(fmt::format("problem.P.rho: expected a number in [0, 1], got {}", show(v["rho"])));
          if (v.contains("mix") && !v["mix"].is_array() && !v["mix"].is_string())
            throw ConfigError(fmt::format("problem.P.mix: expected an N x N array or a .npy path, got {}", show(v["mix"])));
        } else if (!v.is_array() && !v.is_string()) {
          throw ConfigError(fmt::format("problem.P: expected {{\"dirichlet\": alpha > 0}}, an N x N array or a .npy path, got {}", show(v)));
        }
      } else if (path == "eval.thresholds") {
        check_thresholds(v);
      } else if (path == "train.checkpoint_every") {
        (void)parse_checkpoint_every(v);
      } else if (path == "problem.Q_matrix") {
        if (!v.is_null() && !v.is_array() && !v.is_string())
          throw ConfigError(fmt::format("problem.Q_matrix: expected a T x N array or a .npy path, got {}", show(v)));
      } else if (path == "model.init") {
        if (v.is_string()) {
          const std::string s = v.get<std::string>();
          if (s != "stationary" && s != "uniform")
            throw ConfigError(fmt::format("model.init: expected \"stationary\", \"uniform\" or {{\"V\": path, \"A\": path}}, got {}", show(v)));
        } else if (v.is_object()) {
          if (v.empty()) throw ConfigError("model.init: the object needs \"V\" and/or \"A\" (paths to .npy files)");
          for (auto it = v.begin(); it != v.end(); ++it) {
            if (it.key() != "V" && it.key() != "A")
              throw ConfigError(fmt::format("model.init.{}: unknown key (allowed: V, A)", it.key()));
            if (!it.value().is_string())
              throw ConfigError(fmt::format("model.init.{}: expected a path to a .npy file, got {}", it.key(), show(it.value())));
          }
        } else {
          throw ConfigError(fmt::format("model.init: expected \"stationary\", \"uniform\" or {{\"V\": path, \"A\": path}}, got {}", show(v)));
        }
      }
      break;
  }
}

// Walks the user's document: every leaf must be a schema key, every group an object.
void check_known(const json& doc, const std::string& prefix) {
  if (!doc.is_object())
    throw ConfigError(fmt::format("{}: expected an object with keys {}", prefix.empty() ? "config" : prefix, allowed_children(prefix)));
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string path = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (const KeySpec* k = find_key(path)) {
      check_value(*k, it.value());
      continue;
    }
    const std::string children = allowed_children(path);
    if (children.empty())
      throw ConfigError(fmt::format("{}: unknown key (allowed{}: {})", path,
                                    prefix.empty() ? "" : " in " + prefix, allowed_children(prefix)));
    check_known(it.value(), path);
  }
}

const json& at_dotted(const json& doc, const std::string& dotted) {
  const json* cur = &doc;
  std::stringstream ss(dotted);
  std::string part;
  while (std::getline(ss, part, '.')) cur = &cur->at(part);
  return *cur;
}

// Removes a dotted key (nothing when absent).
void erase_dotted(json& doc, const std::string& dotted) {
  const size_t dot = dotted.rfind('.');
  json* parent = &doc;
  if (dot != std::string::npos) {
    std::stringstream ss(dotted.substr(0, dot));
    std::string part;
    while (std::getline(ss, part, '.')) {
      if (!parent->is_object() || !parent->contains(part)) return;
      parent = &(*parent)[part];
    }
  }
  if (parent->is_object()) parent->erase(dotted.substr(dot == std::string::npos ? 0 : dot + 1));
}

}  // namespace

json default_config_json() {
  json d = json::object();
  for (const KeySpec& k : schema()) set_dotted(d, k.path, k.default_value);
  return d;
}

bool is_config_key(const std::string& dotted) { return find_key(dotted) != nullptr; }

void set_dotted(json& doc, const std::string& dotted, json value) {
  json* cur = &doc;
  std::stringstream ss(dotted);
  std::string part;
  std::vector<std::string> parts;
  while (std::getline(ss, part, '.')) parts.push_back(part);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (!cur->contains(parts[i]) || !(*cur)[parts[i]].is_object()) (*cur)[parts[i]] = json::object();
    cur = &(*cur)[parts[i]];
  }
  (*cur)[parts.back()] = std::move(value);
}

namespace {

// Makes relative .npy paths inside a value of a path-carrying key absolute against base.
void absolutize_paths(const std::string& key, json& value, const std::filesystem::path& base) {
  auto fix = [&](json& v) {
    if (v.is_string() && !v.get<std::string>().empty() && std::filesystem::path(v.get<std::string>()).is_relative())
      v = (base / v.get<std::string>()).lexically_normal().string();
  };
  if (key == "problem.P" || key == "problem.Q_matrix") {
    fix(value);
    if (value.is_object() && value.contains("mix")) fix(value["mix"]);
  } else if (key == "model.init" && value.is_object()) {
    for (auto& [k, v] : value.items()) fix(v);
  }
}

}  // namespace

void apply_override(json& doc, const std::string& assignment, const std::filesystem::path& path_base) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(fmt::format("--set {}: expected key=value with a dotted key such as train.lambda=0.01", assignment));
  const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  if (!find_key(key))
    throw ConfigError(fmt::format("--set {}: unknown key (allowed: {})", key, [] {
      std::string all;
      for (const KeySpec& k : schema()) all += (all.empty() ? "" : ", ") + std::string(k.path);
      return all;
    }()));
  json value;
  try {
    value = parse_json_text(text, "--set " + key);
  } catch (const JsonSyntaxError&) {
    value = text;  // bare words are strings: --set train.algorithm=sgd
  }
  if (!path_base.empty()) absolutize_paths(key, value, path_base);
  set_dotted(doc, key, std::move(value));
}

Config resolve_config(const json& user, const std::filesystem::path& base_dir) {
  check_known(user, "");
  json resolved = default_config_json();
  resolved.merge_patch(user);
  // merge_patch drops nulls; an explicit null Q_matrix means "absent" anyway.
  if (!resolved["problem"].contains("Q_matrix")) resolved["problem"]["Q_matrix"] = nullptr;
  if (user.contains("problem") && user["problem"].contains("P")) resolved["problem"]["P"] = user["problem"]["P"];
  if (user.contains("model") && user["model"].contains("init")) resolved["model"]["init"] = user["model"]["init"];

  Config c;
  c.base_dir = base_dir;
  auto get = [&](const char* p) -> const json& { return at_dotted(resolved, p); };
  ProblemConfig& pc = c.problem;
  pc.N = get("problem.N").get<uint32_t>();
  pc.T = get("problem.T").get<uint32_t>();
  pc.Q = get("problem.Q").get<uint32_t>();
  pc.seed = get("problem.seed").get<uint64_t>();
  pc.P = get("problem.P");
  pc.Q_matrix = get("problem.Q_matrix");
  pc.support = get("problem.support").get<std::string>();
  pc.window = get("problem.window").get<uint32_t>();
  pc.weights = get("problem.weights").get<std::string>();
  pc.weights_alpha = get("problem.weights_alpha").get<double>();

  ModelConfig& mc = c.model;
  mc.attention = get("model.attention").get<std::string>() == "softmax" ? Attention::softmax : Attention::linear;
  const json& init = get("model.init");
  if (init.is_string()) {
    mc.init = init.get<std::string>() == "uniform" ? Init::uniform : Init::stationary;
  } else {
    mc.init = Init::files;
    auto resolve_path = [&](const char* key) -> std::string {
      if (!init.contains(key)) return "";
      std::filesystem::path p = init[key].get<std::string>();
      return (p.is_relative() ? base_dir / p : p).lexically_normal().string();
    };
    mc.init_V = resolve_path("V");
    mc.init_A = resolve_path("A");
  }

  TrainConfig& tc = c.train;
  const std::string alg = get("train.algorithm").get<std::string>();
  tc.algorithm = alg == "sgd" ? Algorithm::sgd : alg == "proximal" ? Algorithm::proximal : Algorithm::population;
  tc.steps = get("train.steps").get<int64_t>();
  tc.batch_size = get("train.batch_size").get<uint32_t>();
  tc.seed = get("train.seed").get<uint64_t>();
  tc.lr_V = get("train.lr_V").get<double>();
  tc.lr_A = get("train.lr_A").get<double>();
  tc.lambda = get("train.lambda").get<double>();
  tc.stage1_steps = get("train.stage1_steps").get<int64_t>();
  tc.project = get("train.project").get<bool>();
  tc.precondition = get("train.precondition").get<bool>();
  tc.renormalize = get("train.renormalize").get<bool>();
  tc.noise = get("train.noise").get<double>();
  tc.divergence_limit = get("train.divergence_limit").get<double>();
  c.eval.every = get("eval.every").get<int64_t>();
  tc.checkpoint_every = parse_checkpoint_every(get("train.checkpoint_every"));
  c.eval.thresholds = get("eval.thresholds").get<std::vector<double>>();

  // Consistency between keys.
  if (pc.Q > pc.T)
    throw ConfigError(fmt::format("problem.Q: the support size {} exceeds the context length problem.T = {}", pc.Q, pc.T));
  if (pc.support == "recent" && pc.window != 0 && (pc.window < pc.Q || pc.window > pc.T))
    throw ConfigError(fmt::format("problem.window: expected an integer in [problem.Q = {}, problem.T = {}] (or 0 for T), got {}",
                                  pc.Q, pc.T, pc.window));
  if (pc.support != "recent" && pc.window != 0)
    throw ConfigError("problem.window: only used with problem.support = \"recent\"; remove it or set the support");
  if (pc.P.is_string() && pc.P.get<std::string>().empty())
    throw ConfigError("problem.P: the path is empty");
  if (mc.attention == Attention::softmax && tc.algorithm == Algorithm::proximal)
    throw ConfigError("train.algorithm: \"proximal\" soft-thresholds attention weights and needs model.attention = \"linear\"; "
                      "softmax attention trains with \"sgd\" or \"population\"");
  if (tc.noise > 0 && tc.algorithm != Algorithm::population)
    throw ConfigError("train.noise: only used with train.algorithm = \"population\" (real minibatches have their own noise)");
  for (const KeySpec& k : schema())
    if (k.added_later && at_dotted(resolved, k.path) == k.default_value) erase_dotted(resolved, k.path);
  c.problem_canonical = canonical_json(resolved["problem"]);
  c.resolved = std::move(resolved);
  return c;
}

json run_identity(const json& resolved) {
  json id = resolved;
  for (const KeySpec& k : schema())
    if (!k.in_run_id) erase_dotted(id, k.path);
  return id;
}

std::string to_string(Algorithm a) {
  switch (a) {
    case Algorithm::sgd: return "sgd";
    case Algorithm::proximal: return "proximal";
    case Algorithm::population: return "population";
  }
  return "?";
}
std::string to_string(Attention a) { return a == Attention::linear ? "linear" : "softmax"; }

}  // namespace scb
