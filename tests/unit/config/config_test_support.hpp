#pragma once
// What the config test files share: a minimal valid document and "the problems a text has".
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "problemgate/config/load.hpp"

namespace problemgate::config::test {

// Line 1 is empty, so a line appended by with() is line 6.
inline constexpr std::string_view kMinimal = R"(
upstreams:
  legacy: { url: http://127.0.0.1:9000 }
routes:
  - match: { prefix: / }
)";

/// A minimal valid document with `extra` appended (YAML at top level).
inline std::string with(std::string_view extra) {
  return std::string(kMinimal) + std::string(extra);
}

/// Every problem loading `text` (as file `source`) reports; empty when it loads.
inline std::vector<std::string> errors_of(std::string_view text, const Overrides& o = {},
                                          std::string_view source = "t.yaml") {
  try {
    load_config_text(text, source, o);
  } catch (const ConfigError& e) {
    return e.problems();
  }
  return {};
}

/// The one problem `text` has (fails the test when there are none or several).
inline std::string error_of(std::string_view text, const Overrides& o = {},
                            std::string_view source = "t.yaml") {
  auto errors = errors_of(text, o, source);
  CAPTURE(text);
  if (errors.size() != 1) {
    for (const auto& e : errors) MESSAGE(e);
  }
  REQUIRE(errors.size() == 1);
  return errors.front();
}

}  // namespace problemgate::config::test
