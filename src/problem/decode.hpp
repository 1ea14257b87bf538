#pragma once
#include <cstddef>
#include <string>
#include <string_view>

// Content-Encoding of error bodies (spec §1): gzip and deflate are decoded, with a hard cap on the
// decoded size so a compression bomb never inflates past it.
namespace problemgate::problem::internal {

enum class Encoding { identity, gzip, deflate, unsupported };

/// "" and "identity" -> identity; "gzip"/"x-gzip"; "deflate"; anything else (br, zstd, lists of
/// codings) -> unsupported.
Encoding parse_encoding(std::string_view content_encoding) noexcept;

enum class DecodeStatus { ok, too_large, corrupt };

/// Inflates `in` into `out` (replaced). `deflate` accepts both zlib-wrapped and raw streams, as
/// browsers do. Stops with too_large as soon as the output would pass `cap` bytes.
DecodeStatus inflate_body(std::string_view in, Encoding encoding, std::size_t cap,
                          std::string& out);

}  // namespace problemgate::problem::internal
