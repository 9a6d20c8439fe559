// Expansion (see expand.hpp), as the steps a sweep file is read in: its keys, the base, the
// replicates, the axes, the size of the product, then every run. Each step throws the
// ConfigError of the first thing wrong, so the order of the steps is the order errors are found.
#include "scb/sweep/expand.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "scb/sweep/run_id.hpp"

namespace scb {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

constexpr size_t kMaxRuns = 1'000'000;  // README "Limits": about 1.3 KB and 0.1 ms per run to expand

json to_plain(const ordered_json& v) { return json::parse(v.dump()); }

std::string show(const json& v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// ---------------------------------------------------------------------------------------
// Unknown axis keys: the message lists every key and suggests the nearest one.

// Every dotted key of the schema, for "allowed: ..." lists.
void collect_keys(const json& node, const std::string& prefix, std::vector<std::string>& out) {
  if (!prefix.empty() && is_config_key(prefix)) {
    out.push_back(prefix);
    return;
  }
  if (!node.is_object()) return;
  for (auto it = node.begin(); it != node.end(); ++it) collect_keys(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
}

std::vector<std::string> all_config_keys() {
  std::vector<std::string> keys;
  collect_keys(default_config_json(), "", keys);
  return keys;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string unknown_key_message(const std::string& path, const std::string& name) {
  const std::vector<std::string> keys = all_config_keys();
  std::string best;
  size_t best_d = 3;
  for (const std::string& k : keys) {
    const size_t d = edit_distance(name, k);
    if (d < best_d) best_d = d, best = k;
  }
  std::string list;
  for (const std::string& k : keys) list += (list.empty() ? "" : ", ") + k;
  return fmt::format("{}: unknown config key{} (an axis is a dotted config key; allowed: {})", path,
                     best.empty() ? "" : " (did you mean " + best + "?)", list);
}

// Strips a leading "key: " from a config error about `key` (or one of its children).
bool names_key(const std::string& message, const std::string& key) {
  return message.rfind(key + ":", 0) == 0 || message.rfind(key + ".", 0) == 0;
}

// ---------------------------------------------------------------------------------------
// The sections of a sweep file

void check_sweep_keys(const ordered_json& doc) {
  if (!doc.is_object()) throw ConfigError("sweep: expected an object with keys base, grid, zip, replicates");
  for (auto it = doc.begin(); it != doc.end(); ++it)
    if (it.key() != "base" && it.key() != "grid" && it.key() != "zip" && it.key() != "replicates")
      throw ConfigError(fmt::format("{}: unknown key in the sweep file (allowed: base, grid, zip, replicates)", it.key()));
}

// `base`: a config object, or the path of a config file (its folder then resolves paths).
void read_base(const ordered_json& doc, const fs::path& dir, Sweep& s) {
  s.base = json::object();
  s.base_dir = dir;
  if (doc.contains("base")) {
    const ordered_json& b = doc["base"];
    if (b.is_string()) {
      fs::path p = b.get<std::string>();
      if (p.is_relative()) p = dir / p;
      try {
        s.base = load_json_file(p);
      } catch (const ConfigError& e) {
        throw ConfigError(fmt::format("base: {}", e.what()));
      }
      s.base_dir = fs::absolute(p).parent_path();
    } else if (b.is_object()) {
      s.base = to_plain(b);
    } else {
      throw ConfigError(fmt::format("base: expected a config object or a path to a config file, got {}", show(to_plain(b))));
    }
  }
  try {
    s.resolved_base = resolve_config(s.base, s.base_dir).resolved;
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("base: {}", e.what()));
  }
}

void read_replicates(const ordered_json& doc, Sweep& s) {
  if (!doc.contains("replicates")) return;
  const ordered_json& r = doc["replicates"];
  if (!r.is_number_integer() || r.get<int64_t>() < 1 || r.get<int64_t>() > 1000000)
    throw ConfigError(fmt::format("replicates: expected an integer in [1, 1000000], got {}", show(to_plain(r))));
  s.replicates = uint32_t(r.get<int64_t>());
}

// `grid` or `zip`: dotted config keys mapped to non-empty arrays, each key once in the file.
void read_axes(const ordered_json& doc, const char* section, bool zip, Sweep& s) {
  if (!doc.contains(section)) return;
  const ordered_json& g = doc[section];
  if (!g.is_object())
    throw ConfigError(fmt::format("{}: expected an object mapping dotted config keys to arrays of values, got {}", section,
                                  show(to_plain(g))));
  for (auto it = g.begin(); it != g.end(); ++it) {
    const std::string name = it.key(), path = std::string(section) + "." + name;
    if (!is_config_key(name)) throw ConfigError(unknown_key_message(path, name));
    for (const SweepAxis& a : s.axes)
      if (a.name == name)
        throw ConfigError(fmt::format("{}: {} is already an axis in {}; give each key once", path, name, a.zip ? "zip" : "grid"));
    const ordered_json& vals = it.value();
    if (!vals.is_array() || vals.empty())
      throw ConfigError(fmt::format("{}: expected a non-empty array of values, got {}", path, show(to_plain(vals))));
    SweepAxis axis;
    axis.name = name;
    axis.zip = zip;
    for (size_t i = 0; i < vals.size(); ++i) axis.values.push_back(to_plain(vals[i]));
    s.axes.push_back(std::move(axis));
  }
}

// ---------------------------------------------------------------------------------------
// The product

// Which axes are grid and which zip, and how many runs they make with the replicates.
struct AxisLayout {
  std::vector<size_t> grid, zip;  // indexes into Sweep::axes
  double total = 0;               // runs (a double: the product may overflow before the check)
};

AxisLayout lay_out_axes(Sweep& s) {
  AxisLayout l;
  for (size_t a = 0; a < s.axes.size(); ++a) (s.axes[a].zip ? l.zip : l.grid).push_back(a);
  l.total = s.replicates;
  for (size_t a : l.grid) {
    s.grid_points *= s.axes[a].values.size();
    l.total *= double(s.axes[a].values.size());
  }
  if (!l.zip.empty()) {
    s.zip_length = s.axes[l.zip[0]].values.size();
    for (size_t a : l.zip)
      if (s.axes[a].values.size() != s.zip_length)
        throw ConfigError(fmt::format("zip.{}: has {} values but zip.{} has {} (zip lists are walked together and need the same length)",
                                      s.axes[a].name, s.axes[a].values.size(), s.axes[l.zip[0]].name, s.zip_length));
    l.total *= double(s.zip_length);
  }
  if (l.total > double(kMaxRuns))
    throw ConfigError(fmt::format("grid: the sweep expands to {:.0f} runs, more than the limit of {}", l.total, kMaxRuns));
  return l;
}

// One point of the product: the base with every axis set, and the index of each axis value.
struct SweepPoint {
  json document;
  std::vector<json> values;        // one per axis
  std::vector<size_t> value_index; // where each value stands in its axis's list
};

// Grid point p (the last grid axis varies fastest) at zip index z.
SweepPoint point_at(const Sweep& s, const AxisLayout& l, size_t p, size_t z) {
  std::vector<size_t> at(l.grid.size());
  for (size_t g = l.grid.size(); g-- > 0;) {
    const size_t n = s.axes[l.grid[g]].values.size();
    at[g] = p % n;
    p /= n;
  }
  SweepPoint pt{s.base, std::vector<json>(s.axes.size()), std::vector<size_t>(s.axes.size(), z)};
  for (size_t g = 0; g < l.grid.size(); ++g) {
    pt.values[l.grid[g]] = s.axes[l.grid[g]].values[at[g]];
    pt.value_index[l.grid[g]] = at[g];
  }
  for (size_t a : l.zip) pt.values[a] = s.axes[a].values[z];
  for (size_t a = 0; a < s.axes.size(); ++a) set_dotted(pt.document, s.axes[a].name, pt.values[a]);
  return pt;
}

// Resolves one run's config. Every axis value occurs in some run, so this checks them all. An
// error about an axis key names the value in the sweep file (grid.train.lambda[2]) and the run.
Config resolve_point_config(const Sweep& s, const SweepRun& run, const json& document, const std::vector<size_t>& value_index) {
  try {
    return resolve_config(document, s.base_dir);
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    for (size_t a = 0; a < s.axes.size(); ++a) {
      const std::string& name = s.axes[a].name;
      if (!names_key(m, name)) continue;
      const std::string rest = m.rfind(name + ":", 0) == 0 ? m.substr(name.size() + 1) : " " + m;
      throw ConfigError(fmt::format("{}.{}[{}]:{} (run {}: {})", s.axes[a].zip ? "zip" : "grid", name, value_index[a], rest,
                                    run.index, describe_point(s, run)));
    }
    throw ConfigError(fmt::format("{}: {}", s.axes.empty() ? std::string("base") : fmt::format("run {} ({})", run.index, describe_point(s, run)), e.what()));
  }
}

// The run ids given so far: two runs with the same resolved config are refused.
struct RunIds {
  std::map<std::string, size_t> seen;
  std::string all;  // concatenated in order: hashed into the sweep_id
};

// The replicates of one point, each with train.seed + replicate (when the seed is a valid one:
// an invalid seed is left for resolve_config to refuse).
void add_point_runs(Sweep& s, const SweepPoint& pt, const json& default_seed, RunIds& ids) {
  const json& point = pt.document;
  const json* seed_value = &default_seed;
  if (point.contains("train") && point["train"].is_object() && point["train"].contains("seed")) seed_value = &point["train"]["seed"];
  const bool seed_ok = seed_value->is_number_unsigned() || (seed_value->is_number_integer() && seed_value->get<int64_t>() >= 0);
  if (seed_ok && seed_value->get<uint64_t>() > UINT64_MAX - (s.replicates - 1))
    throw ConfigError(fmt::format("train.seed: {} + replicate (up to {}) passes 2^64 - 1 and would wrap to a seed another run "
                                  "may use; give a smaller seed",
                                  seed_value->get<uint64_t>(), s.replicates - 1));
  for (uint32_t rep = 0; rep < s.replicates; ++rep) {
    SweepRun run;
    run.index = s.runs.size();
    run.axis_values = pt.values;
    run.replicate = rep;
    json d = point;
    if (seed_ok) set_dotted(d, "train.seed", seed_value->get<uint64_t>() + rep);
    run.config = resolve_point_config(s, run, d, pt.value_index);
    run.run_id = run_id_of(run.config.resolved);
    run.config.resolved = nullptr;  // the bulk of a run's memory: rebuilt on demand (resolved_config)
    auto [it, fresh] = ids.seen.emplace(run.run_id, run.index);
    if (!fresh)
      throw ConfigError(fmt::format("grid: runs {} ({}) and {} ({}) have the same resolved config; remove the duplicate value",
                                    it->second, describe_point(s, s.runs[it->second]), run.index, describe_point(s, run)));
    ids.all += run.run_id;
    s.runs.push_back(std::move(run));
  }
}

}  // namespace

nlohmann::json Sweep::resolved_config(const SweepRun& run) const {
  AxisLayout layout;
  for (size_t a = 0; a < axes.size(); ++a) (axes[a].zip ? layout.zip : layout.grid).push_back(a);
  const size_t point = run.index / replicates;
  json d = point_at(*this, layout, point / zip_length, point % zip_length).document;
  const json& default_seed = resolved_base["train"]["seed"];
  const json& seed = d.contains("train") && d["train"].contains("seed") ? d["train"]["seed"] : default_seed;
  set_dotted(d, "train.seed", seed.get<uint64_t>() + run.replicate);
  json resolved = resolve_config(d, base_dir).resolved;
  if (run_id_of(resolved) != run.run_id) throw std::logic_error("Sweep::resolved_config: the rebuilt config has another run id");
  return resolved;
}

std::vector<std::string> Sweep::axis_names() const {
  std::vector<std::string> n;
  for (const SweepAxis& a : axes) n.push_back(a.name);
  return n;
}

std::string describe_point(const Sweep& s, const SweepRun& r) {
  std::string d;
  for (size_t a = 0; a < s.axes.size(); ++a) {
    const json& v = r.axis_values[a];
    d += fmt::format("{}{}={}", d.empty() ? "" : ", ", s.axes[a].name, v.is_string() ? v.get<std::string>() : show(v));
  }
  if (s.replicates > 1) d += fmt::format("{}replicate {}", d.empty() ? "" : ", ", r.replicate);
  return d;
}

Sweep expand_sweep(const ordered_json& doc, const fs::path& dir) {
  check_sweep_keys(doc);
  Sweep s;
  s.document = doc;
  read_base(doc, dir, s);
  read_replicates(doc, s);
  read_axes(doc, "grid", false, s);
  read_axes(doc, "zip", true, s);
  const AxisLayout layout = lay_out_axes(s);

  const json default_seed = default_config_json()["train"]["seed"];
  RunIds ids;
  s.runs.reserve(size_t(layout.total));
  for (size_t p = 0; p < s.grid_points; ++p)
    for (size_t z = 0; z < s.zip_length; ++z) add_point_runs(s, point_at(s, layout, p, z), default_seed, ids);
  s.sweep_id = fmt::format("{:016x}", hash64(ids.all));
  return s;
}

Sweep load_sweep(const fs::path& file) {
  const ordered_json doc = parse_ordered_json_text(read_text_file(file, "the sweep file"), file.string());
  const fs::path abs = fs::absolute(file).lexically_normal();
  Sweep s = expand_sweep(doc, abs.parent_path());
  s.file = abs;
  return s;
}

}  // namespace scb
