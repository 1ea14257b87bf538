// Bad input never fails the response (spec §4): every body below still gives a valid problem.
#include "problemgate/problem/normalize.hpp"

#include <doctest/doctest.h>
#include <zlib.h>

#include <nlohmann/json.hpp>
#include <string>

#include "support.hpp"

namespace {

using nlohmann::json;
namespace pp = problemgate::problem;
using pp::Dialect;

std::string gzip(std::string_view data, int window_bits = 16 + MAX_WBITS) {
  return pgtest::compress(data, window_bits);
}

pgtest::Result run_body(int status, std::string_view body,
                        std::string_view ct = "application/json") {
  return pgtest::run(status, ct, body);
}

}  // namespace

TEST_SUITE("problem.hostile") {
  TEST_CASE("truncated JSON falls to text") {
    for (std::string_view body :
         {R"({"error": "Invalid JSON", "details": )", R"({"error":)", "{", R"({"a":"\u12)"}) {
      CAPTURE(body);
      auto r = run_body(400, body);
      CHECK(r.out.dialect == Dialect::text);
    }
  }

  TEST_CASE("10,000-deep nesting does not crash") {
    std::string deep_obj;
    for (int i = 0; i < 10000; ++i) deep_obj += R"({"a":)";
    deep_obj += "1";
    for (int i = 0; i < 10000; ++i) deep_obj += "}";
    CHECK(run_body(400, deep_obj).out.dialect == Dialect::text);
    std::string deep_arr = R"({"error":)" + std::string(10000, '[') + std::string(10000, ']') + "}";
    CHECK(run_body(400, deep_arr).out.dialect == Dialect::text);
    std::string deep_xml;
    for (int i = 0; i < 10000; ++i) deep_xml += "<a>";
    deep_xml += "<Code>X</Code>";
    for (int i = 0; i < 10000; ++i) deep_xml += "</a>";
    run_body(400, deep_xml, "application/xml");
    std::string deep_html = "<html><body>" + std::string(30000, '<') + "</body></html>";
    run_body(404, deep_html, "text/html");
  }

  TEST_CASE("nesting just inside the depth limit still parses; field maps stay bounded") {
    std::string body = R"({"error":{"code":"X","message":"m","details":)";
    for (int i = 0; i < 50; ++i) body += R"({"a":)";
    body += R"(["deep"])";
    for (int i = 0; i < 50; ++i) body += "}";
    body += "}}";
    auto r = run_body(400, body);
    CHECK(r.out.dialect == Dialect::nested);
    CHECK(r.body["subcode"] == "x");
  }

  TEST_CASE("60 KiB strings") {
    const std::string big(60 * 1024, 'z');
    auto r = run_body(400, R"({"error":")" + big + R"(","details":"d"})");
    CHECK(r.out.dialect == Dialect::flat);
    CHECK_FALSE(r.body.contains("subcode"));  // a 60 KiB token is not a code
    CHECK(r.body["detail"] == "d");
    pp::Options opts;
    opts.max_error_body = 256 * 1024;
    pgtest::Call c;
    c.status = 400;
    const std::string two = R"({"error":")" + big + R"(","details":")" + big + R"("})";
    c.body = two;
    CHECK(pgtest::run(c, opts).body["detail"].get<std::string>() == big);
    std::string body = R"({"type":"about:blank","title":"t","status":400,"ext":")" + big + R"("})";
    c.body = body;
    auto p = pgtest::run(c, opts);
    CHECK(p.body["ext"].get<std::string>().size() == big.size());
  }

  TEST_CASE("invalid UTF-8 is never trusted") {
    // simdjson rejects invalid UTF-8 in JSON, so it falls to text, where the writer replaces it.
    auto r = run_body(400, "{\"error\":\"bad \xff\xfe\"}");
    CHECK(r.out.dialect == Dialect::text);
    auto t = run_body(400, "caf\xc3 au lait \xed\xa0\x80", "text/plain");
    CHECK(t.body["detail"].get<std::string>().find("\xEF\xBF\xBD") != std::string::npos);
    auto h = run_body(404, "<html><body><p>bad \xff bytes here</p></body></html>", "text/html");
    CHECK(h.out.dialect == Dialect::html);
  }

  TEST_CASE("NUL bytes") {
    const std::string text("line\0with nul\0", 14);
    auto r = run_body(400, text, "text/plain");
    CHECK(r.body["detail"] == "line with nul");
    const std::string json_nul("{\"error\":\"a\0b\"}", 15);
    run_body(400, json_nul);
    const std::string escaped = R"({"error":"a\u0000b","details":"x\u0000y"})";
    auto e = run_body(400, escaped);
    CHECK(e.out.dialect == Dialect::flat);
    CHECK(e.body["detail"] == std::string("x\0y", 3));
  }

  TEST_CASE("duplicate keys: the first wins") {
    auto r = run_body(
        400, R"({"error":"first_code","error":"second_code","details":"one","details":"two"})");
    CHECK(r.body["subcode"] == "first_code");
    CHECK(r.body["detail"] == "one");
    auto p = run_body(400, R"({"type":"about:blank","title":"t","status":400,"x":1,"x":2})");
    CHECK(p.out.body.find("\"x\":1") != std::string::npos);
    CHECK(p.out.body.find("\"x\":2") == std::string::npos);
  }

  TEST_CASE("top-level arrays and scalars") {
    for (std::string_view body : {"[]", "[1,2]", "42", "true", "null", "\"x\"", "-1e999"}) {
      CAPTURE(body);
      auto r = run_body(400, body);
      CHECK(r.out.dialect == Dialect::text);
    }
  }

  TEST_CASE("wrong member types") {
    struct Row {
      std::string_view body;
      Dialect dialect;
    };
    for (const auto& row :
         {Row{R"({"error":42})", Dialect::json}, Row{R"({"error":null,"detail":7})", Dialect::json},
          Row{R"({"error":["a"]})", Dialect::fieldmap},
          Row{R"({"error":{"code":{"x":1},"message":["m"]}})", Dialect::nested},
          Row{R"({"type":7,"title":false,"status":"400"})", Dialect::json},
          Row{R"({"type":"about:blank","status":400,"errors":"nope","detail":{}})",
              Dialect::problem},
          Row{R"({"detail":[1,"x",{"loc":"notalist","msg":5}]})", Dialect::detail},
          Row{R"({"error":"x","retry_after":"soon","limit":1.5,"remaining":-1})", Dialect::flat},
          Row{R"({"errors":[null,1,"s",{"path":[{}],"code":5}]})", Dialect::json}}) {
      CAPTURE(row.body);
      auto r = run_body(429, row.body);
      CHECK(pp::dialect_name(r.out.dialect) == pp::dialect_name(row.dialect));
    }
  }

  TEST_CASE("problem extensions with odd content are re-serialized validly") {
    auto r = run_body(
        400,
        R"({"type":"about:blank","title":"t","status":400,"k\"ey":"v\u2028\n","n":1e3,"o":{"a":[true,null]}})");
    CHECK(r.body["k\"ey"] == "v\u2028\n");
    CHECK(r.body["o"] == json::parse(R"({"a":[true,null]})"));
  }

  TEST_CASE("gzip and deflate bodies are decoded") {
    const std::string body = R"({"error":"Invalid JSON","details":"Unexpected token"})";
    for (auto [encoding, bits] :
         {std::pair{"gzip", 16 + MAX_WBITS}, std::pair{"x-gzip", 16 + MAX_WBITS},
          std::pair{"deflate", MAX_WBITS}, std::pair{"deflate", -MAX_WBITS}}) {
      CAPTURE(encoding);
      CAPTURE(bits);
      const std::string z = gzip(body, bits);
      pgtest::Call c;
      c.status = 400;
      c.body = z;
      c.content_encoding = encoding;
      auto r = pgtest::run(c);
      CHECK(r.out.dialect == Dialect::flat);
      CHECK(r.body["subcode"] == "invalid_json");
    }
  }

  TEST_CASE("gzip bomb: never inflated past the cap; passed through untouched (spec §1)") {
    const std::string huge(64 * 1024 * 1024, ' ');  // 64 MiB of spaces -> ~64 KiB gzip
    const std::string z = gzip(huge);
    CHECK(z.size() < 128 * 1024);
    pgtest::Call c;
    c.status = 413;
    c.body = z;
    c.content_encoding = "gzip";
    problemgate::problem::Normalizer n;
    problemgate::problem::Input in;
    in.status = 413;
    in.body = z;
    in.content_encoding = "gzip";
    const auto out =
        n.normalize(in, problemgate::problem::Options{}, problemgate::problem::RouteOptions{});
    // Over the cap once inflated: the status-only problem (spec §1), none of the inflated bytes.
    CHECK(out.rewritten);
    CHECK(out.dialect == problemgate::problem::Dialect::oversize);
    CHECK(out.body.size() < 1024);
  }

  TEST_CASE("corrupt gzip gives a status-only problem") {
    pgtest::Call c;
    c.status = 502;
    c.body = "\x1f\x8b\x08\x00garbage";
    c.content_encoding = "gzip";
    auto r = pgtest::run(c);
    CHECK(r.out.body_undecodable);
    CHECK(r.body["code"] == "upstream_unavailable");
  }

  TEST_CASE("odd statuses still give a valid problem") {
    for (int status : {400, 418, 451, 499, 500, 501, 507, 599}) {
      CAPTURE(status);
      run_body(status, R"({"error":"x"})");
    }
  }

  TEST_CASE("deterministic pseudo-random bytes") {
    std::uint32_t seed = 12345;
    auto next = [&] {
      seed = seed * 1664525u + 1013904223u;
      return static_cast<char>(seed >> 24);
    };
    const std::string_view alphabet = R"({}[]":,0123 abcnulltrue\<>/&;#)";
    for (int i = 0; i < 2000; ++i) {
      std::string body;
      const int len = static_cast<unsigned char>(next()) % 96;
      for (int k = 0; k < len; ++k) {
        const char c = next();
        body.push_back((c & 1) ? alphabet[static_cast<unsigned char>(c) % alphabet.size()] : c);
      }
      if (i % 3 == 0) body.insert(0, "{\"error\":");
      CAPTURE(body);
      const int status = 400 + (i % 200);
      auto r = pgtest::run(status, (i % 2) ? "application/json" : "text/html", body);
      CHECK(r.body["status"] == status);
    }
  }
}
