#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace problemgate::obs {

/// TLS handshakes by listener, and their failures by listener and reason; failures of TLS to
/// upstreams by upstream and reason. Process-wide and thread-safe: a handshake costs far more
/// than the lock, and plain connections never come here.
class TlsCounters {
 public:
  void handshake_ok(std::string_view listener, bool resumed);
  void handshake_failed(std::string_view listener, std::string_view reason);
  void upstream_failed(std::string_view upstream, std::string_view reason);
  /// Handshakes (ok) or failures seen for this label set so far; 0 when none (tests).
  std::uint64_t failures(std::string_view listener, std::string_view reason) const;

  /// Appends the Prometheus text of every series (the caller writes the rest).
  void render(std::string& out) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t, std::less<>> handshakes_;         // listener
  std::map<std::string, std::uint64_t, std::less<>> resumed_;            // listener
  std::map<std::string, std::uint64_t, std::less<>> failures_;           // listener \0 reason
  std::map<std::string, std::uint64_t, std::less<>> upstream_failures_;  // upstream \0 reason
};

}  // namespace problemgate::obs
