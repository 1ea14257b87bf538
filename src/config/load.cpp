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
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
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
  error_at(line_of(path.str()), path, reason);
}

void Diagnostics::error_at(int line, const Path& path, std::string_view reason) {
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
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const Entry& a, const Entry& b) { return a.line < b.line; });
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (auto& e : entries_) out.push_back(std::move(e.text));
  entries_.clear();
  throw ConfigError(std::move(out));
}

//----------------------------------------------------------------------------------------------

namespace {

// nlohmann's parser keeps one of two equal keys silently; its callback sees every key, so a
// duplicate is reported (by pointer: the callback knows no line). `text` is valid JSON.
Json parse_json_reporting_duplicates(std::string_view text, Diagnostics& diag) {
  struct Frame {
    bool object = false;
    std::size_t index = 0;          // arrays: the element being parsed
    std::string key;                // objects: the member being parsed
    std::vector<std::string> keys;  // objects: the keys seen so far
  };
  std::vector<Frame> stack;
  auto here = [&] {
    Path p;
    for (const auto& f : stack) p = f.object ? p / f.key : p / f.index;
    return p;
  };
  auto element_done = [&] {
    if (!stack.empty() && !stack.back().object) ++stack.back().index;
  };
  using Event = Json::parse_event_t;
  Json::parser_callback_t callback = [&](int, Event event, Json& parsed) {
    switch (event) {
      case Event::object_start: stack.emplace_back().object = true; break;
      case Event::array_start: stack.emplace_back().object = false; break;
      case Event::key: {
        auto& frame = stack.back();
        std::string key = parsed.get<std::string>();
        if (std::find(frame.keys.begin(), frame.keys.end(), key) != frame.keys.end()) {
          frame.key = key;
          diag.error(here(), "duplicate key \"" + key + "\"");
        } else {
          frame.keys.push_back(key);
          frame.key = std::move(key);
        }
        break;
      }
      case Event::object_end:
      case Event::array_end:
        stack.pop_back();
        element_done();
        break;
      case Event::value: element_done(); break;
    }
    return true;
  };
  return Json::parse(text, callback, /*allow_exceptions=*/false);
}

// YAML first (it is a superset of JSON and gives line numbers); JSON as a fallback for the few
// JSON texts yaml-cpp rejects (tabs in indentation, for one).
bool parse_document(std::string_view text, LineMap& lines, Diagnostics& diag, Json& root) {
  try {
    root = yaml_to_json(text, lines, diag);
    return true;
  } catch (const YAML::Exception& e) {
    lines.clear();
    if (Json::accept(text)) {
      // Valid JSON has tabs only between tokens (a string must spell one \t), so as spaces they
      // change nothing but let the YAML reader in, with its line numbers.
      std::string spaced(text);
      std::replace(spaced.begin(), spaced.end(), '\t', ' ');
      try {
        root = yaml_to_json(spaced, lines, diag);
        return true;
      } catch (const YAML::Exception&) {
        lines.clear();
      }
      root = parse_json_reporting_duplicates(text, diag);
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

Config load_config_text(std::string_view text, std::string_view source,
                        const Overrides& overrides) {
  return detail::load(text, source, overrides);
}

Config load_config_file(const std::string& path, const Overrides& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError({path + ": cannot open: " + std::strerror(errno)});
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad() || (in.fail() && !in.eof()))
    throw ConfigError({path + ": cannot read: " + std::strerror(errno)});
  return detail::load(buf.str(), path, overrides);
}

Config load_config_flags(const Overrides& overrides) {
  return detail::load("", "<flags>", overrides);
}

namespace {

// `wanted` (from the file) is what `running` is: same host, same port or port 0 ("any"), and
// TLS on both or neither (certificates and TLS settings may change on a reload; whether a
// port speaks TLS may not).
bool same_address(const Endpoint& running, const Endpoint& wanted) {
  return running.host == wanted.host && (running.port == wanted.port || wanted.port == 0) &&
         running.tls.has_value() == wanted.tls.has_value();
}

bool same_addresses(const std::vector<Endpoint>& running, const std::vector<Endpoint>& wanted) {
  if (running.size() != wanted.size()) return false;
  // Order is not meaning; exact matches are paired first so a port-0 entry can't take the
  // running address an explicit one needs.
  std::vector<bool> used(running.size(), false);
  for (bool exact : {true, false}) {
    for (const auto& w : wanted) {
      if (exact != (w.port != 0)) continue;
      bool found = false;
      for (std::size_t i = 0; i < running.size() && !found; ++i) {
        if (!used[i] && same_address(running[i], w)) used[i] = found = true;
      }
      if (!found) return false;
    }
  }
  return true;
}

std::string list_text(const std::vector<Endpoint>& eps) {
  std::string out;
  for (const auto& e : eps)
    out += (out.empty() ? "" : ", ") + e.to_string() + (e.tls ? " (tls)" : "");
  return out;
}

std::string admin_text(const std::optional<Endpoint>& ep) { return ep ? ep->to_string() : "off"; }

}  // namespace

std::vector<std::string> restart_only_changes(const Config& running, const Config& next) {
  std::vector<std::string> out;
  auto refuse = [&](std::string_view pointer, const std::string& runs, const std::string& says) {
    out.push_back(next.source + ": " + std::string(pointer) + ": cannot change on a reload (runs " +
                  runs + ", the file says " + says + "): restart to apply it");
  };
  if (!same_addresses(running.listen, next.listen))
    refuse("/listen", list_text(running.listen), list_text(next.listen));
  if (running.worker_threads() != next.worker_threads()) {
    refuse("/threads", std::to_string(running.worker_threads()),
           std::to_string(next.worker_threads()));
  }
  const auto& ra = running.admin.listen;
  const auto& na = next.admin.listen;
  if (ra.has_value() != na.has_value() || (ra && !same_address(*ra, *na))) {
    refuse("/admin/listen", admin_text(ra), admin_text(na));
  }
  const auto& rp = running.admin.probes_listen;
  const auto& np = next.admin.probes_listen;
  if (rp.has_value() != np.has_value() || (rp && !same_address(*rp, *np))) {
    refuse("/admin/probes_listen", admin_text(rp), admin_text(np));
  }
  // The admin listener holds the token it started with; never echo either value.
  if (running.admin.token != next.admin.token) {
    out.push_back(next.source +
                  ": /admin/token_file: the token cannot change on a reload: restart to apply it");
  }
  return out;
}

}  // namespace problemgate::config
