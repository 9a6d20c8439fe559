#pragma once
// Expansion: a sweep file becomes its runs (grid x zip x replicates), each with a validated
// config and its run_id. Everything later (shards, planning, the tables) works on this list,
// so expansion alone decides which runs a sweep has and in which order.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scb/core/config.hpp"

namespace scb {

struct SweepAxis {
  std::string name;                   // dotted config key
  std::vector<nlohmann::json> values;
  bool zip = false;                   // false: a grid axis
};

struct SweepRun {
  size_t index = 0;                   // position in the full expansion
  std::string run_id;                 // run_id_of(the resolved config)
  std::vector<nlohmann::json> axis_values;  // one per Sweep::axes entry
  uint32_t replicate = 0;
  Config config;                      // config.resolved is null: Sweep::resolved_config rebuilds it
};

struct Sweep {
  std::filesystem::path file;         // the sweep file (absolute), empty when built from a document
  nlohmann::ordered_json document;    // the sweep file as read (key order kept)
  nlohmann::json base;                // the base config document (loaded when given as a path)
  nlohmann::json resolved_base;       // the base with defaults filled in
  std::filesystem::path base_dir;     // relative paths in configs resolve against it
  std::vector<SweepAxis> axes;        // grid axes (file order), then zip axes
  size_t grid_points = 1, zip_length = 1;
  uint32_t replicates = 1;
  std::vector<SweepRun> runs;         // every run, in expansion order
  std::string sweep_id;               // hash of every run_id in order

  std::vector<std::string> axis_names() const;
  // A run's resolved config (its config.json), which runs do not keep: at about 4 KB it is most
  // of a run's memory, and only the runs whose parameters are saved need it.
  nlohmann::json resolved_config(const SweepRun& run) const;
};

// Expands a sweep document: the cartesian product of `grid` (the last axis varies fastest),
// each point with every index of the `zip` lists, each repeated `replicates` times with
// train.seed + replicate. Every run's config is validated; errors are ConfigErrors naming
// the sweep key (grid.train.lambda[2]: ...). `dir` resolves a `base` given as a path.
Sweep expand_sweep(const nlohmann::ordered_json& document, const std::filesystem::path& dir);
// Reads and expands a sweep file (key order of grid and zip as written in the file).
Sweep load_sweep(const std::filesystem::path& file);

// A run's place in the sweep for messages: "train.lambda=0.1, problem.N=8, replicate 2".
std::string describe_point(const Sweep& sweep, const SweepRun& run);

}  // namespace scb
