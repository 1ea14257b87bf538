#include "problemgate/core/json_escape.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <vector>

using problemgate::core::append_json_string;

namespace {
std::string quoted(std::string_view s, std::size_t max = std::string_view::npos) {
  std::string out;
  append_json_string(out, s, max);
  return out;
}
}  // namespace

TEST_SUITE("core.json_escape") {
  TEST_CASE("escapes quotes, backslashes and control characters") {
    CHECK(quoted("a\"b\\c\n\r\t\x01") == "\"a\\\"b\\\\c\\n\\r\\t\\u0001\"");
  }
  TEST_CASE("invalid UTF-8 becomes U+FFFD and output parses") {
    std::string s = quoted("ok\xff\xfe\xc3");
    auto j = nlohmann::json::parse(s);
    CHECK(j.get<std::string>() == "ok\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  }
  TEST_CASE("valid multi-byte UTF-8 is kept; U+2028 escaped") {
    CHECK(quoted("caf\xC3\xA9") == "\"caf\xC3\xA9\"");
    CHECK(quoted("a\xE2\x80\xA8"
                 "b") == "\"a\\u2028b\"");
  }
  TEST_CASE("NUL bytes and overlong encodings never pass raw") {
    std::string s = quoted(std::string_view("a\0b\xC0\x80", 5));
    CHECK(s.find('\0') == std::string::npos);
    CHECK(nlohmann::json::accept(s));
  }
  TEST_CASE("max_bytes caps the input") { CHECK(quoted("abcdef", 3) == "\"abc\""); }
}

TEST_SUITE("core.json_escape.runs") {
  TEST_CASE("a special byte at any position of a long string is escaped (16-byte steps and tail)") {
    // Lengths around the 16-byte steps: the tail is checked as an overlapping last 16 bytes.
    const std::vector<std::string_view> specials{
        "\"", "\\", "\n", std::string_view("\0", 1), "\x7f", "\xc3\xa9", "\xff"};
    for (const std::size_t len : {1, 15, 16, 17, 31, 32, 33, 47, 53}) {
      const std::string plain(len, 'p');
      for (std::size_t at = 0; at < len; ++at) {
        for (std::string_view special : specials) {
          std::string in = plain;
          in.replace(at, 1, special);
          const std::string out = ::quoted(in);
          const auto parsed = nlohmann::json::parse(out, nullptr, false);
          REQUIRE_MESSAGE(!parsed.is_discarded(), out);
          const std::string back = parsed.get<std::string>();
          if (special == "\xff") {
            CHECK(back == plain.substr(0, at) + "\xEF\xBF\xBD" + plain.substr(at + 1));
          } else {
            CHECK(back == in);  // DEL is printable in JSON; it round-trips
          }
        }
      }
    }
  }
}
