#include "problemgate/problem/detail_pattern.hpp"

#include <cstdint>

#include <re2/re2.h>

namespace problemgate::problem {

namespace {

/// Bounds one rule's compiled program plus its lazily built DFA cache. Detail patterns are short;
/// a pattern that needs more (say `\pL{1000}`) is refused at config load, and a DFA that fills
/// its share falls back to RE2's NFA, which is slower but still linear.
constexpr std::int64_t kMaxMemPerPattern = 1 << 20;

RE2::Options pattern_options() {
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingUTF8);  // details are UTF-8 text; `.` is one code point
  o.set_case_sensitive(true);                  // `(?i)` opts out, per pattern or per group
  o.set_never_capture(true);                   // rules ask "does it match", never for groups
  o.set_log_errors(false);                     // problem does no logging: errors go to the caller
  o.set_max_mem(kMaxMemPerPattern);
  return o;
}

/// Operators used to PCRE or std::regex write backreferences and lookaround; RE2's own message
/// ("invalid escape sequence: \1") does not say that the feature is missing on purpose.
std::string unsupported_feature_hint(const RE2& re) {
  const std::string& arg = re.error_arg();
  if (re.error_code() == RE2::ErrorBadEscape && arg.size() == 2 && arg[1] >= '1' && arg[1] <= '9')
    return " (backreferences are not supported: RE2 matches in linear time)";
  if (re.error_code() == RE2::ErrorBadPerlOp && (arg == "(?=" || arg == "(?!" || arg == "(?<"))
    return " (lookahead and lookbehind are not supported: RE2 matches in linear time)";
  if (re.error_code() == RE2::ErrorPatternTooLarge)
    return " (a detail_matches pattern may use up to 1 MiB once compiled)";
  return "";
}

}  // namespace

std::optional<DetailPattern> DetailPattern::compile(std::string_view pattern, std::string& error) {
  auto re = std::make_shared<const RE2>(pattern, pattern_options());
  if (!re->ok()) {
    error = re->error() + unsupported_feature_hint(*re);
    return std::nullopt;
  }
  return DetailPattern(std::move(re));
}

bool DetailPattern::search(std::string_view text) const { return RE2::PartialMatch(text, *re_); }

const std::string& DetailPattern::pattern() const noexcept { return re_->pattern(); }

}  // namespace problemgate::problem
