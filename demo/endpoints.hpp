#pragma once
#include <cstdint>
#include <string>
#include <string_view>

/// The demo legacy API's routes and canned responses. No I/O here: the server asks `route()`
/// what a request target means and frames the bytes itself (server.cpp).
namespace problemgate::demo {

/// A response fixed at startup: `head` is the status line plus every header line, each ending
/// in CRLF, without the blank line, so the server can still add a `Connection` line. `body`
/// is what a GET gets; a HEAD gets `head` alone (the Content-Length is the GET one).
/// Lives for the whole process (function-local statics), so views into it never dangle.
struct Prebuilt {
  unsigned status = 0;
  std::string head;
  std::string body;
};

enum class Kind {
  fixed,        ///< `fixed` points at a Prebuilt
  nested_rate,  ///< `fixed` plus an X-RateLimit-Reset line (now + 30 s) added per request
  echo,         ///< 200, request body streamed back
  big,          ///< 200 octet-stream of `size` bytes, `chunked` or Content-Length
  error_big,    ///< 500 JSON of exactly `size` bytes
  slow,         ///< 200 after `size` milliseconds
  status,       ///< `status` with a small JSON body (none for 204/304)
  headers,      ///< 200 JSON echo of the request line and header fields
  stats,        ///< 200 {"connections_accepted":N,"requests":M}
  not_found,    ///< 404 flat body naming `path`
  bad_request,  ///< 400 flat body with `message` (a bad query parameter)
};

/// What a request target maps to. Views point into the target or into static storage.
struct Route {
  Kind kind = Kind::not_found;
  const Prebuilt* fixed = nullptr;
  std::uint64_t size = 0;
  bool chunked = false;
  unsigned status = 0;
  std::string_view path;
  std::string_view message;
};

inline constexpr std::uint64_t kMaxStreamBytes = std::uint64_t{1} << 30;   // 1 GiB
inline constexpr std::uint64_t kDefaultBigBytes = std::uint64_t{1} << 20;  // 1 MiB
inline constexpr std::uint64_t kMaxSlowMs = 600'000;
/// `/error-big` bodies are `{"error":"x","details":"` + 'a' * k + `"}`.
inline constexpr std::string_view kErrorBigPrefix = R"({"error":"x","details":")";
inline constexpr std::string_view kErrorBigSuffix = R"("})";
inline constexpr std::uint64_t kErrorBigMin = 26;  // prefix + suffix
static_assert(kErrorBigPrefix.size() + kErrorBigSuffix.size() == kErrorBigMin);

/// Maps a request target (path plus optional query) to a route. Never throws on input.
Route route(std::string_view target);

/// Builds every Prebuilt (and the gzip body) once; call before serving so the first request
/// does not pay for it. Thread-safe either way (function-local statics).
void warm_up();

/// Reason phrase for a status code (`200` -> "OK"); "Unknown" for codes with none.
std::string_view reason(unsigned status) noexcept;

/// Appends `{"error":<error>,"details":<details>}` with both JSON-escaped.
void append_flat_error(std::string& out, std::string_view error, std::string_view details);

/// A 64 KiB block of the `/big` pattern: byte i of any `/big` body is kBigAlphabet[i % 64];
/// 64 divides 65536, so every 64 KiB piece of a body is this same block.
std::string_view big_block() noexcept;
/// A 64 KiB block of 'a' (the filler of `/error-big`).
std::string_view filler_block() noexcept;
inline constexpr std::size_t kBlockBytes = 64 * 1024;
inline constexpr std::string_view kBigAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace problemgate::demo
