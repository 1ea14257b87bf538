// libFuzzer: any bytes, any header values -> a valid problem+json body with the right status.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "problemgate/problem/normalize.hpp"

namespace pp = problemgate::problem;

namespace {
constexpr std::string_view kContentTypes[] = {"application/json", "application/problem+json",
                                              "text/html",        "text/plain",
                                              "application/xml",  ""};
constexpr std::string_view kEncodings[] = {"", "", "", "gzip", "deflate", "br"};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // First two bytes pick the status (400-599), content type, encoding and a pinned dialect.
  const int status = 400 + data[0] % 200;
  const auto ct = kContentTypes[data[1] % 6];
  const auto ce = kEncodings[(data[1] / 6) % 6];
  pp::RouteOptions route;
  if (data[1] >= 216) route.dialect = static_cast<pp::Dialect>(data[1] % 11);
  pp::Options opts;
  opts.expose_5xx_detail = (data[0] & 0x80) != 0;

  pp::Input in;
  in.status = status;
  in.content_type = ct;
  in.content_encoding = ce;
  in.body = std::string_view(reinterpret_cast<const char*>(data + 2), size - 2);
  in.instance = "/fuzz";
  in.request_id = "req_fuzz";
  in.retry_after_header = "7";
  const pp::Output out = pp::normalize(in, opts, route);
  if (!out.rewritten) {
    if (ce != "br") std::abort();  // only an unsupported coding passes through (spec §1)
    return 0;
  }
  const auto j = nlohmann::json::parse(out.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) std::abort();
  if (!j.contains("status") || j["status"] != status) std::abort();
  for (const char* m : {"type", "title", "code", "instance", "requestId"})
    if (!j.contains(m) || !j[m].is_string()) std::abort();
  if (j.contains("subcode") && j["subcode"] == j["code"]) std::abort();
  return 0;
}
