#pragma once
// Run configuration (docs/formats.md section 2): a JSON document validated against one schema that gives every
// key its default, type and range. Errors name the dotted key path and what is allowed.
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scb/core/config_error.hpp"
#include "scb/core/json_text.hpp"

namespace scb {

enum class Algorithm { sgd, proximal, population };
enum class Attention { linear, softmax };
enum class Init { stationary, uniform, files };

struct ProblemConfig {
  uint32_t N = 3;
  uint32_t T = 100;
  uint32_t Q = 2;
  uint64_t seed = 1;
  nlohmann::json P;          // {"dirichlet": alpha} | N x N array | path to .npy
  nlohmann::json Q_matrix;   // null | T x N array | path to .npy
  std::string support = "uniform";   // "uniform" | "recent"
  uint32_t window = 0;               // W for "recent" (0: T)
  std::string weights = "uniform";   // "uniform" | "dirichlet"
  double weights_alpha = 1.0;
};

struct ModelConfig {
  Attention attention = Attention::linear;
  Init init = Init::stationary;
  std::string init_V;  // resolved absolute paths when init = files ("" = default for that matrix)
  std::string init_A;
};

// train.checkpoint_every: a step interval, a wall-time interval, or never (both 0).
struct CheckpointEvery {
  int64_t steps = 0;
  double seconds = 0;
  bool enabled() const { return steps > 0 || seconds > 0; }
};

struct TrainConfig {
  Algorithm algorithm = Algorithm::proximal;
  int64_t steps = 16000;
  uint32_t batch_size = 64;
  uint64_t seed = 0;
  double lr_V = 1.0;
  double lr_A = 0.02;
  double lambda = 0.005;
  int64_t stage1_steps = 4000;
  bool project = true;
  bool precondition = true;
  bool renormalize = true;
  double noise = 0.0;
  double divergence_limit = 1e6;  // a parameter beyond this magnitude marks the run diverged
  CheckpointEvery checkpoint_every;  // never changes a result, so it is not in the run id
};

struct EvalConfig {
  int64_t every = 500;
  std::vector<double> thresholds = {0.5, 0.3, 0.1};  // dist_A_norm levels whose first crossing is reported
};

struct Config {
  ProblemConfig problem;
  ModelConfig model;
  TrainConfig train;
  EvalConfig eval;
  nlohmann::json resolved;            // every key, defaults filled in (written as config.json); null
                                      // in a sweep's runs, which rebuild it on demand (Sweep::resolved_config)
  std::string problem_canonical;      // canonical_json of resolved["problem"]: which problem this is
  std::filesystem::path base_dir;     // relative paths in the config resolve against it
};

// The schema's defaults as a JSON document (what `scb train` fills in).
nlohmann::json default_config_json();

// Applies one "--set a.b.c=value" (value parsed as JSON, else taken as a string). Relative file
// paths in the value (problem.P, problem.Q_matrix, problem.P.mix, model.init.V/A) are made
// absolute against `path_base` (the user's working directory) when it is not empty.
void apply_override(nlohmann::json& doc, const std::string& assignment,
                    const std::filesystem::path& path_base = {});
// Sets a dotted key in a document, creating objects on the way.
void set_dotted(nlohmann::json& doc, const std::string& dotted, nlohmann::json value);

// Validates a user document against the schema (unknown keys, types, ranges, consistency)
// and returns the typed, resolved configuration. Throws ConfigError.
Config resolve_config(const nlohmann::json& user, const std::filesystem::path& base_dir);

// What a run id is hashed from: the resolved config without its execution options (keys that
// never change a result, such as train.checkpoint_every).
nlohmann::json run_identity(const nlohmann::json& resolved);

// Whether a dotted key exists in the schema (sweep axes are checked with it).
bool is_config_key(const std::string& dotted);

std::string to_string(Algorithm a);
std::string to_string(Attention a);

}  // namespace scb
