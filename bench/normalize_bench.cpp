// problem::normalize over the golden corpus bodies (tests/corpus/): ns per body and bytes/s.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "problemgate/problem/normalize.hpp"

namespace {

namespace pp = problemgate::problem;

struct Case {
  std::string name;
  int status;
  std::string content_type;
  std::string body;
};

const std::vector<Case>& corpus() {
  static const std::vector<Case> cases = [] {
    std::vector<Case> out;
    // The corpus is part of the repository: without it the figures would measure nothing.
    static constexpr const char* kPath = PROBLEMGATE_CORPUS_DIR "/seed-dialects.json";
    std::ifstream f(kPath);
    if (!f) {
      std::fprintf(stderr, "error: corpus not found at %s\n", kPath);
      std::exit(1);
    }
    std::stringstream ss;
    ss << f.rdbuf();
    const auto j = nlohmann::json::parse(ss.str(), nullptr, false);
    if (!j.is_array() || j.empty()) {
      std::fprintf(stderr, "error: %s is not a non-empty JSON array of cases\n", kPath);
      std::exit(1);
    }
    for (const auto& c : j) {
      const auto& up = c["upstream"];
      out.push_back({c.value("name", ""), up.value("status", 500),
                     up["content_type"].is_string() ? up["content_type"].get<std::string>() : "",
                     up.value("body", "")});
    }
    return out;
  }();
  return cases;
}

pp::Input input(const Case& c) {
  pp::Input in;
  in.status = c.status;
  in.content_type = c.content_type;
  in.body = c.body;
  in.instance = "/v1/resource";
  in.request_id = "req_01HXYZABCDEFGHJKMNPQRSTVWX";
  return in;
}

/// All corpus bodies in turn; items = bodies, bytes = upstream body bytes.
void BM_NormalizeCorpus(benchmark::State& state) {
  const auto& cases = corpus();
  pp::Normalizer normalizer;
  const pp::Options opts;
  const pp::RouteOptions route;
  std::size_t bytes = 0, items = 0;
  for (auto _ : state) {
    for (const auto& c : cases) {
      auto out = normalizer.normalize(input(c), opts, route);
      benchmark::DoNotOptimize(out.body.data());
      bytes += c.body.size();
    }
    items += cases.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(items));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  // Inverted rate: CPU seconds per body, printed with an SI prefix (e.g. "700ns").
  state.counters["per_body"] = benchmark::Counter(
      static_cast<double>(items), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_NormalizeCorpus);

/// One corpus case per benchmark, through the thread_local free function.
void BM_NormalizeCase(benchmark::State& state) {
  const auto& cases = corpus();
  const auto index = static_cast<std::size_t>(state.range(0));
  if (index >= cases.size()) {
    state.SkipWithError("no such case");
    return;
  }
  const Case& c = cases[index];
  state.SetLabel(c.name);
  const pp::Options opts;
  const pp::RouteOptions route;
  for (auto _ : state) {
    auto out = pp::normalize(input(c), opts, route);
    benchmark::DoNotOptimize(out.body.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * c.body.size()));
}
BENCHMARK(BM_NormalizeCase)->DenseRange(0, 44, 4);

}  // namespace

BENCHMARK_MAIN();
