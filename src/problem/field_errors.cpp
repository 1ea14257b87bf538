#include "problem/field_errors.hpp"

#include <charconv>

#include "problem/code_case.hpp"
#include "problem/field_error_json.hpp"

namespace problemgate::problem::internal {

namespace {

constexpr std::string_view kDefaultFieldCode = "invalid";

/// Appends the path segment `key` to `path` (joined by '.', none before the first segment) and
/// returns the length to cut back to. Walks extend one path buffer rather than copy the parent's
/// path for every child: the copies alone grew with the square of the body.
std::size_t push_segment(std::string& path, std::string_view key) {
  const std::size_t parent = path.size();
  if (!path.empty()) path.push_back('.');
  path.append(key);
  return parent;
}

std::string index_key(std::size_t i) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, i);
  return std::string(buf, r.ptr);
}

bool is_parent_key(std::string_view key) noexcept {
  return key == "non_field_errors" || key == "__all__";
}

std::string entry_code_or(std::optional<std::string_view> raw, DefaultFieldCode& default_code) {
  if (raw) {
    std::string c = subcode_for(*raw);
    if (!c.empty()) return c;
  }
  return std::string(default_code.get());
}

/// FastAPI `loc`, GraphQL `path`: strings and indices joined by '.'.
std::optional<std::string> join_segments(JsonArray a) {
  std::string p;
  bool any = false;
  for (JsonElement seg : a) {
    std::string part;
    if (auto s = as_string(seg)) {
      part = std::string(*s);
    } else if (auto n = as_int(seg)) {
      char buf[24];
      auto r = std::to_chars(buf, buf + sizeof buf, *n);
      part.assign(buf, r.ptr);
    } else {
      continue;
    }
    if (any) p.push_back('.');
    p += part;
    any = true;
  }
  if (!any) return std::nullopt;
  return p;
}

/// A JSON:API error object: it has a `source`, or speaks through `detail`/`title` rather than
/// `message` (GraphQL, GitHub and Google entries carry a `message`).
bool is_jsonapi_error(JsonObject e) noexcept {
  if (object_member(e, "source")) return true;
  return (text_member(e, "detail") || text_member(e, "title")) && !member(e, "message");
}

std::optional<std::string> entry_path(JsonObject e) {
  if (auto src = object_member(e, "source")) {
    if (auto s = first_text(*src, "pointer", "parameter", "header")) return std::string(*s);
  }
  for (std::string_view key : {"path", "loc"}) {
    if (auto m = member(e, key)) {
      if (auto s = as_string(*m)) return std::string(*s);
      if (auto a = as_array(*m)) {
        if (auto p = join_segments(*a)) return p;
      }
    }
  }
  // `param` before `location`: express-validator's location says where (body, query), its param
  // which field; Google's legacy entries name the field in location.
  if (auto s = first_text(e, "pointer", "field", "param", "propertyName", "location", "name"))
    return std::string(*s);
  // JSON:API: an error object without a source is about the request as a whole (spec §3.3).
  if (is_jsonapi_error(e)) return std::string();
  return std::nullopt;
}

void flatten_map_at(JsonObject o, std::string& path, DefaultFieldCode& default_code,
                    FieldErrors& out, int depth);

void add_messages(JsonArray list, std::string& path, DefaultFieldCode& default_code,
                  FieldErrors& out, int depth) {
  std::size_t index = 0;
  for (JsonElement item : list) {
    if (out.closed()) return;
    if (auto s = as_string(item)) {
      out.add(path, default_code.get(), *s);
    } else if (auto o = as_object(item)) {
      // DRF ErrorDetail-style {"message", "code"} items, else a nested map at this list index.
      if (auto msg = first_text(*o, "message", "msg", "detail")) {
        out.add(path, entry_code_or(entry_code(*o), default_code), *msg);
      } else {
        const std::size_t parent = push_segment(path, index_key(index));
        flatten_map_at(*o, path, default_code, out, depth + 1);
        path.resize(parent);
      }
    }
    ++index;
  }
}

/// flatten_field_map below `path` (the parent's path, restored on return).
void flatten_map_at(JsonObject o, std::string& path, DefaultFieldCode& default_code,
                    FieldErrors& out, int depth) {
  if (depth > kMaxFieldDepth) return;
  for (auto field : o) {
    if (out.closed()) return;
    const std::size_t parent =
        is_parent_key(field.key) ? path.size() : push_segment(path, field.key);
    if (auto s = as_string(field.value)) {
      out.add(path, default_code.get(), *s);
    } else if (auto a = as_array(field.value)) {
      add_messages(*a, path, default_code, out, depth);
    } else if (auto nested = as_object(field.value)) {
      flatten_map_at(*nested, path, default_code, out, depth + 1);
    }
    path.resize(parent);
  }
}

}  // namespace

std::size_t field_error_budget(std::size_t body_size) noexcept {
  return kFieldErrorBytesPerBodyByte * body_size + kFieldErrorBudgetFloor;
}

void FieldErrors::add(std::string_view path, std::string_view code,
                      std::optional<std::string_view> message) {
  if (closed_) return;
  const std::size_t size =
      serialized_size(path, code, message) + (entries_.empty() ? 0 : 1);  // ','
  if (size > remaining_) {
    closed_ = true;
    return;
  }
  remaining_ -= size;
  entries_.push_back({std::string(path), std::string(code),
                      message ? std::optional<std::string>(std::string(*message)) : std::nullopt});
}

std::size_t FieldErrors::serialized_size(std::string_view path, std::string_view code,
                                         std::optional<std::string_view> message) {
  scratch_.clear();
  append_field_error(scratch_, path, code, message);
  return scratch_.size();
}

std::optional<std::string_view> entry_code_besides_reason(JsonObject e) noexcept {
  if (auto c = code_member(e, "code")) return c;
  if (auto ext = object_member(e, "extensions")) {
    if (auto c = code_member(*ext, "code")) return c;
  }
  return code_member(e, "type");
}

std::optional<std::string_view> entry_code(JsonObject e) noexcept {
  if (auto c = entry_code_besides_reason(e)) return c;
  return code_member(e, "reason");
}

std::string_view DefaultFieldCode::get() {
  if (!code_) {
    std::string c = subcode_for(body_code_);
    code_ = c.empty() ? std::string(kDefaultFieldCode) : std::move(c);
  }
  return *code_;
}

bool is_field_map(JsonObject o, int depth) noexcept {
  if (depth > kMaxFieldDepth || o.size() == 0) return false;
  for (auto field : o) {
    if (auto a = as_array(field.value)) {
      if (a->size() == 0) return false;
      for (JsonElement item : *a) {
        if (as_string(item)) continue;
        auto nested = as_object(item);
        // DRF lists of nested serializers carry {} for the valid entries.
        if (!nested || (nested->size() != 0 && !is_field_map(*nested, depth + 1))) return false;
      }
    } else if (auto nested = as_object(field.value)) {
      if (!is_field_map(*nested, depth + 1)) return false;
    } else {
      return false;
    }
  }
  return true;
}

void flatten_field_map(JsonObject o, DefaultFieldCode& default_code, FieldErrors& out) {
  std::string path;
  flatten_map_at(o, path, default_code, out, 0);
}

void errors_from_array(JsonArray a, DefaultFieldCode& default_code, FieldErrors& out) {
  for (JsonElement item : a) {
    if (out.closed()) return;
    auto e = as_object(item);
    if (!e) continue;
    auto path = entry_path(*e);
    if (!path) continue;
    auto message =
        first_text(*e, "message", "msg", "detail", "defaultMessage", "description", "title");
    std::optional<std::string_view> code;
    if (!message) {
      // RFC 7807's invalid-params {name, reason}: with nothing else to say, reason is the text.
      message = text_member(*e, "reason");
      code = message ? entry_code_besides_reason(*e) : entry_code(*e);
    } else {
      code = entry_code(*e);
    }
    out.add(*path, entry_code_or(code, default_code), message);
  }
}

void errors_from_google_details(JsonArray details, DefaultFieldCode& default_code,
                                FieldErrors& out) {
  for (JsonElement item : details) {
    auto d = as_object(item);
    if (!d) continue;
    auto type = string_member(*d, "@type");
    if (!type || !type->ends_with("google.rpc.BadRequest")) continue;
    auto violations = array_member(*d, "fieldViolations");
    if (!violations) continue;
    for (JsonElement v : *violations) {
      if (out.closed()) return;
      auto fv = as_object(v);
      if (!fv) continue;
      auto field = string_member(*fv, "field");
      if (!field) continue;
      out.add(*field, entry_code_or(code_member(*fv, "reason"), default_code),
              text_member(*fv, "description"));
    }
  }
}

void collect_field_errors(JsonObject o, DefaultFieldCode& default_code, FieldErrors& out) {
  if (auto fields = object_member(o, "fields")) flatten_field_map(*fields, default_code, out);
  if (auto errors = member(o, "errors")) {
    if (auto map = as_object(*errors)) {
      flatten_field_map(*map, default_code, out);
    } else if (auto list = as_array(*errors)) {
      errors_from_array(*list, default_code, out);
    }
  }
}

}  // namespace problemgate::problem::internal
