#include "problem/legacy_codes.hpp"

#include <array>

#include "problem/code_case.hpp"
#include "problem/rules.hpp"
#include "problemgate/problem/normalize.hpp"

namespace problemgate::problem::internal {

namespace {

struct DefaultEntry {
  std::string_view from;
  std::string_view to;
};

// Seed 004, "Appendix: pre-#585 migration map". Almost every row is a plain lowercase translation;
// the table still matters for the rows that are not (INTERNAL) and as the documented contract.
constexpr std::array kDefaultLegacyCodes{
    DefaultEntry{"AGENTSEAL_DISABLED", "agentseal_disabled"},
    DefaultEntry{"ANNOUNCEMENT_NOT_FOUND", "announcement_not_found"},
    DefaultEntry{"AUDIT_NOT_FOUND", "audit_not_found"},
    DefaultEntry{"AUTH_INVALID", "auth_invalid"},
    DefaultEntry{"AUTH_MISSING", "auth_missing"},
    DefaultEntry{"AUTH_SERVICE_ERROR", "auth_service_error"},
    DefaultEntry{"BROADCAST_NOT_FOUND", "broadcast_not_found"},
    DefaultEntry{"EMPTY_BODY", "empty_body"},
    DefaultEntry{"EMPTY_SOURCE", "empty_source"},
    DefaultEntry{"FORBIDDEN", "forbidden"},
    DefaultEntry{"FRONTMATTER_VALIDATION_FAILED", "frontmatter_validation_failed"},
    DefaultEntry{"INTERNAL", "internal_error"},
    DefaultEntry{"INTERNAL_ERROR", "internal_error"},
    DefaultEntry{"INVALID_CONTENT_TYPE", "invalid_content_type"},
    DefaultEntry{"MIRROR_DISABLED", "mirror_disabled"},
    DefaultEntry{"NOTIFICATION_NOT_FOUND", "notification_not_found"},
    DefaultEntry{"NO_UPDATE", "no_update"},
    DefaultEntry{"OLD_REPO_NOT_CONFIRMED", "old_repo_not_confirmed"},
    DefaultEntry{"ORG_NOT_FOUND", "org_not_found"},
    DefaultEntry{"PACKAGE_DOWNLOAD_FAILED", "package_download_failed"},
    DefaultEntry{"PAYLOAD_TOO_LARGE", "payload_too_large"},
    DefaultEntry{"PROVIDER_NOT_FOUND", "provider_not_found"},
    DefaultEntry{"PULL_FAILED", "pull_failed"},
    DefaultEntry{"QUOTA_EXCEEDED", "quota_exceeded"},
    DefaultEntry{"RECONCILE_ALREADY_RUNNING", "reconcile_already_running"},
    DefaultEntry{"REFRESH_FAILED", "refresh_failed"},
    DefaultEntry{"REFRESH_PREVIEW_FAILED", "refresh_preview_failed"},
    DefaultEntry{"REPO_FETCH_FAILED", "repo_fetch_failed"},
    DefaultEntry{"SKILL_NAME_EXISTS", "skill_name_exists"},
    DefaultEntry{"SKILL_NOT_FOUND", "skill_not_found"},
    DefaultEntry{"SKILL_VERSION_NOT_FOUND", "skill_version_not_found"},
    DefaultEntry{"UPSTREAM_DOWN", "upstream_down"},
};
// The appendix's wildcard rows: prefixes whose codes map to their own lowercase form.
constexpr std::array<std::string_view, 3> kDefaultLegacyPrefixes{"INVALID_", "MISSING_",
                                                                 "REDEMPTION_CODE_"};

bool is_glob(std::string_view s) noexcept {
  return s.find_first_of("*?") != std::string_view::npos;
}

LegacyHit from_config(std::string_view raw, const LegacyCode& entry) {
  std::string sub = to_snake_case(entry.subcode.empty() ? raw : std::string_view(entry.subcode));
  return {std::move(sub), entry.code};
}

}  // namespace

std::optional<LegacyHit> find_legacy_code(std::string_view raw, const Options& opts) {
  if (raw.empty()) return std::nullopt;
  if (!opts.legacy_codes.empty()) {
    if (auto it = opts.legacy_codes.find(std::string(raw)); it != opts.legacy_codes.end())
      return from_config(raw, it->second);
  }
  for (const auto& e : kDefaultLegacyCodes)
    if (e.from == raw) return LegacyHit{std::string(e.to), {}};

  const LegacyCode* best = nullptr;
  std::size_t best_len = 0;
  for (const auto& [pattern, entry] : opts.legacy_codes) {
    if (is_glob(pattern) && pattern.size() > best_len && glob_match(pattern, raw)) {
      best = &entry;
      best_len = pattern.size();
    }
  }
  if (best) return from_config(raw, *best);
  for (auto prefix : kDefaultLegacyPrefixes)
    if (raw.size() > prefix.size() && raw.starts_with(prefix))
      return LegacyHit{to_snake_case(raw), {}};
  return std::nullopt;
}

}  // namespace problemgate::problem::internal

namespace problemgate::problem {

void known_subcodes(const Options& opts, std::vector<std::string>& out) {
  for (const auto& e : internal::kDefaultLegacyCodes) out.emplace_back(e.to);
  for (const auto& [pattern, entry] : opts.legacy_codes) {
    if (!entry.subcode.empty())
      out.push_back(to_snake_case(entry.subcode));
    else if (!internal::is_glob(pattern))
      out.push_back(to_snake_case(pattern));
  }
}

}  // namespace problemgate::problem
