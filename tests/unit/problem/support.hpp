#pragma once
// Shared helpers for the problem module's tests.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <zlib.h>

#include "problemgate/problem/normalize.hpp"

namespace pgtest {

using nlohmann::json;
namespace pp = problemgate::problem;

inline constexpr std::string_view kInstance = "/v1/resource";
inline constexpr std::string_view kRequestId = "req_01HXYZABCDEFGHJKMNPQRSTVWX";

struct Result {
  pp::Output out;
  json body;  // parsed out.body (discarded value when it did not parse)
};

/// Every rewritten output is valid JSON with the members spec §2 always requires.
inline json check_valid(const pp::Output& out, int status) {
  REQUIRE(out.rewritten);
  json j = json::parse(out.body, nullptr, false);
  REQUIRE_MESSAGE(!j.is_discarded(), "not JSON: " << out.body);
  REQUIRE(j.is_object());
  CHECK(j.value("status", -1) == status);
  for (const char* m : {"type", "title", "code", "instance", "requestId"}) {
    CHECK_MESSAGE(j.contains(m), "missing " << m << " in " << out.body);
    if (j.contains(m)) CHECK(j[m].is_string());
  }
  for (auto it = j.begin(); it != j.end(); ++it)
    CHECK_MESSAGE(!it->is_null(), "null member " << it.key());
  if (j.contains("subcode")) CHECK(j["subcode"] != j["code"]);
  return j;
}

struct Call {
  int status = 400;
  std::string_view content_type = "application/json";
  std::string_view body;
  std::string_view content_encoding;
  std::string_view amzn_error_type;
  std::string_view retry_after_header;
  std::string_view accept;
  std::string_view trace_id;
};

inline Result run(const Call& c, const pp::Options& opts = {}, const pp::RouteOptions& route = {}) {
  pp::Input in;
  in.status = c.status;
  in.content_type = c.content_type;
  in.content_encoding = c.content_encoding;
  in.amzn_error_type = c.amzn_error_type;
  in.body = c.body;
  in.instance = kInstance;
  in.request_id = kRequestId;
  in.accept = c.accept;
  in.retry_after_header = c.retry_after_header;
  in.trace_id = c.trace_id;
  Result r{pp::normalize(in, opts, route), {}};
  if (r.out.rewritten) r.body = check_valid(r.out, c.status);
  return r;
}

inline Result run(int status, std::string_view content_type, std::string_view body) {
  Call c;
  c.status = status;
  c.content_type = content_type;
  c.body = body;
  return run(c);
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::string fixture(std::string_view name) {
  return read_file(std::string(PROBLEMGATE_FIXTURE_DIR) + "/upstream_bodies/" + std::string(name));
}

/// zlib-compresses `data`: window_bits 16+MAX_WBITS = gzip, MAX_WBITS = zlib, -MAX_WBITS = raw.
inline std::string compress(std::string_view data, int window_bits = 16 + MAX_WBITS) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, window_bits, 9, Z_DEFAULT_STRATEGY) ==
          Z_OK);
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace pgtest
