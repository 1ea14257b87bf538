#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace problemgate::obs {

/// One request's facts for its access-log line. Views must stay valid during write().
struct AccessRecord {
  std::int64_t time_ms = 0;  ///< Unix ms when the request head was read
  std::string_view request_id;
  std::string_view method;
  std::string_view path;
  int status = 0;
  std::string_view route;
  std::string_view upstream;
  double duration_ms = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::string_view client;
  std::string_view user_agent;
  std::string_view error;  ///< gateway failure kind, when any
  std::string_view dialect;
  std::string_view code;
  std::string_view subcode;
  std::string_view hidden_detail;  ///< the upstream detail hidden from a 5xx client
};

/// Writes one JSON object per line to stdout through spdlog. Client-supplied values are
/// escaped and capped (kMaxFieldBytes), so they can never break or bloat a line.
/// Thread-safe (spdlog's stdout sink serialises lines).
class AccessLog {
public:
  static constexpr std::size_t kMaxFieldBytes = 2048;

  /// `enabled` false makes write() a no-op.
  explicit AccessLog(bool enabled = true);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  /// Formats `r` into `scratch` (reused per worker to avoid allocations) and writes it.
  void write(const AccessRecord& r, std::string& scratch);

  /// The line write() would emit, without the newline. Exposed for tests.
  static void format(const AccessRecord& r, std::string& out);

private:
  std::shared_ptr<spdlog::logger> logger_;
};

/// Configures the diagnostics logger (stderr) at `level` ("trace".."off"). Returns false for
/// an unknown level name.
bool init_diagnostics(std::string_view level);

}  // namespace problemgate::obs
