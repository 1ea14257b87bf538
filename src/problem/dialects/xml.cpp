// Dialect 7, `xml`: AWS/S3/Twilio <Code>+<Message>, OData m:code/m:message, SOAP faults and
// application/problem+xml (RFC 9457 Appendix B).
#include <pugixml.hpp>

#include "problem/code_case.hpp"
#include "problem/extract.hpp"
#include "problem/markup_text.hpp"

namespace problemgate::problem::internal {

namespace {

/// Element walks stop this deep; pugixml itself parses iteratively.
constexpr int kMaxXmlDepth = 64;

std::string_view local_name(pugi::xml_node n) noexcept {
  std::string_view name = n.name();
  if (auto colon = name.rfind(':'); colon != std::string_view::npos) name.remove_prefix(colon + 1);
  return name;
}

std::string_view text_of(pugi::xml_node n) noexcept { return trim(n.text().get()); }

/// First direct child whose local name is one of `names` (case-insensitive) and has text.
template <class... Names>
pugi::xml_node child_named(pugi::xml_node parent, Names... names) {
  for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    const auto local = local_name(c);
    if (((iequals(local, names)) || ...)) return c;
  }
  return {};
}

/// Depth-first, iterative, bounded: the first element whose local name is `name`.
pugi::xml_node find_element(pugi::xml_node root, std::string_view name) {
  pugi::xml_node n = root;
  int depth = 0;
  while (n) {
    if (n.type() == pugi::node_element && iequals(local_name(n), name)) return n;
    pugi::xml_node child = depth < kMaxXmlDepth ? n.first_child() : pugi::xml_node();
    if (child) {
      n = child;
      ++depth;
      continue;
    }
    while (n && n != root && !n.next_sibling()) {
      n = n.parent();
      --depth;
    }
    if (!n || n == root) break;
    n = n.next_sibling();
  }
  return {};
}

bool read_problem_xml(pugi::xml_node root, Extract& ex) {
  if (!iequals(local_name(root), "problem")) return false;
  if (auto t = text_of(child_named(root, "type")); !t.empty()) ex.type = std::string(t);
  if (auto t = text_of(child_named(root, "title")); !t.empty()) ex.title = std::string(t);
  if (auto d = text_of(child_named(root, "detail")); !d.empty()) ex.detail = std::string(d);
  if (auto c = text_of(child_named(root, "code")); !c.empty()) {
    ex.upstream_code = std::string(c);
  } else if (ex.type) {
    ex.upstream_code = std::string(type_uri_code(*ex.type));
  }
  return true;
}

bool read_soap_fault(pugi::xml_node root, Extract& ex) {
  pugi::xml_node fault = find_element(root, "Fault");
  if (!fault) return false;
  std::string_view code = text_of(child_named(fault, "faultcode"));
  std::string_view reason = text_of(child_named(fault, "faultstring"));
  if (code.empty()) code = text_of(child_named(child_named(fault, "Code"), "Value"));  // SOAP 1.2
  if (reason.empty()) reason = text_of(child_named(child_named(fault, "Reason"), "Text"));
  // QName values: "soap:Client" -> "Client".
  if (auto colon = code.rfind(':'); colon != std::string_view::npos) code.remove_prefix(colon + 1);
  ex.upstream_code = std::string(code);
  if (!reason.empty()) ex.detail = std::string(reason);
  return true;
}

bool read_code_message(pugi::xml_node root, Extract& ex) {
  pugi::xml_node code = find_element(root, "Code");
  pugi::xml_node parent = code ? code.parent() : root;
  pugi::xml_node message = child_named(parent, "Message", "Detail", "Description");
  if (!message) message = find_element(root, "Message");
  std::string_view c = code ? text_of(code) : std::string_view();
  std::string_view m = message ? text_of(message) : std::string_view();
  if (c.empty() && m.empty()) return false;
  ex.upstream_code = std::string(c);
  if (!m.empty()) ex.detail = std::string(m);
  return true;
}

}  // namespace

bool read_xml(std::string_view body, const DialectInput& in, Extract& out) {
  (void)in;
  std::string_view t = trim(body);
  if (t.starts_with("\xEF\xBB\xBF")) t.remove_prefix(3);
  if (t.empty() || t.front() != '<') return false;
  pugi::xml_document doc;
  // No DOCTYPE/entity expansion beyond the predefined ones: pugixml never fetches anything.
  auto res = doc.load_buffer(body.data(), body.size(), pugi::parse_default, pugi::encoding_auto);
  if (!res) return false;
  pugi::xml_node root = doc.document_element();
  if (!root || iequals(local_name(root), "html")) return false;

  Extract ex;
  if (!read_problem_xml(root, ex) && !read_soap_fault(root, ex) && !read_code_message(root, ex))
    return false;
  // Element text keeps the document's line breaks and indentation (Azure Storage puts
  // "\nRequestId:...\nTime:..." inside <Message>): collapse them as the html dialect does.
  // pugixml decodes "&lt;" and CDATA is raw: text meant as text must not become a tag.
  for (auto* text : {&ex.title, &ex.detail}) {
    if (!*text) continue;
    **text = clean_text(**text, std::string::npos);
    neutralize_tag_openers(**text);
  }
  out = std::move(ex);
  return true;
}

}  // namespace problemgate::problem::internal
