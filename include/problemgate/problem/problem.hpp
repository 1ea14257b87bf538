#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "problemgate/core/gateway_error.hpp"
#include "problemgate/problem/options.hpp"

namespace problemgate::problem {

/// One field-level error (spec §3.3).
struct FieldError {
  std::string path;
  std::string code;
  std::optional<std::string> message;
};

/// The canonical problem (spec §2). Empty strings mean "member absent" for detail-less
/// optional members (`subcode`), `detail` is absent when nullopt.
struct Problem {
  std::string type;
  std::string title;
  int status = 500;
  std::optional<std::string> detail;
  std::string instance;
  std::string code;
  std::string subcode;
  std::string request_id;
  /// W3C trace id, written as `traceId` right after `requestId`: 32 lowercase hex digits, or
  /// all '\0' for none. A fixed array: setting it never allocates (set_trace_id).
  std::array<char, 32> trace_id{};

  /// Sets trace_id from `id` when it is 32 lowercase hex digits; anything else leaves none.
  void set_trace_id(std::string_view id) noexcept {
    trace_id.fill('\0');
    if (id.size() != trace_id.size()) return;
    for (char c : id)
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return;
    id.copy(trace_id.data(), trace_id.size());
  }
  bool has_trace_id() const noexcept { return trace_id[0] != '\0'; }
  std::vector<FieldError> errors;
  std::optional<std::int64_t> retry_after;
  /// Extension members kept from an upstream problem+json body, already serialized as
  /// `"name":value` pairs joined by commas (no braces). Written after the known members.
  std::string extensions;
};

/// Serializes `p` as problem+json into `out` (appends). Members in spec §2 order; strings are
/// escaped and invalid UTF-8 replaced, so the output is always valid JSON.
void write_problem(const Problem& p, std::string& out);

/// The RFC 9110 reason phrase of `status` ("Unknown" for unregistered codes).
std::string_view reason_phrase(int status) noexcept;

/// The catalog row for `status` (spec §3.1), with `options.catalog` overrides applied.
CatalogEntry catalog_entry(int status, const Options& options);
/// The catalog code of `status` alone, without building the row: catalog_entry(...).code.
std::string_view catalog_code(int status, const Options& options);

/// Fills `type` and `title` from code/status the way spec §2 says for a body that has no
/// upstream type/title: type_base + code, or about:blank with the reason phrase.
void fill_type_and_title(Problem& p, const Options& options);

/// Builds the gateway's own error (spec §8) through the same path as rewritten ones.
Problem make_gateway_problem(core::GatewayError e, std::string_view instance,
                             std::string_view request_id, const Options& options,
                             std::string_view trace_id = {});

/// Spec §2 content negotiation: application/json when Accept names application/json and neither
/// application/problem+json nor a wildcard; else application/problem+json.
std::string_view negotiate_content_type(std::string_view accept) noexcept;

}  // namespace problemgate::problem
