// Entry points: text -> JSON tree -> structs -> overrides -> cross-field checks -> one throw.
#include "problemgate/config/load.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "config/internal.hpp"

namespace problemgate::config {

namespace {

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out += '\n';
    out += l;
  }
  return out;
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error(join(problems)), problems_(std::move(problems)) {}

}  // namespace problemgate::config

namespace problemgate::config::detail {

//----------------------------------------------------------------------------------------------

namespace {

void append_escaped(std::string& out, std::string_view token) {
  for (char c : token) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
}

}  // namespace

Path Path::operator/(std::string_view key) const {
  std::string p = pointer_;
  p += '/';
  append_escaped(p, key);
  return Path(std::move(p));
}

Path Path::operator/(std::size_t index) const {
  return Path(pointer_ + "/" + std::to_string(index));
}

//----------------------------------------------------------------------------------------------

int Diagnostics::line_of(const std::string& pointer) const {
  if (lines_ == nullptr) return 0;
  // A missing key has no line of its own; its parent's is the next best place to look.
  std::string p = pointer;
  while (!p.empty()) {
    if (auto it = lines_->find(p); it != lines_->end()) return it->second;
    p.erase(p.rfind('/'));
  }
  return 0;
}

void Diagnostics::error(const Path& path, std::string_view reason) {
  const int line = line_of(path.str());
  std::string text = source_;
  if (line > 0) {
    // Two appends, not `":" + to_string`: GCC 12 -O3 warns falsely (-Wrestrict) on the latter.
    text += ':';
    text += std::to_string(line);
  }
  text += ": ";
  if (!path.str().empty()) text += path.str() + ": ";
  text += reason;
  entries_.push_back({line, entries_.size(), std::move(text)});
}

void Diagnostics::error_at_line(int line, std::string_view reason) {
  std::string text = source_;
  if (line > 0) {
    // Two appends, not `":" + to_string`: GCC 12 -O3 warns falsely (-Wrestrict) on the latter.
    text += ':';
    text += std::to_string(line);
  }
  text += ": ";
  text += reason;
  entries_.push_back({line, entries_.size(), std::move(text)});
}

void Diagnostics::error(std::string_view reason) {
  entries_.push_back({0, entries_.size(), source_ + ": " + std::string(reason)});
}

void Diagnostics::throw_if_any() {
  if (entries_.empty()) return;
  // Reading order helps an operator fix a file top to bottom.
  std::stable_sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.line < b.line; });
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (auto& e : entries_) out.push_back(std::move(e.text));
  entries_.clear();
  throw ConfigError(std::move(out));
}

//----------------------------------------------------------------------------------------------

namespace {

// YAML first (it is a superset of JSON and gives line numbers); JSON as a fallback for the few
// JSON texts yaml-cpp rejects (tabs in indentation, for one).
bool parse_document(std::string_view text, LineMap& lines, Diagnostics& diag, Json& root) {
  try {
    root = yaml_to_json(text, lines, diag);
    return true;
  } catch (const YAML::Exception& e) {
    lines.clear();
    Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!json.is_discarded()) {
      root = std::move(json);
      return true;
    }
    diag.error_at_line(e.mark.line >= 0 ? e.mark.line + 1 : 0, "invalid YAML: " + e.msg);
    return false;
  }
}

Config load(std::string_view text, std::string_view source, const Overrides& overrides) {
  LineMap lines;
  Diagnostics diag(std::string(source), &lines);
  Json root;
  if (!parse_document(text, lines, diag, root)) diag.throw_if_any();

  Config cfg;
  cfg.source = std::string(source);
  std::vector<Path> route_paths;
  parse_config(root, cfg, route_paths, diag);
  imply_upstreams(cfg);
  apply_overrides(overrides, cfg, route_paths, diag);
  validate(cfg, route_paths, diag);
  diag.throw_if_any();
  return cfg;
}

}  // namespace

}  // namespace problemgate::config::detail

namespace problemgate::config {

Config load_config_text(std::string_view text, std::string_view source, const Overrides& overrides) {
  return detail::load(text, source, overrides);
}

Config load_config_file(const std::string& path, const Overrides& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError({path + ": cannot open: " + std::strerror(errno)});
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad() || (in.fail() && !in.eof())) throw ConfigError({path + ": cannot read: " + std::strerror(errno)});
  return detail::load(buf.str(), path, overrides);
}

Config load_config_flags(const Overrides& overrides) {
  return detail::load("", "<flags>", overrides);
}

}  // namespace problemgate::config
