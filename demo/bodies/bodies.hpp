#pragma once
#include <string_view>

/// The demo API's canned bodies: the project's own copies of the cases in the shared corpus
/// (seed-dialects.json and the four seed documents), byte for byte, so the binary never reads
/// anything at run time. Names follow the corpus case names.
namespace problemgate::demo::bodies {

inline constexpr std::string_view kOk = R"js({"ok":true})js";

// Flat dialect: {"error": <title>, "details": <message>} (seed 001).
inline constexpr std::string_view kFlatValidation =
    R"js({"error": "Validation error", "details": "Name is required"})js";
inline constexpr std::string_view kFlatMissingToken =
    R"js({"error": "Unauthorized", "details": "Missing Authorization header"})js";
inline constexpr std::string_view kFlatTokenExpired =
    R"js({"error": "Unauthorized", "details": "Token expired"})js";
inline constexpr std::string_view kFlatAgentNotFound =
    R"js({"error": "Agent not found", "details": "No agent exists with DID: did:web:example.com"})js";
inline constexpr std::string_view kFlatAgentExists =
    R"js({"error": "Agent already exists", "details": "An agent with this public key is already registered"})js";
inline constexpr std::string_view kFlatRateLimit =
    R"js({"error": "Rate limit exceeded", "details": "Too many requests. Retry after 60 seconds", "retry_after": 60, "limit": 100, "remaining": 0, "reset": 1706900060})js";
inline constexpr std::string_view kFlatInternal =
    R"js({"error": "Internal server error", "details": "An unexpected error occurred"})js";

// Nested dialect: {"error": {"code", "message", "details"}} (seed 002).
inline constexpr std::string_view kNestedAuthRequired =
    R"js({"error": {"code": "AUTH_REQUIRED", "message": "No authentication credentials provided", "details": {}}})js";
inline constexpr std::string_view kNestedChannelNotFound =
    R"js({"error": {"code": "CHANNEL_NOT_FOUND", "message": "Channel does not exist or has been archived", "details": {}}})js";
inline constexpr std::string_view kNestedQuota =
    R"js({"error": {"code": "QUOTA_EXCEEDED", "message": "Organisation or app quota reached (channels, subscriptions, or messages)", "details": {}}})js";
inline constexpr std::string_view kNestedRateLimited =
    R"js({"error": {"code": "RATE_LIMITED", "message": "Request rate limit exceeded; check Retry-After header", "details": {}}})js";
inline constexpr std::string_view kNestedCircuitOpen =
    R"js({"error": {"code": "CIRCUIT_OPEN", "message": "Circuit breaker is open; endpoint is temporarily unavailable", "details": {}}})js";

// Detail dialect (DRF / Cloudsmith, seed 003).
inline constexpr std::string_view kDetailUnauthenticated =
    R"js({"detail": "Authentication credentials were not provided."})js";
inline constexpr std::string_view kDetailFields =
    R"js({"fields": {"filename": ["This field may not be null."]}, "code": "invalid", "detail": "Invalid input."})js";
inline constexpr std::string_view kDetailNotFound = R"js({"detail": "Not found."})js";

// Already problem+json (seed 004), one current and one legacy SCREAMING_SNAKE code.
inline constexpr std::string_view kProblemValidation =
    R"js({"type": "https://github.com/ChronoAIProject/Ornn/blob/main/docs/ERRORS.md#validation_error", "title": "Validation failed", "status": 400, "detail": "Request body failed validation", "instance": "/v1/skills/abc/permissions", "requestId": "req_01HXYZABCDEFGHJKMNPQRSTVWX", "errors": [{"path": "sharedWithUsers[3]", "code": "invalid_user_id", "message": "User id is not known"}]})js";
inline constexpr std::string_view kProblemLegacy =
    R"js({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "Skill abc does not exist", "code": "SKILL_NOT_FOUND"})js";

// DRF default field map.
inline constexpr std::string_view kFieldmap =
    R"js({"email": ["This field is required."], "non_field_errors": ["Passwords do not match."]})js";

// Non-JSON bodies.
inline constexpr std::string_view kHtmlNginx502 =
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n";
inline constexpr std::string_view kHtmlApache404 =
    "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n"
    "<html><head>\n<title>404 Not Found</title>\n</head><body>\n<h1>Not Found</h1>\n"
    "<p>The requested URL /reports/2024/q3.pdf was not found on this server.</p>\n"
    "<hr>\n<address>Apache/2.4.57 (Debian) Server at legacy.example.com Port 80</address>\n"
    "</body></html>\n";
inline constexpr std::string_view kTextStacktrace =
    "Traceback (most recent call last):\n  File \"app.py\", line 3, in handler\n"
    "KeyError: 'secret_token'\n";
inline constexpr std::string_view kText404 = "Not Found: no such order 42\n";

/// Compressed at startup into the `/gzip/404` body.
inline constexpr std::string_view kGzipPlain =
    R"js({"error": "Order not found", "details": "No order exists with ID: ord_42"})js";

inline constexpr std::string_view kIndex =
    R"js({"service":"problemgate-demo-api","endpoints":[)js"
    R"js("/","/ok","/__stats","/headers","/echo","/big?size=N&chunked=1","/chunked",)js"
    R"js("/error-big?size=N&chunked=1","/slow?ms=N","/status/NNN","/204","/304",)js"
    R"js("/flat/validation","/flat/unauthorized","/flat/not-found","/flat/conflict",)js"
    R"js("/flat/rate-limit","/flat/internal","/nested/auth-required",)js"
    R"js("/nested/channel-not-found","/nested/quota","/nested/rate-limited",)js"
    R"js("/nested/circuit-open","/detail/unauthenticated","/detail/fields","/detail/not-found",)js"
    R"js("/problem/validation","/problem/legacy","/fieldmap","/html/502","/html/404",)js"
    R"js("/text/stacktrace","/text/404","/empty/403","/gzip/404","/auth"]})js";

}  // namespace problemgate::demo::bodies
