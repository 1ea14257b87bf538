#include "problem/code_case.hpp"

#include <doctest/doctest.h>

#include "problemgate/problem/normalize.hpp"

using problemgate::problem::to_snake_case;
namespace in = problemgate::problem::internal;

TEST_SUITE("problem.code_case") {
  TEST_CASE("to_snake_case") {
    struct Row {
      std::string_view in, out;
    };
    for (const auto& r :
         {Row{"CHANNEL_NOT_FOUND", "channel_not_found"}, Row{"invalidGrant", "invalid_grant"},
          Row{"auth-missing", "auth_missing"},
          Row{"ResourceNotFoundException", "resource_not_found_exception"},
          Row{"HTTPServerError", "http_server_error"},
          Row{"value_error.missing", "value_error_missing"},
          Row{"__leading__and__doubled__", "leading_and_doubled"},
          Row{"Agent not found", "agent_not_found"}, Row{"oauth2Token", "oauth2_token"},
          Row{"caf\xC3\xA9 bar", "caf_bar"}, Row{"---", ""}, Row{"", ""},
          Row{"already_snake", "already_snake"}, Row{"NotFound", "not_found"}}) {
      CAPTURE(r.in);
      CHECK(to_snake_case(r.in) == r.out);
    }
  }

  TEST_CASE("subcode_for: codes, titles, sentences, numbers") {
    CHECK(in::subcode_for("Agent already exists") == "agent_already_exists");
    CHECK(in::subcode_for("one two three four five six") == "one_two_three_four_five_six");
    CHECK(in::subcode_for("one two three four five six seven").empty());
    CHECK(in::subcode_for("Too many requests. Retry after 60 seconds").empty());
    CHECK(in::subcode_for("20003").empty());
    CHECK(in::subcode_for(" 429 ").empty());
    CHECK(in::subcode_for(std::string(100, 'a')).empty());
    CHECK(in::subcode_for("  RATE_LIMITED ") == "rate_limited");
  }

  TEST_CASE("repeats_reason_phrase: old and new names") {
    CHECK(in::repeats_reason_phrase("not_found", 404));
    CHECK(in::repeats_reason_phrase("unauthorized", 401));
    CHECK(in::repeats_reason_phrase("request_entity_too_large", 413));
    CHECK(in::repeats_reason_phrase("payload_too_large", 413));
    CHECK(in::repeats_reason_phrase("content_too_large", 413));
    CHECK(in::repeats_reason_phrase("unprocessable_entity", 422));
    CHECK(in::repeats_reason_phrase("unprocessable_content", 422));
    CHECK_FALSE(in::repeats_reason_phrase("agent_not_found", 404));
    CHECK_FALSE(in::repeats_reason_phrase("not_found", 400));
  }

  TEST_CASE("aws_error_name and type_uri_code") {
    CHECK(in::aws_error_name("aws.protocoltests.json#FooError") == "FooError");
    CHECK(in::aws_error_name("FooError:http://internal.amazon.com/coral/") == "FooError");
    CHECK(in::aws_error_name("a.b#Bar:http://x") == "Bar");
    CHECK(in::type_uri_code("https://example.com/probs/out-of-credit") == "out-of-credit");
    CHECK(in::type_uri_code("https://example.com/probs/out-of-credit/") == "out-of-credit");
    CHECK(in::type_uri_code("https://example.com/docs/ERRORS.md#dependency_cycle") ==
          "dependency_cycle");
    CHECK(in::type_uri_code("https://example.com/errors/quota.html?x=1") == "quota");
    CHECK(in::type_uri_code("about:blank").empty());
    CHECK(in::type_uri_code("https://tools.ietf.org/html/rfc7231#section-6.5.1").empty());
    CHECK(in::type_uri_code("https://www.rfc-editor.org/rfc/rfc9110.html#name-404-not-found")
              .empty());
    CHECK(in::type_uri_code("https://www.iana.org/assignments/http-problem-types#date").empty());
  }
}
