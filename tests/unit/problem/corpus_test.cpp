// The project's golden corpus (every tests/corpus/*.json, format in tests/corpus/README.md), loaded
// as it is. A missing corpus is a failure, never a skip.
#include "problemgate/problem/normalize.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "support.hpp"

namespace {

using nlohmann::json;
namespace pp = problemgate::problem;

const std::string kCorpusDir = PROBLEMGATE_CORPUS_DIR;

std::vector<std::string> corpus_files() {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(kCorpusDir))
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

/// A response field of the case's upstream, "" when absent (names compared case-insensitively).
std::string upstream_header(const json& up, std::string_view name) {
  if (!up.contains("headers")) return {};
  for (const auto& [k, v] : up["headers"].items()) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(a) == std::tolower(b);
        }))
      return v.get<std::string>();
  }
  return {};
}

/// Upstream text that must never reach a 5xx client: JSON string values, or lines of other bodies.
std::vector<std::string> upstream_texts(const std::string& body) {
  std::vector<std::string> texts;
  json j = json::parse(body, nullptr, false);
  if (!j.is_discarded()) {
    std::vector<const json*> stack{&j};
    while (!stack.empty()) {
      const json* v = stack.back();
      stack.pop_back();
      if (v->is_string() && v->get<std::string>().size() >= 8)
        texts.push_back(v->get<std::string>());
      if (v->is_structured())
        for (const auto& c : *v) stack.push_back(&c);
    }
    return texts;
  }
  std::size_t start = 0;
  while (start < body.size()) {
    auto end = body.find('\n', start);
    if (end == std::string::npos) end = body.size();
    std::string line = body.substr(start, end - start);
    if (line.size() >= 8) texts.push_back(line);
    start = end + 1;
  }
  return texts;
}

std::string header_value(const std::optional<std::int64_t>& v) {
  return v ? std::to_string(*v) : "<none>";
}

}  // namespace

TEST_SUITE("problem.corpus") {
  TEST_CASE("tests/corpus/*.json: every case") {
    INFO("corpus: " << kCorpusDir);
    REQUIRE_MESSAGE(std::filesystem::is_directory(kCorpusDir),
                    "corpus not found at " << kCorpusDir);
    json corpus = json::array();
    for (const auto& file : corpus_files()) {
      const json part = json::parse(pgtest::read_file(file));
      REQUIRE_MESSAGE(part.is_array(), file);
      for (const auto& c : part) corpus.push_back(c);
    }
    REQUIRE(corpus.size() >= 150);
    pp::Options opts;
    pp::RouteOptions route;
    std::size_t n = 0;
    std::map<std::string, std::size_t> families;
    for (const auto& c : corpus) {
      const std::string name = c.at("name");
      CAPTURE(name);
      if (c.contains("family")) {
        ++families[c["family"].get<std::string>()];
        CHECK_FALSE(c.value("source", "").empty());
      }
      const auto& up = c.at("upstream");
      const auto& ex = c.at("expect");
      const std::string body = up.value("body", "");
      const std::string ct = up.contains("content_type") && up["content_type"].is_string()
                                 ? up["content_type"].get<std::string>()
                                 : std::string();
      const std::string path = c.at("request").value("path", "/");
      const int status = up.at("status");
      const std::string ce = up.value("content_encoding", "");
      const std::string amzn = upstream_header(up, "X-Amzn-ErrorType");
      const std::string retry_after = upstream_header(up, "Retry-After");

      pp::Input in;
      in.status = status;
      in.content_type = ct;
      in.content_encoding = ce;
      in.amzn_error_type = amzn;
      in.retry_after_header = retry_after;
      in.body = body;
      in.instance = path;
      in.request_id = pgtest::kRequestId;
      const pp::Output out = pp::normalize(in, opts, route);
      const json j = pgtest::check_valid(out, status);
      CAPTURE(out.body);

      CHECK(pp::dialect_name(out.dialect) == ex.at("dialect").get<std::string>());
      CHECK(j.value("code", "") == ex.at("code").get<std::string>());
      CHECK(j.value("instance", "") == path);
      CHECK(j.value("requestId", "") == std::string(pgtest::kRequestId));
      if (ex.at("subcode").is_null()) {
        CHECK_FALSE(j.contains("subcode"));
      } else {
        CHECK(j.value("subcode", "") == ex["subcode"].get<std::string>());
      }
      if (!ex.at("detail").is_null()) {
        CHECK(j.value("detail", "") == ex["detail"].get<std::string>());
      } else if (status >= 500) {
        const std::string detail = j.value("detail", "");
        for (const auto& t : upstream_texts(body)) {
          CAPTURE(t);
          CHECK(detail.find(t) == std::string::npos);
          CHECK(t.find(detail) == std::string::npos);
        }
        if (name == "text-stacktrace-500") {
          CHECK(out.body.find("secret_token") == std::string::npos);
          CHECK(out.body.find("Traceback") == std::string::npos);
        }
      }
      const json expected_errors = ex.value("errors", json::array());
      if (expected_errors.empty()) {
        CHECK_FALSE(j.contains("errors"));
      } else {
        CHECK(j.value("errors", json()) == expected_errors);
      }
      if (ex.contains("retryAfter")) {
        CHECK(j.value("retryAfter", -1) == ex["retryAfter"].get<int>());
      } else {
        CHECK_FALSE(j.contains("retryAfter"));
      }
      if (ex.contains("headers")) {
        const auto& h = ex["headers"];
        if (h.contains("X-RateLimit-Limit"))
          CHECK(header_value(out.rate_limit.limit) == h["X-RateLimit-Limit"]);
        if (h.contains("X-RateLimit-Remaining"))
          CHECK(header_value(out.rate_limit.remaining) == h["X-RateLimit-Remaining"]);
        if (h.contains("X-RateLimit-Reset"))
          CHECK(header_value(out.rate_limit.reset) == h["X-RateLimit-Reset"]);
        if (h.contains("Retry-After")) CHECK(header_value(out.retry_after) == h["Retry-After"]);
      }
      ++n;
    }
    MESSAGE(n << " corpus cases checked, " << families.size() << " API families");
    CHECK(families.size() >= 30);
  }
}
