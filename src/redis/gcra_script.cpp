#include "problemgate/redis/gcra_script.hpp"

#include <hiredis/hiredis.h>

namespace problemgate::redis {

// Lua numbers are doubles: every value here stays below 2^53 (µs since the epoch are ~2^50.6),
// so the arithmetic is exact. string.format("%.0f") writes a TAT without an exponent.
const std::string_view kGcraScript = R"lua(
local secret = redis.call('GET', KEYS[2])
if not secret then
  redis.call('SET', KEYS[2], ARGV[1])
elseif secret ~= ARGV[1] then
  return {-1, secret}
end
local now
if ARGV[5] then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local base = math.max(tat, now)
local new_tat = base + interval
if new_tat - now <= capacity then
  local ttl = math.max(tonumber(ARGV[4]), math.ceil((new_tat - now) / 1000))
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl)
  return {1, now, new_tat}
end
return {0, now, base}
)lua";

GcraReply parse_gcra_reply(const redisReply* reply) {
  GcraReply out;
  if (reply == nullptr) {
    out.message = "no reply (connection closed)";
    return out;
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    std::string_view text(reply->str, reply->len);
    if (text.starts_with("NOSCRIPT")) out.kind = GcraReply::Kind::noscript;
    out.message.assign(text.substr(0, 200));
    return out;
  }
  if (reply->type != REDIS_REPLY_ARRAY || (reply->elements != 2 && reply->elements != 3)) {
    out.message = "unexpected reply shape";
    return out;
  }
  const redisReply* first = reply->element[0];
  if (first->type != REDIS_REPLY_INTEGER) {
    out.message = "unexpected reply: first element not an integer";
    return out;
  }
  if (first->integer == -1) {
    const redisReply* key = reply->element[1];
    if (reply->elements != 2 || key->type != REDIS_REPLY_STRING || key->len != 32) {
      out.message = "unexpected reply: malformed hashing secret";
      return out;
    }
    out.kind = GcraReply::Kind::other_key;
    out.key_hex.assign(key->str, key->len);
    return out;
  }
  if ((first->integer != 0 && first->integer != 1) || reply->elements != 3 ||
      reply->element[1]->type != REDIS_REPLY_INTEGER ||
      reply->element[2]->type != REDIS_REPLY_INTEGER) {
    out.message = "unexpected reply: expected {0|1, now, tat}";
    return out;
  }
  out.kind = GcraReply::Kind::decided;
  out.allowed = first->integer == 1;
  out.now_us = reply->element[1]->integer;
  out.tat_us = reply->element[2]->integer;
  if (out.now_us <= 0 || out.tat_us < 0) {
    out.kind = GcraReply::Kind::error;
    out.message = "unexpected reply: negative time";
  }
  return out;
}

}  // namespace problemgate::redis
