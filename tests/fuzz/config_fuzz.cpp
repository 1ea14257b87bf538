// libFuzzer target for the config loader: any bytes either load or raise ConfigError with at
// least one message; nothing else may escape, crash or hang.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "problemgate/config/load.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 64 * 1024) return 0;  // operator files, not megabytes
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto cfg = problemgate::config::load_config_text(text, "fuzz.yaml");
    if (cfg.routes.empty() || cfg.upstreams.empty()) std::abort();  // validation guarantees both
    for (const auto& r : cfg.routes)
      if (r.upstream_index >= cfg.upstreams.size()) std::abort();
  } catch (const problemgate::config::ConfigError& e) {
    if (e.problems().empty()) std::abort();
  }
  return 0;
}
