#pragma once
#include <string>
#include <string_view>

// Spec §3.2 code handling shared by every dialect.
namespace problemgate::problem::internal {

/// Codes longer than this (after conversion) are treated as text, not codes.
inline constexpr std::size_t kMaxCodeLength = 64;
/// A human `error` title becomes a subcode only up to this many words.
inline constexpr std::size_t kMaxTitleWords = 6;

/// True for codes that are only digits (Twilio `20003`, Google's numeric `error.code`).
bool is_numeric_code(std::string_view raw) noexcept;

/// `-2147024891, System.UnauthorizedAccessException` (SharePoint's OData codes: an HRESULT, a
/// comma, then the exception name) -> the name; any other code unchanged.
std::string_view without_number_prefix(std::string_view raw) noexcept;

/// The subcode an upstream code gives (after without_number_prefix): lowercase_snake_case, or "" for numeric codes, sentences
/// (more than kMaxTitleWords words, or anything but letters and spaces once it has a space) and
/// over-long tokens.
std::string subcode_for(std::string_view raw);

/// True when `snake` only restates `status`'s reason phrase, old names included
/// ("Request Entity Too Large" for 413, "Unauthorised" for 401, Kubernetes' `NotFound`).
bool repeats_reason_phrase(std::string_view snake, int status);

/// AWS error names: the part after `#` and before `:` (`aws.protocoltests.json#FooError`).
std::string_view aws_error_name(std::string_view raw) noexcept;

/// The application-specific last segment of a problem `type` URI (fragment, else last path
/// segment), or "" for about:blank and links to the HTTP specifications and registries (ASP.NET and
/// Spring point at RFC sections).
std::string_view type_uri_code(std::string_view type) noexcept;

/// ASCII whitespace trimmed from both ends.
std::string_view trim(std::string_view s) noexcept;

/// ASCII case-insensitive equality.
bool iequals(std::string_view a, std::string_view b) noexcept;

/// ASCII case-insensitive prefix test.
bool istarts_with(std::string_view s, std::string_view prefix) noexcept;

/// ASCII case-insensitive substring test.
bool icontains(std::string_view s, std::string_view needle) noexcept;

}  // namespace problemgate::problem::internal
