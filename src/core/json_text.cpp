// Checked JSON reading (see json_text.hpp). nlohmann's parser is iterative, so its callback is
// the one place where depth, duplicate keys and the current key path are all known while the
// text is read; the callback keeps that path so every error can name the key it concerns.
#include "scb/core/json_text.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "scb/core/config.hpp"

namespace scb {

namespace {

// The key path of the value being read: one entry per open object or array.
struct KeyPath {
  struct Level {
    bool object = false;
    std::string key;          // last key read in this object
    std::set<std::string> keys;
    size_t index = 0;         // next element of this array
  };
  std::vector<Level> levels;

  std::string dotted() const {
    std::string s;
    for (const Level& l : levels) {
      if (l.object && !l.key.empty()) s += (s.empty() ? "" : ".") + l.key;
      if (!l.object) s += fmt::format("[{}]", l.index);
    }
    return s;
  }
  // "origin: key" (or "origin" for the top level), the prefix of every message.
  std::string where(const std::string& origin) const {
    std::string d = dotted();
    if (d.size() > 80) d = d.substr(0, 77) + "...";
    return d.empty() ? origin : origin + ": " + d;
  }
};

template <class Json>
Json parse_checked(const std::string& text, const std::string& origin) {
  using Event = typename Json::parse_event_t;
  KeyPath path;
  auto callback = [&](int depth, Event event, Json& parsed) -> bool {
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        if (depth >= kMaxJsonDepth)
          throw ConfigError(fmt::format("{}: nested deeper than {} levels", path.where(origin), kMaxJsonDepth));
        path.levels.push_back({event == Event::object_start, {}, {}, 0});
        break;
      case Event::key: {
        KeyPath::Level& l = path.levels.back();
        l.key = parsed.template get<std::string>();
        if (!l.keys.insert(l.key).second)
          throw ConfigError(fmt::format("{}: the key is given twice in one object (JSON would keep only the last)", path.where(origin)));
        break;
      }
      case Event::object_end:
      case Event::array_end:
        path.levels.pop_back();
        [[fallthrough]];
      case Event::value:
        if (!path.levels.empty() && !path.levels.back().object) ++path.levels.back().index;
        break;
    }
    return true;
  };
  try {
    return Json::parse(text, callback);
  } catch (const typename Json::parse_error& e) {
    std::string what = e.what();
    const auto pos = what.find("parse error");
    throw JsonSyntaxError(fmt::format("{}: malformed JSON ({})", origin, pos == std::string::npos ? what : what.substr(pos)));
  } catch (const typename Json::out_of_range& e) {
    std::string what = e.what();  // "number overflow parsing '1e309'"
    const auto q = what.find('\'');
    const std::string number = q == std::string::npos ? what : what.substr(q);
    throw ConfigError(fmt::format("{}: the number {} is beyond the range of a double", path.where(origin), number));
  }
}

}  // namespace

nlohmann::json parse_json_text(const std::string& text, const std::string& origin) {
  return parse_checked<nlohmann::json>(text, origin);
}

nlohmann::ordered_json parse_ordered_json_text(const std::string& text, const std::string& origin) {
  return parse_checked<nlohmann::ordered_json>(text, origin);
}

std::string read_text_file(const std::filesystem::path& path, const std::string& what) {
  errno = 0;
  std::ifstream in(path);
  if (!in) throw ConfigError(fmt::format("{}: cannot read {} ({})", path.string(), what, std::strerror(errno ? errno : ENOENT)));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw ConfigError(fmt::format("{}: cannot read {} ({})", path.string(), what, std::strerror(errno ? errno : EIO)));
  return ss.str();
}

nlohmann::json load_json_file(const std::filesystem::path& path) {
  return parse_json_text(read_text_file(path, "the file"), path.string());
}

}  // namespace scb
