#include "problem/decode.hpp"

#include <doctest/doctest.h>
#include <zlib.h>

#include <string>

#include "support.hpp"

namespace in = problemgate::problem::internal;

using pgtest::compress;

TEST_SUITE("problem.decode") {
  TEST_CASE("parse_encoding") {
    CHECK(in::parse_encoding("") == in::Encoding::identity);
    CHECK(in::parse_encoding("Identity") == in::Encoding::identity);
    CHECK(in::parse_encoding(" GZIP ") == in::Encoding::gzip);
    CHECK(in::parse_encoding("x-gzip") == in::Encoding::gzip);
    CHECK(in::parse_encoding("deflate") == in::Encoding::deflate);
    CHECK(in::parse_encoding("br") == in::Encoding::unsupported);
    CHECK(in::parse_encoding("zstd") == in::Encoding::unsupported);
    CHECK(in::parse_encoding("gzip, gzip") == in::Encoding::unsupported);
  }

  TEST_CASE("round trips and the cap") {
    const std::string data(100000, 'q');
    std::string out;
    CHECK(in::inflate_body(compress(data, 16 + MAX_WBITS), in::Encoding::gzip, 200000, out) ==
          in::DecodeStatus::ok);
    CHECK(out == data);
    CHECK(in::inflate_body(compress(data, MAX_WBITS), in::Encoding::deflate, 200000, out) ==
          in::DecodeStatus::ok);
    CHECK(out == data);
    CHECK(in::inflate_body(compress(data, -MAX_WBITS), in::Encoding::deflate, 200000, out) ==
          in::DecodeStatus::ok);
    CHECK(out == data);
    CHECK(in::inflate_body(compress(data, 16 + MAX_WBITS), in::Encoding::gzip, 100000, out) ==
          in::DecodeStatus::ok);
    CHECK(in::inflate_body(compress(data, 16 + MAX_WBITS), in::Encoding::gzip, 99999, out) ==
          in::DecodeStatus::too_large);
    CHECK(out.size() <= 99999);
  }

  TEST_CASE("truncated and corrupt streams") {
    std::string out;
    const std::string z = compress("hello world hello world", 16 + MAX_WBITS);
    CHECK(in::inflate_body(z.substr(0, z.size() / 2), in::Encoding::gzip, 1000, out) ==
          in::DecodeStatus::corrupt);
    CHECK(in::inflate_body("not compressed", in::Encoding::gzip, 1000, out) ==
          in::DecodeStatus::corrupt);
    CHECK(in::inflate_body("", in::Encoding::deflate, 1000, out) == in::DecodeStatus::corrupt);
  }
}
