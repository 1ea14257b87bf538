#include "problemgate/redis/gcra_script.hpp"

#include <doctest/doctest.h>
#include <hiredis/hiredis.h>

#include <string>
#include <vector>

using problemgate::redis::GcraReply;
using problemgate::redis::parse_gcra_reply;

namespace {

// Replies built by hand, as hiredis would hand them over.
redisReply integer(long long v) {
  redisReply r{};
  r.type = REDIS_REPLY_INTEGER;
  r.integer = v;
  return r;
}

redisReply string(std::string& s, int type = REDIS_REPLY_STRING) {
  redisReply r{};
  r.type = type;
  r.str = s.data();
  r.len = s.size();
  return r;
}

redisReply array(std::vector<redisReply*>& items) {
  redisReply r{};
  r.type = REDIS_REPLY_ARRAY;
  r.elements = items.size();
  r.element = items.data();
  return r;
}

}  // namespace

TEST_SUITE("redis.gcra_reply") {
  TEST_CASE("allowed and denied decisions") {
    auto a = integer(1), now = integer(1'700'000'000'000'000), tat = integer(1'700'000'000'600'000);
    std::vector<redisReply*> items{&a, &now, &tat};
    auto r = array(items);
    GcraReply out = parse_gcra_reply(&r);
    CHECK(out.kind == GcraReply::Kind::decided);
    CHECK(out.allowed);
    CHECK(out.now_us == 1'700'000'000'000'000);
    CHECK(out.tat_us == 1'700'000'000'600'000);
    a = integer(0);
    out = parse_gcra_reply(&r);
    CHECK(out.kind == GcraReply::Kind::decided);
    CHECK_FALSE(out.allowed);
  }

  TEST_CASE("another gateway's secret") {
    auto m = integer(-1);
    std::string key = "00112233445566778899aabbccddeeff";
    auto k = string(key);
    std::vector<redisReply*> items{&m, &k};
    auto r = array(items);
    GcraReply out = parse_gcra_reply(&r);
    CHECK(out.kind == GcraReply::Kind::other_key);
    CHECK(out.key_hex == key);
    std::string short_key = "0011";
    k = string(short_key);
    CHECK(parse_gcra_reply(&r).kind == GcraReply::Kind::error);
  }

  TEST_CASE("NOSCRIPT and other errors") {
    std::string noscript = "NOSCRIPT No matching script. Please use EVAL.";
    auto e = string(noscript, REDIS_REPLY_ERROR);
    CHECK(parse_gcra_reply(&e).kind == GcraReply::Kind::noscript);
    std::string oom = "OOM command not allowed when used memory > 'maxmemory'.";
    e = string(oom, REDIS_REPLY_ERROR);
    const GcraReply out = parse_gcra_reply(&e);
    CHECK(out.kind == GcraReply::Kind::error);
    CHECK(out.message.starts_with("OOM"));
  }

  TEST_CASE("no reply and malformed replies are errors, never a decision") {
    CHECK(parse_gcra_reply(nullptr).kind == GcraReply::Kind::error);
    auto i = integer(1);
    CHECK(parse_gcra_reply(&i).kind == GcraReply::Kind::error);
    std::string s = "OK";
    auto st = string(s, REDIS_REPLY_STATUS);
    CHECK(parse_gcra_reply(&st).kind == GcraReply::Kind::error);
    auto two = integer(2), now = integer(5), tat = integer(6);
    std::vector<redisReply*> items{&two, &now, &tat};
    auto r = array(items);
    CHECK(parse_gcra_reply(&r).kind == GcraReply::Kind::error);  // 2 is no verdict
    auto one = integer(1);
    std::string text = "5";
    auto str = string(text);
    std::vector<redisReply*> wrong{&one, &str, &tat};
    auto w = array(wrong);
    CHECK(parse_gcra_reply(&w).kind == GcraReply::Kind::error);  // now must be an integer
    auto neg = integer(-5);
    std::vector<redisReply*> negative{&one, &neg, &tat};
    auto n = array(negative);
    CHECK(parse_gcra_reply(&n).kind == GcraReply::Kind::error);
    std::vector<redisReply*> empty;
    auto e = array(empty);
    CHECK(parse_gcra_reply(&e).kind == GcraReply::Kind::error);
  }
}
