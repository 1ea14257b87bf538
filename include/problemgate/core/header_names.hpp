#pragma once
#include <string_view>

/// Header names and media types used across modules. Never spell them inline.
namespace problemgate::core::hdr {
inline constexpr std::string_view kRequestId = "X-Request-Id";
inline constexpr std::string_view kForwardedFor = "X-Forwarded-For";
inline constexpr std::string_view kForwardedProto = "X-Forwarded-Proto";
inline constexpr std::string_view kForwardedHost = "X-Forwarded-Host";
inline constexpr std::string_view kProxyStatus = "Proxy-Status";
inline constexpr std::string_view kRateLimitLimit = "X-RateLimit-Limit";
inline constexpr std::string_view kRateLimitRemaining = "X-RateLimit-Remaining";
inline constexpr std::string_view kRateLimitReset = "X-RateLimit-Reset";
inline constexpr std::string_view kRateLimitPolicy = "RateLimit-Policy";
inline constexpr std::string_view kRateLimit = "RateLimit";
inline constexpr std::string_view kRetryAfter = "Retry-After";
inline constexpr std::string_view kAmznErrorType = "X-Amzn-ErrorType";

inline constexpr std::string_view kProblemJson = "application/problem+json";
inline constexpr std::string_view kJson = "application/json";
inline constexpr std::string_view kProxyName = "problemgate";
}  // namespace problemgate::core::hdr
