// Issue 24, finding 6: a problem body's extension members were de-duplicated with a linear scan
// per name, so 6,000 members cost ~100 ms and 880 KB ~20 s. The guard counts name comparisons
// (deterministic) instead of timing anything.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <simdjson.h>

#include "problem/extract.hpp"
#include "problem/member_names.hpp"
#include "support.hpp"

namespace {

namespace pi = problemgate::problem::internal;

/// A problem body with `n` distinct extension members, "m0000":1 ... (10 bytes each).
std::string problem_with_members(std::size_t n) {
  std::string body = R"({"type":"https://example.com/probs/bad","title":"Bad input","status":400)";
  char name[32];
  for (std::size_t i = 0; i < n; ++i) {
    std::snprintf(name, sizeof name, ",\"m%04zu\":1", i);
    body += name;
  }
  body += '}';
  return body;
}

/// Name comparisons append_extension_members makes on `body` (the code path read_problem runs).
std::size_t extension_work(const std::string& body, std::string& extensions) {
  simdjson::dom::parser parser;
  simdjson::dom::object root;
  REQUIRE(parser.parse(body).get(root) == simdjson::SUCCESS);
  std::size_t comparisons = 0;
  extensions.clear();
  pi::append_extension_members(root, extensions, &comparisons);
  return comparisons;
}

/// The bound the guard allows: 2 n log2 n + n comparisons (a merge sort makes at most n log2 n, and
/// n - 1 more find the runs). The old per-name scan made n (n - 1) / 2, 115 times this at 6,000
/// names.
double n_log_n_bound(std::size_t n) {
  const double dn = static_cast<double>(n);
  return 2.0 * dn * std::log2(dn) + dn;
}

}  // namespace

TEST_SUITE("problem.work_bound") {
  TEST_CASE("6,000 and 60,000 extension members: the work grows like n log n, not n squared") {
    std::string extensions;
    const std::size_t small = extension_work(problem_with_members(6000), extensions);
    CHECK(std::count(extensions.begin(), extensions.end(), ',') == 5999);
    const std::size_t large = extension_work(problem_with_members(60000), extensions);
    CHECK(std::count(extensions.begin(), extensions.end(), ',') == 59999);
    MESSAGE("name comparisons: 6,000 members " << small << ", 60,000 members " << large);
    CHECK(static_cast<double>(small) <= n_log_n_bound(6000));
    CHECK(static_cast<double>(large) <= n_log_n_bound(60000));
    // Ten times the members: n log n gives ~12.6 times the work, the old scan's n squared 100.
    CHECK(large <= 20 * small);
  }

  TEST_CASE("names chosen against the sort stay within the bound") {
    // Reversed, all equal, long shared prefixes, then all of it shuffled: the shapes that hurt
    // naive sorts and scans.
    std::vector<std::string> storage;
    const std::size_t n = 20000;
    for (std::size_t i = 0; i < n; ++i) storage.push_back(std::to_string(n - i));
    for (std::size_t i = 0; i < n; ++i) storage.push_back("same");
    for (std::size_t i = 0; i < n; ++i)
      storage.push_back(std::string(64, 'p') + std::to_string(i % 97));
    std::vector<std::string_view> names(storage.begin(), storage.end());
    std::mt19937 shuffle_seed(24);  // fixed: the count is deterministic
    auto shuffled = names;
    std::shuffle(shuffled.begin(), shuffled.end(), shuffle_seed);
    std::size_t shuffled_comparisons = 0;
    const auto shuffled_first = pi::first_of_each_name(shuffled, &shuffled_comparisons);
    CHECK(static_cast<double>(shuffled_comparisons) <= n_log_n_bound(shuffled.size()));
    CHECK(std::count(shuffled_first.begin(), shuffled_first.end(), true) ==
          static_cast<long>(n + 1 + 97));

    std::size_t comparisons = 0;
    const auto first = pi::first_of_each_name(names, &comparisons);
    CHECK(static_cast<double>(comparisons) <= n_log_n_bound(names.size()));
    CHECK(std::count(first.begin(), first.end(), true) == static_cast<long>(n + 1 + 97));
  }

  TEST_CASE("the hostile 60 KB body through normalize keeps all 6,000 members") {
    const std::string body = problem_with_members(6000);
    REQUIRE(body.size() <= pgtest::pp::Options{}.max_error_body);
    auto r = pgtest::run(400, "application/problem+json", body);
    CHECK(r.out.dialect == pgtest::pp::Dialect::problem);
    std::size_t members = 0;
    for (auto it = r.body.begin(); it != r.body.end(); ++it)
      members += it.key().starts_with('m') ? 1 : 0;
    CHECK(members == 6000);
    CHECK(r.body["m5999"] == 1);
  }

  TEST_CASE("repeated names: the first value wins, in the first one's place") {
    const std::string body =
        R"({"type":"https://example.com/probs/dup","title":"First","status":400,"b":1,"a":{"x":1},)"
        R"("title":"Second","b":2,"c":[1],"a":3,"b":{"y":4}})";
    auto r = pgtest::run(400, "application/json", body);
    CHECK(r.out.dialect == pgtest::pp::Dialect::problem);
    CHECK(r.body["title"] == "First");
    const std::string tail = R"("b":1,"a":{"x":1},"c":[1]})";
    REQUIRE(r.out.body.size() >= tail.size());
    CHECK(r.out.body.substr(r.out.body.size() - tail.size()) == tail);
  }
}
