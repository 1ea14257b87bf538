#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "problemgate/core/clock.hpp"

namespace problemgate::core {

/// True when `id` is 1-128 characters of [A-Za-z0-9._:-] (spec §5).
bool is_valid_request_id(std::string_view id) noexcept;

/// Generates `req_` + a 26-character ULID (48-bit ms timestamp, 80 random bits, Crockford
/// base32). One generator per worker thread: not thread-safe, no shared state.
class RequestIdGenerator {
 public:
  explicit RequestIdGenerator(const Clock& clock);
  /// Writes a fresh id into `out` (replacing its contents).
  void next(std::string& out);
  /// A new trace id (32 hex) and span id (16 hex) for a request that brought no valid
  /// `traceparent`, from the same random source as the request ids.
  void next_trace(char* trace_id32, char* span_id16) noexcept;
  /// A new span id (16 hex): the gateway's own span in a trace it continues.
  void next_span(char* span_id16) noexcept;
  std::string next() {
    std::string s;
    next(s);
    return s;
  }

 private:
  const Clock& clock_;
  std::mt19937_64 rng_;
};

}  // namespace problemgate::core
