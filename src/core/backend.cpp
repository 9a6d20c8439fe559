#include "scb/core/backend.hpp"

#include <fmt/format.h>

#include "scb/core/config.hpp"

namespace scb {

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::cpu;
  if (s == "cuda") return Device::cuda;
  if (s == "auto") return Device::auto_select;
  throw ConfigError(fmt::format("--device: expected cpu, cuda or auto, got \"{}\"", s));
}

}  // namespace scb
