#pragma once
// The one exception type for bad input, so that every layer maps it to exit 2 the same way.
#include <stdexcept>

namespace scb {

// Bad input: the message is one line, "<key path>: <what is wrong and what is allowed>".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace scb
