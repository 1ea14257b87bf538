// config/problemgate.schema.json and the parser cannot drift: every mapping the parser checks
// for unknown keys (recorded while it reads config/example-full.yaml, which sets every key) has
// a schema object with exactly those properties and additionalProperties: false, and every
// object the schema describes is one the parser reads. Validating files against the schema
// (and invalid files rejected by both) is tests/integration/test_config_schema.py.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "config/internal.hpp"

using namespace problemgate::config;
using detail::Json;

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// "/a/b~1c" -> {"a", "b/c"} (RFC 6901).
std::vector<std::string> tokens(const std::string& pointer) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < pointer.size(); ++i) {
    const char c = pointer[i];
    if (c == '/') {
      out.emplace_back();
    } else if (c == '~' && i + 1 < pointer.size()) {
      out.back().push_back(pointer[++i] == '1' ? '/' : '~');
    } else {
      out.back().push_back(c);
    }
  }
  return out;
}

class SchemaWalker {
 public:
  explicit SchemaWalker(const Json& schema) : schema_(schema) {}

  const Json& deref(const Json& n) const {
    const Json* p = &n;
    while (p->is_object() && p->contains("$ref")) {
      const std::string ref = (*p)["$ref"].get<std::string>();
      REQUIRE(ref.starts_with("#/"));
      p = &schema_.at(Json::json_pointer(ref.substr(1)));
    }
    return *p;
  }

  // The node itself and the branches of its anyOf/oneOf, $refs followed.
  std::vector<const Json*> branches(const Json& n) const {
    std::vector<const Json*> out{&deref(n)};
    for (const char* k : {"anyOf", "oneOf"}) {
      const Json& d = deref(n);
      if (d.contains(k)) {
        for (const auto& b : d[k]) out.push_back(&deref(b));
      }
    }
    return out;
  }

  // The schema of the member or item `token` of a value described by `n`; null when none.
  const Json* step(const Json& n, const std::string& token) const {
    for (const Json* b : branches(n)) {
      if (b->contains("properties") && (*b)["properties"].contains(token))
        return &(*b)["properties"][token];
      if (b->contains("patternProperties")) {
        for (const auto& [pattern, sub] : (*b)["patternProperties"].items()) {
          if (std::regex_search(token, std::regex(pattern))) return &sub;
        }
      }
      if (b->contains("additionalProperties") && (*b)["additionalProperties"].is_object()) {
        return &(*b)["additionalProperties"];
      }
      if (b->contains("items") && !token.empty() &&
          token.find_first_not_of("0123456789") == std::string::npos) {
        return &(*b)["items"];
      }
    }
    return nullptr;
  }

  // The object schema (the branch with `properties`) at a document pointer; null when none.
  const Json* object_at(const std::string& pointer) const {
    const Json* n = &schema_;
    for (const auto& t : tokens(pointer)) {
      n = step(*n, t);
      if (n == nullptr) return nullptr;
    }
    for (const Json* b : branches(*n)) {
      if (b->contains("properties")) return b;
    }
    return nullptr;
  }

 private:
  const Json& schema_;
};

void collect_objects(const Json& n, std::set<const Json*>& out) {
  if (n.is_object()) {
    if (n.contains("properties") && n["properties"].is_object()) out.insert(&n);
    for (const auto& [k, v] : n.items()) collect_objects(v, out);
  } else if (n.is_array()) {
    for (const auto& v : n) collect_objects(v, out);
  }
}

std::set<std::string> keys_of(const Json& properties) {
  std::set<std::string> out;
  for (const auto& [k, v] : properties.items()) out.insert(k);
  return out;
}

std::string joined(const std::set<std::string>& s) {
  std::string out;
  for (const auto& k : s) out += (out.empty() ? "" : " ") + k;
  return out;
}

}  // namespace

TEST_SUITE("config.schema") {
  TEST_CASE("the schema declares exactly the keys the parser accepts") {
    const Json schema = Json::parse(read(PROBLEMGATE_SOURCE_DIR "/config/problemgate.schema.json"));
    const std::string example = read(PROBLEMGATE_SOURCE_DIR "/config/example-full.yaml");

    detail::LineMap lines;
    detail::Diagnostics diag("example-full.yaml", &lines);
    const Json doc = detail::yaml_to_json(example, lines, diag);
    Config cfg;
    std::vector<detail::Path> route_paths;
    std::vector<detail::KeySet> key_sets;
    detail::parse_config(doc, cfg, route_paths, diag, &key_sets);
    CHECK(diag.empty());
    REQUIRE(key_sets.size() > 10);

    const SchemaWalker walker(schema);
    std::set<const Json*> visited;
    std::map<const Json*, std::set<std::string>> written;  // keys example-full writes there
    for (const auto& ks : key_sets) {
      CAPTURE(ks.pointer);
      const Json* node = walker.object_at(ks.pointer);
      REQUIRE_MESSAGE(node != nullptr, "no object in the schema at " << ks.pointer);
      visited.insert(node);
      const std::set<std::string> parser(ks.keys.begin(), ks.keys.end());
      const std::set<std::string> declared = keys_of((*node)["properties"]);
      CHECK_MESSAGE(parser == declared,
                    "parser: " << joined(parser) << "\nschema: " << joined(declared));
      CHECK((*node)["additionalProperties"] == false);
      for (const auto& [k, v] : doc.at(Json::json_pointer(ks.pointer)).items())
        written[node].insert(k);
    }

    std::set<const Json*> all;
    collect_objects(schema, all);
    for (const Json* n : all) {
      CHECK_MESSAGE(visited.count(n) == 1,
                    "schema object with keys "
                        << joined(keys_of((*n)["properties"]))
                        << " is not one the parser reads in example-full.yaml");
    }
    // example-full.yaml promises every key: each accepted key is written at least once.
    for (const Json* n : visited) {
      CHECK_MESSAGE(written[n] == keys_of((*n)["properties"]),
                    "example-full.yaml writes " << joined(written[n]) << "\nthe parser accepts "
                                                << joined(keys_of((*n)["properties"])));
    }
  }
}
