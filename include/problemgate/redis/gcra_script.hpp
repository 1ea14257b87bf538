#pragma once
#include <cstdint>
#include <string>
#include <string_view>

struct redisReply;

namespace problemgate::redis {

/// The limiter as a Redis server-side Lua script: one atomic GCRA step per call, with the time
/// taken from the Redis server (TIME), so gateways with skewed clocks share one timeline.
///
/// KEYS[1] the bucket (its TAT, µs since the epoch, as a decimal string); KEYS[2] the record of
/// the shared hashing secret. ARGV: [1] this gateway's secret (32 hex digits), [2] interval µs,
/// [3] capacity µs, [4] expiry ms, [5] optional: "now" in µs, which replaces TIME (tests only).
///
/// Replies {1, now, new_tat} (allowed), {0, now, tat} (denied), or {-1, secret} when the record
/// holds another secret than ARGV[1] (the gateway adopts it and asks again). An absent record
/// is created with ARGV[1]: the first gateway to ask sets the secret every other one adopts.
/// The bucket expires one window after its last admitted request, or when its TAT has passed,
/// whichever is later: after that an absent key means exactly what the stored one would.
extern const std::string_view kGcraScript;

/// A parsed reply of the script (or of the server, when it refused to run it).
struct GcraReply {
  enum class Kind {
    decided,    ///< allowed/now/tat are set
    other_key,  ///< the store holds another hashing secret: `key_hex`
    noscript,   ///< EVALSHA of a script the server does not have (restart, SCRIPT FLUSH)
    error,      ///< an error reply or a reply of the wrong shape: `message`
  };
  Kind kind = Kind::error;
  bool allowed = false;
  std::int64_t now_us = 0;
  std::int64_t tat_us = 0;
  std::string key_hex;
  std::string message;
};

/// Reads one reply of EVAL/EVALSHA of kGcraScript; total (nullptr = no reply: error).
GcraReply parse_gcra_reply(const redisReply* reply);

}  // namespace problemgate::redis
