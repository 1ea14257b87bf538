#include "problemgate/ratelimit/rate_limit_headers.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <limits>

#include "problemgate/core/header_names.hpp"

namespace problemgate::ratelimit {

namespace {

constexpr std::uint64_t kEpochSecondsFloor = 1'000'000'000;   // 2001-09-09
constexpr std::uint64_t kEpochMillisFloor = 100'000'000'000;  // 5138 AD in seconds

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct Number {
  std::uint64_t value = 0;
  bool negative = false;
};

// [-]digits[.digits]; a fraction rounds up when `allow_fraction`, else is garbage.
std::optional<Number> parse_number(std::string_view s, bool allow_fraction) noexcept {
  s = trim(s);
  Number n;
  if (!s.empty() && s.front() == '-') {
    n.negative = true;
    s.remove_prefix(1);
  }
  std::string_view frac;
  if (auto dot = s.find('.'); dot != std::string_view::npos) {
    if (!allow_fraction) return std::nullopt;
    frac = s.substr(dot + 1);
    s = s.substr(0, dot);
    if (frac.empty() ||
        !std::all_of(frac.begin(), frac.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
  }
  if (s.empty()) return std::nullopt;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n.value);
  if (ec != std::errc{} || ptr != s.data() + s.size()) return std::nullopt;
  if (std::any_of(frac.begin(), frac.end(), [](char c) { return c != '0'; })) {
    if (n.negative) return n;  // -1.5 rounds up to -1
    if (n.value == std::numeric_limits<std::uint64_t>::max()) return std::nullopt;
    ++n.value;
  }
  if (n.negative && n.value == 0) n.negative = false;
  return n;
}

std::int64_t saturate(std::uint64_t v) noexcept {
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / 4);
  return static_cast<std::int64_t>(std::min(v, kMax));
}

int two_digits(std::string_view s, std::size_t at) noexcept {
  const char a = s[at];
  const char b = s[at + 1];
  if (a < '0' || a > '9' || b < '0' || b > '9') return -1;
  return (a - '0') * 10 + (b - '0');
}

// IMF-fixdate, RFC 9110 §5.6.7: "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<std::int64_t> parse_imf_fixdate(std::string_view s) noexcept {
  s = trim(s);
  if (s.size() != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT") {
    return std::nullopt;
  }
  constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  const auto mon_pos = kMonths.find(s.substr(8, 3));
  if (mon_pos == std::string_view::npos || mon_pos % 3 != 0) return std::nullopt;
  const int day = two_digits(s, 5);
  const int y_hi = two_digits(s, 12);
  const int y_lo = two_digits(s, 14);
  const int hh = two_digits(s, 17);
  const int mm = two_digits(s, 20);
  const int ss = two_digits(s, 23);
  if (day < 1 || y_hi < 0 || y_lo < 0 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 ||
      ss > 60) {
    return std::nullopt;
  }
  namespace chr = std::chrono;
  const chr::year_month_day ymd{chr::year{y_hi * 100 + y_lo},
                                chr::month{static_cast<unsigned>(mon_pos / 3 + 1)},
                                chr::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) return std::nullopt;
  const std::int64_t days = chr::sys_days{ymd}.time_since_epoch().count();
  return days * 86'400 + hh * 3'600 + mm * 60 + ss;
}

// Numbers via to_chars into a stack buffer: no temporary strings.
template <class Int>
void append_int(std::string& out, Int v) {
  char buf[24];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(ptr - buf));
}

template <class Int>
void push_int(std::vector<HeaderField>& out, std::string_view name, Int v) {
  HeaderField& f = out.emplace_back();
  f.name = name;
  append_int(f.value, v);
}

// sf-string (RFC 8941 §3.3.3): printable ASCII, with " and \ escaped; anything else is dropped
// rather than producing an unparseable field.
void append_sf_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) continue;
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

// What is shown: one coherent set, taken from the winning source (see build_headers).
struct Shown {
  std::optional<std::uint64_t> limit;
  std::optional<std::uint64_t> remaining;
  std::optional<std::int64_t> reset_epoch_s;
  std::optional<std::int64_t> reset_after_s;
  std::string_view name;
};

}  // namespace

std::int64_t reset_to_epoch(std::uint64_t value, std::int64_t now_s) noexcept {
  if (value > kEpochMillisFloor) return saturate(value / 1000 + (value % 1000 != 0));
  if (value > kEpochSecondsFloor) return saturate(value);
  return now_s + saturate(value);
}

UpstreamLimit parse_upstream_headers(std::string_view limit, std::string_view remaining,
                                     std::string_view reset, std::string_view retry_after,
                                     std::int64_t now_s) noexcept {
  UpstreamLimit u;
  if (auto n = parse_number(limit, false); n && !n->negative) u.limit = n->value;
  if (auto n = parse_number(remaining, false)) u.remaining = n->negative ? 0 : n->value;
  if (auto n = parse_number(reset, true); n && !n->negative) {
    u.reset_epoch_s = reset_to_epoch(n->value, now_s);
  }
  if (auto n = parse_number(retry_after, true)) {
    if (!n->negative) u.retry_after_s = saturate(n->value);
  } else if (auto date = parse_imf_fixdate(retry_after)) {
    u.retry_after_s = std::max<std::int64_t>(0, *date - now_s);
  }
  return u;
}

void merge_missing(UpstreamLimit& into, const UpstreamLimit& from) noexcept {
  if (!into.limit) into.limit = from.limit;
  if (!into.remaining) into.remaining = from.remaining;
  if (!into.reset_epoch_s) into.reset_epoch_s = from.reset_epoch_s;
  if (!into.retry_after_s) into.retry_after_s = from.retry_after_s;
}

std::int64_t window_seconds(const config::RateLimitPolicy& policy) noexcept {
  const std::int64_t ms = policy.window.count();
  return std::max<std::int64_t>(1, ms / 1000 + (ms % 1000 > 0));
}

void build_headers(const Decision* gateway, const UpstreamLimit* upstream,
                   std::string_view policy_name, std::int64_t window_s,
                   const config::RateLimitHeaders& format, std::int64_t now_s,
                   std::vector<HeaderField>& out) {
  namespace hdr = core::hdr;
  if (upstream != nullptr && !upstream->any()) upstream = nullptr;
  if (gateway == nullptr && upstream == nullptr) return;

  Shown gw;
  if (gateway != nullptr) {
    gw = {gateway->limit, gateway->remaining, gateway->reset_epoch_s, gateway->reset_after_s,
          policy_name};
  }
  Shown up;
  if (upstream != nullptr) {
    up = {upstream->limit, upstream->remaining, upstream->reset_epoch_s, std::nullopt,
          kUpstreamPolicyName};
    if (up.reset_epoch_s) up.reset_after_s = std::max<std::int64_t>(0, *up.reset_epoch_s - now_s);
  }

  const Shown* shown = gateway != nullptr ? &gw : &up;
  Shown merged;
  if (gateway != nullptr && upstream != nullptr && up.remaining) {
    const bool upstream_stricter = *up.remaining < *gw.remaining ||
                                   (*up.remaining == *gw.remaining &&
                                    (!up.reset_epoch_s || *up.reset_epoch_s >= *gw.reset_epoch_s));
    if (upstream_stricter) {
      merged = up;
      if (!merged.limit) merged.limit = gw.limit;
      if (!merged.reset_epoch_s) {
        merged.reset_epoch_s = gw.reset_epoch_s;
        merged.reset_after_s = gw.reset_after_s;
      }
      shown = &merged;
    }
  }

  const bool x_ratelimit = format.format != config::RateLimitHeaders::Format::ietf;
  const bool ietf = format.format != config::RateLimitHeaders::Format::x_ratelimit;

  if (x_ratelimit) {
    if (shown->limit) push_int(out, hdr::kRateLimitLimit, *shown->limit);
    if (shown->remaining) push_int(out, hdr::kRateLimitRemaining, *shown->remaining);
    if (shown->reset_epoch_s) {
      push_int(out, hdr::kRateLimitReset,
               format.reset == config::RateLimitHeaders::Reset::epoch ? *shown->reset_epoch_s
                                                                      : *shown->reset_after_s);
    }
  }

  if (ietf) {
    std::string policy;
    if (gateway != nullptr) {
      append_sf_string(policy, policy_name);
      policy.append(";q=");
      append_int(policy, gateway->limit);
      policy.append(";w=");
      append_int(policy, window_s);
    }
    if (upstream != nullptr && upstream->limit) {
      if (!policy.empty()) policy.append(", ");
      append_sf_string(policy, kUpstreamPolicyName);
      policy.append(";q=");
      append_int(policy, *upstream->limit);
    }
    if (!policy.empty()) out.push_back({hdr::kRateLimitPolicy, std::move(policy)});

    if (shown->remaining) {
      HeaderField& f = out.emplace_back();
      f.name = hdr::kRateLimit;
      append_sf_string(f.value, shown->name);
      f.value.append(";r=");
      append_int(f.value, *shown->remaining);
      if (shown->reset_after_s) {
        f.value.append(";t=");
        append_int(f.value, *shown->reset_after_s);
      }
    }
  }

  std::optional<std::int64_t> retry;
  if (gateway != nullptr && !gateway->allowed) retry = gateway->retry_after_s;
  if (upstream != nullptr && upstream->retry_after_s) {
    retry = std::max(retry.value_or(0), *upstream->retry_after_s);
  }
  if (retry) push_int(out, hdr::kRetryAfter, *retry);
}

}  // namespace problemgate::ratelimit
