#include "problemgate/problem/normalize.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

using nlohmann::json;
namespace pp = problemgate::problem;
using pp::Dialect;

struct Row {
  const char* name;
  int status;
  std::string_view content_type;
  std::string body;
  Dialect dialect;
  json expected;  ///< members that must match; a null value means "absent"
};

void check_row(const Row& row) {
  CAPTURE(row.body);
  auto r = pgtest::run(row.status, row.content_type, row.body);
  CAPTURE(r.out.body);
  CHECK(pp::dialect_name(r.out.dialect) == pp::dialect_name(row.dialect));
  for (auto it = row.expected.begin(); it != row.expected.end(); ++it) {
    CAPTURE(it.key());
    if (it->is_null()) {
      CHECK_FALSE(r.body.contains(it.key()));
    } else {
      CHECK(r.body.value(it.key(), json()) == *it);
    }
  }
}

void check_rows(const std::vector<Row>& rows) {
  for (const auto& row : rows) {
    SUBCASE(row.name) { check_row(row); }
  }
}

json err(const char* path, const char* code, const char* message) {
  return {{"path", path}, {"code", code}, {"message", message}};
}
json err(const char* path, const char* code) { return {{"path", path}, {"code", code}}; }

}  // namespace

TEST_SUITE("problem.normalize") {
  TEST_CASE(
      "problem dialect keeps type, title and extensions; corrects status; replaces requestId") {
    check_rows({
        {"spring ProblemDetail",
         404,
         "application/problem+json",
         R"({"type":"about:blank","title":"Not Found","status":404,"detail":"No static resource x.","instance":"/x"})",
         Dialect::problem,
         {{"type", "about:blank"},
          {"title", "Not Found"},
          {"detail", "No static resource x."},
          {"instance", "/v1/resource"},
          {"code", "resource_not_found"},
          {"subcode", nullptr}}},
        {"application type URI gives the subcode",
         403,
         "application/problem+json",
         R"({"type":"https://example.com/probs/out-of-credit","title":"You do not have enough credit.","status":403,"detail":"Your current balance is 30, but that costs 50.","balance":30,"accounts":["/account/12345","/account/67890"]})",
         Dialect::problem,
         {{"type", "https://example.com/probs/out-of-credit"},
          {"title", "You do not have enough credit."},
          {"subcode", "out_of_credit"},
          {"balance", 30},
          {"accounts", json::array({"/account/12345", "/account/67890"})}}},
        {"status member disagreeing with HTTP status is corrected",
         409,
         "application/json",
         R"({"type":"https://api.example.com/errors/version-mismatch","title":"Conflict","status":400,"requestId":"upstream-id"})",
         Dialect::problem,
         {{"status", 409},
          {"code", "resource_conflict"},
          {"subcode", "version_mismatch"},
          {"requestId", std::string(pgtest::kRequestId)},
          {"detail", nullptr}}},
        {"RFC type links never give a subcode",
         400,
         "application/problem+json",
         R"({"type":"https://datatracker.ietf.org/doc/html/rfc9110#section-15.5.1","title":"Bad Request","status":400})",
         Dialect::problem,
         {{"subcode", nullptr}, {"code", "validation_error"}}},
        {"content type alone makes a problem",
         400,
         "application/problem+json; charset=utf-8",
         R"({"detail":"bad things"})",
         Dialect::problem,
         {{"detail", "bad things"}, {"type", "about:blank"}}},
    });
  }

  TEST_CASE("the gateway's traceId replaces an upstream's, right after requestId") {
    pgtest::Call c;
    c.status = 400;
    c.content_type = "application/problem+json";
    const std::string body = pgtest::fixture("aspnet_validation.json");
    c.body = body;
    c.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    auto r = pgtest::run(c);
    CHECK(r.body["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(r.out.body.find("traceId") == r.out.body.rfind("traceId"));  // once
    const auto rid = r.out.body.find("\"requestId\":");
    const auto tid = r.out.body.find(",\"traceId\":");
    CHECK(rid < tid);
    CHECK(r.out.body.find(',', rid) == tid);  // nothing in between
  }

  TEST_CASE("ASP.NET ValidationProblemDetails: errors map flattened, traceId kept") {
    auto r =
        pgtest::run(400, "application/problem+json", pgtest::fixture("aspnet_validation.json"));
    CHECK(r.out.dialect == Dialect::problem);
    CHECK(r.body["title"] == "One or more validation errors occurred.");
    CHECK(r.body["traceId"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
    CHECK_FALSE(r.body.contains("subcode"));
    CHECK(r.body["errors"] ==
          json::array({err("Name", "invalid", "The Name field is required."),
                       err("Age", "invalid", "The field Age must be between 0 and 150."),
                       err("Age", "invalid", "Age is not a number.")}));
  }

  TEST_CASE("nested dialect: npayload, Stripe, Google, Elasticsearch") {
    check_rows({
        {"stripe card error with param",
         402,
         "application/json",
         R"({"error":{"code":"card_declined","decline_code":"insufficient_funds","doc_url":"https://stripe.com/docs/error-codes/card-declined","message":"Your card has insufficient funds.","param":"card_number","type":"card_error"}})",
         Dialect::nested,
         {{"code", "client_error"},
          {"subcode", "card_declined"},
          {"detail", "Your card has insufficient funds."},
          {"errors", json::array({err("card_number", "card_declined",
                                      "Your card has insufficient funds.")})}}},
        {"stripe resource_missing",
         404,
         "application/json",
         R"({"error":{"code":"resource_missing","message":"No such customer: 'cus_x'","param":"id","type":"invalid_request_error"}})",
         Dialect::nested,
         {{"subcode", "resource_missing"},
          {"detail", "No such customer: 'cus_x'"},
          {"errors", json::array({err("id", "resource_missing", "No such customer: 'cus_x'")})}}},
        {"elasticsearch",
         404,
         "application/json",
         R"({"error":{"root_cause":[{"type":"index_not_found_exception","reason":"no such index [logs]"}],"type":"index_not_found_exception","reason":"no such index [logs]","index":"logs"},"status":404})",
         Dialect::nested,
         {{"subcode", "index_not_found_exception"}, {"detail", "no such index [logs]"}}},
        {"google status only (numeric code ignored)",
         429,
         "application/json",
         R"({"error":{"code":429,"message":"Quota exceeded for quota metric 'Queries'.","status":"RESOURCE_EXHAUSTED"}})",
         Dialect::nested,
         {{"code", "rate_limited"},
          {"subcode", "resource_exhausted"},
          {"detail", "Quota exceeded for quota metric 'Queries'."}}},
        {"google status repeating the reason phrase gives no subcode",
         404,
         "application/json",
         R"({"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND"}})",
         Dialect::nested,
         {{"subcode", nullptr}, {"detail", "Requested entity was not found."}}},
        {"numeric-only code, no subcode",
         401,
         "application/json",
         R"({"error":{"code":20003,"message":"Authenticate"}})",
         Dialect::nested,
         {{"subcode", nullptr}, {"detail", "Authenticate"}}},
    });
  }

  TEST_CASE("Google ErrorInfo.reason and BadRequest.fieldViolations") {
    auto info = pgtest::run(403, "application/json", pgtest::fixture("google_errorinfo.json"));
    CHECK(info.out.dialect == Dialect::nested);
    CHECK(info.body["code"] == "permission_denied");
    CHECK(info.body["subcode"] == "service_disabled");
    auto bad = pgtest::run(400, "application/json", pgtest::fixture("google_badrequest.json"));
    CHECK(bad.body["subcode"] == "invalid_argument");
    CHECK(bad.body["errors"] ==
          json::array(
              {err("instance.machine_type", "invalid_argument", "Invalid value \"n9-standard\""),
               err("instance.zone", "invalid_argument", "Zone is required")}));
  }

  TEST_CASE("flat dialect: OAuth 2, Slack, Spring Boot default, seed 001") {
    check_rows({
        {"slack",
         404,
         "application/json",
         R"({"ok":false,"error":"channel_not_found"})",
         Dialect::flat,
         {{"subcode", "channel_not_found"}, {"detail", "channel_not_found"}}},
        {"oauth invalid_client",
         401,
         "application/json",
         R"({"error":"invalid_client","error_description":"Client authentication failed"})",
         Dialect::flat,
         {{"code", "authentication_required"},
          {"subcode", "invalid_client"},
          {"detail", "Client authentication failed"}}},
        {"spring boot default error",
         404,
         "application/json",
         R"({"timestamp":"2024-01-01T00:00:00.000+00:00","status":404,"error":"Not Found","path":"/api/x"})",
         Dialect::flat,
         {{"subcode", nullptr}, {"detail", "Not Found"}, {"instance", "/v1/resource"}}},
        {"spring boot with message",
         400,
         "application/json",
         R"({"timestamp":"2024-01-01T00:00:00.000+00:00","status":400,"error":"Bad Request","message":"Required parameter 'q' is not present.","path":"/api/x"})",
         Dialect::flat,
         {{"subcode", nullptr}, {"detail", "Required parameter 'q' is not present."}}},
        {"long error sentence is not a subcode",
         400,
         "application/json",
         R"({"error":"The request could not be understood by the server due to malformed syntax"})",
         Dialect::flat,
         {{"subcode", nullptr},
          {"detail", "The request could not be understood by the server due to malformed syntax"}}},
        {"413 old name repeats the reason phrase",
         413,
         "application/json",
         R"({"error":"Request Entity Too Large","details":"max 1 MB"})",
         Dialect::flat,
         {{"subcode", nullptr}, {"code", "payload_too_large"}}},
        {"422 old name repeats the reason phrase",
         422,
         "application/json",
         R"({"error":"Unprocessable Entity","details":"bad"})",
         Dialect::flat,
         {{"subcode", nullptr}}},
        {"flat with field errors list",
         400,
         "application/json",
         R"({"error":"Validation failed","details":[{"field":"name","message":"must not be blank"}]})",
         Dialect::flat,
         {{"subcode", "validation_failed"},
          {"errors", json::array({err("name", "validation_failed", "must not be blank")})}}},
    });
  }

  TEST_CASE("flat rate-limit members and retryAfter") {
    auto r = pgtest::run(
        429, "application/json",
        R"({"error":"Rate limit exceeded","retry_after":"30","limit":100,"remaining":0,"reset":1706900060})");
    CHECK(r.body["retryAfter"] == 30);
    CHECK(r.out.retry_after == 30);
    CHECK(r.out.rate_limit.limit == 100);
    CHECK(r.out.rate_limit.remaining == 0);
    CHECK(r.out.rate_limit.reset == 1706900060);
    SUBCASE("Retry-After header used when the body has none") {
      pgtest::Call c;
      c.status = 503;
      c.body = R"({"error":"maintenance"})";
      c.retry_after_header = " 120 ";
      auto h = pgtest::run(c);
      CHECK(h.body["retryAfter"] == 120);
    }
    SUBCASE("HTTP-date Retry-After is not converted here") {
      pgtest::Call c;
      c.status = 429;
      c.body = "";
      c.retry_after_header = "Wed, 21 Oct 2015 07:28:00 GMT";
      auto h = pgtest::run(c);
      CHECK_FALSE(h.body.contains("retryAfter"));
    }
    SUBCASE("no retryAfter outside 429/503") {
      auto h = pgtest::run(400, "application/json", R"({"error":"slow down","retry_after":5})");
      CHECK_FALSE(h.body.contains("retryAfter"));
    }
  }

  TEST_CASE("detail dialect: DRF and FastAPI") {
    check_rows({
        {"fastapi list detail",
         422,
         "application/json",
         R"({"detail":[{"loc":["body","email"],"msg":"field required","type":"value_error.missing"},{"loc":["query","page",0],"msg":"value is not a valid integer","type":"type_error.integer"}]})",
         Dialect::detail,
         {{"detail", "field required"},
          {"errors", json::array({err("body.email", "value_error_missing", "field required"),
                                  err("query.page.0", "type_error_integer",
                                      "value is not a valid integer")})}}},
        {"fastapi dict detail",
         403,
         "application/json",
         R"({"detail":{"code":"PLAN_LIMIT_REACHED","message":"Upgrade your plan"}})",
         Dialect::detail,
         {{"subcode", "plan_limit_reached"}, {"detail", "Upgrade your plan"}}},
        {"null detail falls to json",
         400,
         "application/json",
         R"({"detail":null,"message":"nope"})",
         Dialect::json,
         {{"detail", "nope"}}},
    });
  }

  TEST_CASE("fieldmap dialect: nested maps and list indices") {
    check_rows({
        {"nested DRF serializer",
         400,
         "application/json",
         R"({"user":{"email":["Enter a valid email address."]},"lines":[{},{"qty":["Ensure this value is greater than 0."]}],"non_field_errors":["Bad."]})",
         Dialect::fieldmap,
         {{"errors",
           json::array({err("user.email", "invalid", "Enter a valid email address."),
                        err("lines.1.qty", "invalid", "Ensure this value is greater than 0."),
                        err("", "invalid", "Bad.")})},
          {"detail", nullptr}}},
        {"map with a number is not a fieldmap",
         400,
         "application/json",
         R"({"email":["x"],"n":1})",
         Dialect::json,
         {{"errors", nullptr}}},
        {"empty object is json",
         400,
         "application/json",
         "{}",
         Dialect::json,
         {{"detail", nullptr}}},
    });
  }

  TEST_CASE("json dialect: GitHub, AWS, Kubernetes, JSON:API, GraphQL, Laravel") {
    check_rows({
        {"github not found",
         404,
         "application/json",
         R"({"message":"Not Found","documentation_url":"https://docs.github.com/rest"})",
         Dialect::json,
         {{"detail", "Not Found"}, {"subcode", nullptr}}},
        {"github validation",
         422,
         "application/json",
         R"({"message":"Validation Failed","errors":[{"resource":"Issue","field":"title","code":"missing_field"}],"documentation_url":"https://docs.github.com/rest"})",
         Dialect::json,
         // The entry's code is a field's, not the body's: no subcode (contract §3.2).
         {{"detail", "Validation Failed"},
          {"subcode", nullptr},
          {"errors", json::array({err("title", "missing_field")})}}},
        {"aws json __type",
         400,
         "application/x-amz-json-1.1",
         R"({"__type":"com.amazon.coral.validate#ValidationException","message":"1 validation error detected"})",
         Dialect::json,
         {{"subcode", "validation_exception"}, {"detail", "1 validation error detected"}}},
        {"aws json Message capitalized",
         404,
         "application/x-amz-json-1.0",
         R"({"__type":"ResourceNotFoundException","Message":"Requested resource not found"})",
         Dialect::json,
         {{"subcode", "resource_not_found_exception"}, {"detail", "Requested resource not found"}}},
        {"json:api",
         422,
         "application/vnd.api+json",
         R"({"errors":[{"status":"422","code":"blank","source":{"pointer":"/data/attributes/firstName"},"title":"Invalid Attribute","detail":"First name must contain at least two characters."},{"source":{"parameter":"include"},"detail":"Unknown include"}]})",
         Dialect::json,
         {{"detail", "First name must contain at least two characters."},
          {"subcode", nullptr},
          {"errors", json::array({err("/data/attributes/firstName", "blank",
                                      "First name must contain at least two characters."),
                                  err("include", "invalid", "Unknown include")})}}},
        {"graphql",
         400,
         "application/json",
         R"({"errors":[{"message":"Variable \"$id\" got invalid value","locations":[{"line":1,"column":8}],"path":["user","friends",1,"name"],"extensions":{"code":"BAD_USER_INPUT"}}],"data":null})",
         Dialect::json,
         {{"detail", "Variable \"$id\" got invalid value"},
          {"subcode", "bad_user_input"},
          {"errors", json::array({err("user.friends.1.name", "bad_user_input",
                                      "Variable \"$id\" got invalid value")})}}},
        {"laravel",
         422,
         "application/json",
         R"j({"message":"The email field is required. (and 1 more error)","errors":{"email":["The email field is required."],"password":["The password must be at least 8 characters."]}})j",
         Dialect::json,
         {{"detail", "The email field is required. (and 1 more error)"},
          {"errors", json::array({err("email", "invalid", "The email field is required."),
                                  err("password", "invalid",
                                      "The password must be at least 8 characters.")})}}},
    });
  }

  TEST_CASE("Kubernetes Status: reason and causes") {
    auto r = pgtest::run(422, "application/json", pgtest::fixture("k8s_status.json"));
    CHECK(r.out.dialect == Dialect::json);
    CHECK(r.body["subcode"] == "invalid");
    CHECK(r.body["errors"] ==
          json::array({err("spec.replicas", "field_value_invalid",
                           "Invalid value: -1: must be greater than or equal to 0")}));
  }

  TEST_CASE("X-Amzn-ErrorType header gives the code when the body has none") {
    pgtest::Call c;
    c.status = 400;
    c.body = R"({"message":"1 validation error detected"})";
    c.amzn_error_type =
        "ValidationException:http://internal.amazon.com/coral/com.amazon.coral.validate/";
    auto r = pgtest::run(c);
    CHECK(r.body["subcode"] == "validation_exception");
    c.amzn_error_type = "aws.protocoltests.json#FooError:http://internal.amazon.com/";
    CHECK(pgtest::run(c).body["subcode"] == "foo_error");
  }

  TEST_CASE("xml dialect: S3, AWS query, OData, SOAP, problem+xml") {
    check_rows({
        {"s3",
         404,
         "application/xml",
         pgtest::fixture("s3_nosuchkey.xml"),
         Dialect::xml,
         {{"subcode", "no_such_key"}, {"detail", "The specified key does not exist."}}},
        {"aws query ErrorResponse",
         400,
         "text/xml",
         R"(<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>InvalidParameter</Code><Message>Invalid parameter: TopicArn</Message></Error><RequestId>abc</RequestId></ErrorResponse>)",
         Dialect::xml,
         {{"subcode", "invalid_parameter"}, {"detail", "Invalid parameter: TopicArn"}}},
        {"twilio xml numeric code",
         404,
         "application/xml",
         R"(<TwilioResponse><RestException><Code>20404</Code><Message>The requested resource was not found</Message></RestException></TwilioResponse>)",
         Dialect::xml,
         {{"subcode", nullptr}, {"detail", "The requested resource was not found"}}},
        {"odata",
         400,
         "application/xml",
         R"(<?xml version="1.0" encoding="utf-8"?><m:error xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"><m:code>ResourceNotFound</m:code><m:message xml:lang="en-US">The specified resource does not exist.</m:message></m:error>)",
         Dialect::xml,
         {{"subcode", "resource_not_found"}, {"detail", "The specified resource does not exist."}}},
        {"soap 1.1",
         400,
         "text/xml",
         R"(<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>Missing customer id</faultstring></soap:Fault></soap:Body></soap:Envelope>)",
         Dialect::xml,
         {{"subcode", "client"}, {"detail", "Missing customer id"}}},
        {"soap 1.2",
         400,
         "application/soap+xml",
         R"(<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault><env:Code><env:Value>env:Sender</env:Value></env:Code><env:Reason><env:Text xml:lang="en">Bad order</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>)",
         Dialect::xml,
         {{"subcode", "sender"}, {"detail", "Bad order"}}},
        {"problem+xml",
         403,
         "application/problem+xml",
         R"(<?xml version="1.0" encoding="UTF-8"?><problem xmlns="urn:ietf:rfc:7807"><type>https://example.com/probs/out-of-credit</type><title>You do not have enough credit.</title><detail>Your current balance is 30, but that costs 50.</detail><balance>30</balance></problem>)",
         Dialect::xml,
         {{"type", "https://example.com/probs/out-of-credit"},
          {"title", "You do not have enough credit."},
          {"subcode", "out_of_credit"},
          {"detail", "Your current balance is 30, but that costs 50."}}},
        {"unknown xml falls to text without detail",
         400,
         "application/xml",
         "<foo><bar>1</bar></foo>",
         Dialect::text,
         {{"detail", nullptr}}},
    });
  }

  TEST_CASE("html dialect: nginx, Apache, Tomcat; never for 5xx") {
    check_rows({
        {"nginx 404 says nothing more",
         404,
         "text/html",
         pgtest::fixture("nginx_404.html"),
         Dialect::html,
         {{"detail", nullptr}}},
        {"nginx 413 old reason phrase",
         413,
         "text/html",
         pgtest::fixture("nginx_413.html"),
         Dialect::html,
         {{"detail", nullptr}, {"code", "payload_too_large"}}},
        {"apache 404 paragraph",
         404,
         "text/html; charset=iso-8859-1",
         pgtest::fixture("apache_404.html"),
         Dialect::html,
         {{"detail", "The requested URL was not found on this server."}}},
        {"tomcat 400",
         400,
         "text/html;charset=utf-8",
         pgtest::fixture("tomcat_400.html"),
         Dialect::html,
         {{"detail", "Message Invalid character found in the request target"}}},
        {"apache 500 never leaks",
         500,
         "text/html",
         pgtest::fixture("apache_500.html"),
         Dialect::html,
         {{"detail", "The upstream service failed to handle the request."}}},
        {"html without content type",
         403,
         "",
         "<!DOCTYPE html><html><body><h1>Access denied: IP 10.0.0.1 is blocked</h1></body></html>",
         Dialect::html,
         {{"detail", "Access denied: IP 10.0.0.1 is blocked"}}},
    });
  }

  TEST_CASE("html/text never leak on 5xx even with expose_5xx_detail") {
    pp::Options opts;
    opts.expose_5xx_detail = true;
    pgtest::Call c;
    c.status = 500;
    c.content_type = "text/plain";
    c.body = "panic: runtime error: secret=abc";
    auto r = pgtest::run(c, opts);
    CHECK(r.out.body.find("secret") == std::string::npos);
    CHECK(r.out.hidden_detail == "panic: runtime error: secret=abc");
    c.content_type = "application/json";
    c.body = R"({"error":{"code":"DB_DOWN","message":"replica lag 30s"}})";
    auto j = pgtest::run(c, opts);
    CHECK(j.body["detail"] == "replica lag 30s");
    CHECK_FALSE(j.out.hidden_detail);
  }

  TEST_CASE("5xx JSON detail hidden by default, kept for the log") {
    auto r =
        pgtest::run(502, "application/json", R"({"message":"connect to 10.1.2.3:5432 refused"})");
    CHECK(r.body["detail"] == "The upstream service is unavailable.");
    CHECK(r.out.hidden_detail == "connect to 10.1.2.3:5432 refused");
    CHECK(r.out.body.find("10.1.2.3") == std::string::npos);
    auto e =
        pgtest::run(500, "application/json", R"({"fields":{"x":["secret value"]},"detail":"d"})");
    CHECK(e.out.body.find("secret value") == std::string::npos);
  }

  TEST_CASE("text and empty dialects") {
    check_rows({
        {"first non-empty line",
         409,
         "text/plain",
         "\n\n  Conflict: order 7 already shipped  \nsecond line\n",
         Dialect::text,
         {{"detail", "Conflict: order 7 already shipped"}}},
        {"long line cut at 200 characters",
         400,
         "text/plain",
         std::string(500, 'x'),
         Dialect::text,
         {{"detail", std::string(200, 'x')}}},
        {"json array is not an object",
         400,
         "application/json",
         R"([{"message":"x"}])",
         Dialect::text,
         {{"detail", nullptr}}},
        {"bracketed plain text keeps its detail",
         429,
         "text/plain",
         "[WARN] slow down, 10 req/s max",
         Dialect::text,
         {{"detail", "[WARN] slow down, 10 req/s max"}}},
        {"json scalar",
         400,
         "application/json",
         R"("just a string")",
         Dialect::text,
         {{"detail", "\"just a string\""}}},
        {"whitespace only", 404, "text/plain", " \r\n\t ", Dialect::empty, {{"detail", nullptr}}},
        {"empty 5xx gets the generic sentence",
         503,
         "",
         "",
         Dialect::empty,
         {{"detail", "The upstream service is unavailable."}}},
    });
  }

  TEST_CASE("type_base gives type and catalog title") {
    pp::Options opts;
    opts.type_base = "https://errors.example.com/";
    pgtest::Call c;
    c.status = 404;
    c.body = R"({"detail":"Not found."})";
    auto r = pgtest::run(c, opts);
    CHECK(r.body["type"] == "https://errors.example.com/resource_not_found");
    CHECK(r.body["title"] == "Resource not found");
  }

  TEST_CASE(
      "catalog overrides reach code, type and title; catalog_code agrees with catalog_entry") {
    pp::Options opts;
    opts.type_base = "https://errors.example.com/";
    opts.catalog[404] = {"no_such_thing", "No such thing"};
    for (int s : {400, 401, 403, 404, 409, 418, 429, 500, 502, 503, 599})
      CHECK(pp::catalog_code(s, opts) == pp::catalog_entry(s, opts).code);
    CHECK(pp::catalog_code(404, opts) == "no_such_thing");
    CHECK(pp::catalog_code(404, {}) == "resource_not_found");
    pgtest::Call c;
    c.status = 404;
    c.body = R"({"detail":"Not found."})";
    auto r = pgtest::run(c, opts);
    CHECK(r.body["code"] == "no_such_thing");
    CHECK(r.body["type"] == "https://errors.example.com/no_such_thing");
    CHECK(r.body["title"] == "No such thing");
  }

  TEST_CASE("field errors without their own code take the body's code, or invalid") {
    pgtest::Call c;
    c.status = 422;
    c.body =
        R"({"error":{"code":"BAD_INPUT","message":"m","details":{"email":["is bad"],"age":["low"]}}})";
    auto r = pgtest::run(c);
    REQUIRE(r.body["errors"].size() == 2);
    CHECK(r.body["errors"][0]["code"] == "bad_input");
    CHECK(r.body["errors"][1]["code"] == "bad_input");
    c.body = R"({"email":["is bad"]})";
    auto f = pgtest::run(c);
    REQUIRE(f.body["errors"].size() == 1);
    CHECK(f.body["errors"][0]["code"] == "invalid");
  }

  TEST_CASE("pinned dialect: used when it fits, else later dialects") {
    pp::RouteOptions route;
    route.dialect = Dialect::text;
    pgtest::Call c;
    c.status = 400;
    c.body = R"({"error":"x"})";
    auto r = pgtest::run(c, {}, route);
    CHECK(r.out.dialect == Dialect::text);
    route.dialect = Dialect::fieldmap;
    c.body = R"({"detail":"d","email":["bad"]})";
    auto f = pgtest::run(c, {}, route);
    CHECK(f.out.dialect == Dialect::json);  // fieldmap does not fit: next is json
    route.dialect = Dialect::empty;         // status-derived members only
    c.body = R"({"detail":"d"})";
    auto e = pgtest::run(c, {}, route);
    CHECK(e.out.dialect == Dialect::empty);
    CHECK_FALSE(e.body.contains("detail"));
    route.dialect = Dialect::detail;
    c.body = R"({"detail":"d","error":"e"})";
    CHECK(pgtest::run(c, {}, route).out.dialect == Dialect::detail);
  }

  TEST_CASE("content negotiation and pass-through") {
    pgtest::Call c;
    c.status = 400;
    c.body = "{}";
    c.accept = "application/json";
    CHECK(pgtest::run(c).out.content_type == "application/json");
    c.accept = "*/*";
    CHECK(pgtest::run(c).out.content_type == "application/problem+json");
    c.content_encoding = "br";
    auto br = pgtest::run(c);
    CHECK_FALSE(br.out.rewritten);
    pp::Options small;
    small.max_error_body = 4;
    c.content_encoding = "";
    c.body = R"({"error":"too big"})";
    // Spec §1: over the cap, the problem is built from the status alone.
    const auto over = pgtest::run(c, small);
    CHECK(over.out.rewritten);
    CHECK(over.out.dialect == Dialect::oversize);
    CHECK(over.out.subcode.empty());
    CHECK(over.out.body.find("too big") == std::string::npos);
  }

  TEST_CASE("oversize_problem: status-derived members, retryAfter from the header, rules apply") {
    pp::Input in;
    in.status = 503;
    in.instance = "/x";
    in.request_id = "req_1";
    in.retry_after_header = "9";
    auto out = pp::oversize_problem(in, pp::Options{}, pp::RouteOptions{});
    CHECK(out.rewritten);
    CHECK(out.dialect == Dialect::oversize);
    CHECK(out.code == "upstream_unavailable");
    CHECK(out.retry_after == 9);
    CHECK(out.body.find(R"("detail":"The upstream service is unavailable.")") != std::string::npos);
    CHECK(pp::dialect_name(Dialect::oversize) == "oversize");
    CHECK_FALSE(pp::parse_dialect("oversize"));  // a route cannot pin it
  }

  TEST_CASE("Output mirrors the body's code and subcode") {
    auto r = pgtest::run(404, "application/json",
                         R"({"error":{"code":"SKILL_NOT_FOUND","message":"m"}})");
    CHECK(r.out.code == "resource_not_found");
    CHECK(r.out.subcode == "skill_not_found");
    CHECK(r.out.dialect == Dialect::nested);
    auto s = pgtest::run(404, "application/json", R"({"error":"Not Found"})");
    CHECK(s.out.subcode.empty());
  }

  TEST_CASE("Google RetryInfo.retryDelay: whole seconds, rounded up; malformed delays ignored") {
    auto retry = [](std::string_view delay, int status = 429) {
      const std::string body =
          R"({"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[)"
          R"({"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":")" +
          std::string(delay) + R"("}]}})";
      pgtest::Call c;
      c.status = status;
      c.body = body;
      c.retry_after_header = "99";
      return pgtest::run(c).out.retry_after;
    };
    CHECK(retry("30s") == 30);
    CHECK(retry("1.5s") == 2);
    CHECK(retry("1.000s") == 1);
    CHECK(retry("0.001s") == 1);
    CHECK(retry("0s") == 0);
    // Not a Duration: the Retry-After field decides.
    for (std::string_view bad :
         {"30", "s", ".5s", "1.s", "-1s", "1e3s", "1,5s", "99999999999999999999s"})
      CHECK_MESSAGE(retry(bad) == 99, bad);
    CHECK_FALSE(retry("30s", 400).has_value());  // retryAfter only on 429 and 503
  }

  TEST_CASE("an entry's code is never the body's subcode; GraphQL's first extensions.code is") {
    auto r = pgtest::run(
        422, "application/json",
        R"({"message":"Validation Failed","errors":[{"resource":"Issue","field":"title","code":"missing_field"}]})");
    CHECK(r.out.subcode.empty());
    CHECK(r.body["errors"][0]["code"] == "missing_field");
    r = pgtest::run(400, "application/json",
                    R"({"errors":[{"message":"m","extensions":{"code":"BAD_USER_INPUT"}}]})");
    CHECK(r.out.subcode == "bad_user_input");
    CHECK_FALSE(r.body.contains("errors"));
  }

  TEST_CASE("report fields: the upstream code as written, and whether a table or rule mapped it") {
    auto r = pgtest::run(404, "application/json",
                         R"({"error":{"code":"CHANNEL_NOT_FOUND","message":"m"}})");
    CHECK(r.out.upstream_code == "CHANNEL_NOT_FOUND");
    CHECK_FALSE(r.out.code_mapped);
    r = pgtest::run(404, "application/json",
                    R"({"error":{"code":"SKILL_NOT_FOUND","message":"m"}})");
    CHECK(r.out.code_mapped);  // the default legacy table
  }

  TEST_CASE("Normalizer object is reusable across bodies of different sizes") {
    pp::Normalizer n;
    pp::Options opts;
    pp::RouteOptions route;
    std::string big = R"({"detail":")" + std::string(20000, 'a') + R"("})";
    for (std::string_view body : {std::string_view(R"({"detail":"a"})"), std::string_view(big),
                                  std::string_view(R"({"error":"b"})")}) {
      pp::Input in;
      in.status = 400;
      in.body = body;
      in.instance = "/";
      in.request_id = "r";
      auto out = n.normalize(in, opts, route);
      pgtest::check_valid(out, 400);
    }
  }
}
