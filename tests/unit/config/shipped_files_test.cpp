#include "problemgate/config/load.hpp"

#include <doctest/doctest.h>

#include <filesystem>

using namespace problemgate::config;

// Every file in config/ must load, so a shipped example can't rot.
TEST_SUITE("config.shipped") {
  TEST_CASE("every file in config/ loads") {
    const std::filesystem::path dir = std::filesystem::path(PROBLEMGATE_SOURCE_DIR) / "config";
    int loaded = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      const auto ext = entry.path().extension();
      if (ext != ".yaml" && ext != ".yml" && ext != ".json") continue;
      if (entry.path().filename() == "problemgate.schema.json") continue;  // schema_test.cpp's
      CAPTURE(entry.path().string());
      try {
        load_config_file(entry.path().string());
      } catch (const ConfigError& e) {
        FAIL(e.what());
      }
      ++loaded;
    }
    CHECK(loaded >= 2);
  }

  TEST_CASE("the default config is what the README runs") {
    const Config c = load_config_file(PROBLEMGATE_SOURCE_DIR "/config/problemgate.yaml");
    REQUIRE(c.listen.size() == 1);
    CHECK(c.listen[0].to_string() == "127.0.0.1:8080");
    REQUIRE(c.admin.listen);
    CHECK(c.admin.listen->to_string() == "127.0.0.1:9901");
    REQUIRE(c.upstreams.size() == 1);
    CHECK(c.upstreams[0].name == "legacy");
    CHECK(c.upstreams[0].host == "127.0.0.1");
    CHECK(c.upstreams[0].port == 9000);
    REQUIRE(c.routes.size() == 2);
    const Route* limited = nullptr;
    const Route* root = nullptr;
    for (const auto& r : c.routes) (r.prefix == "/" ? root : limited) = &r;
    REQUIRE(root);
    REQUIRE(limited);
    CHECK(root->problem.normalize);
    CHECK_FALSE(root->rate_limit);
    CHECK(limited->prefix == "/api/limited");
    REQUIRE(limited->rate_limit);
    CHECK(limited->rate_limit->limit == 5);
    CHECK(limited->rate_limit->window == Duration{10'000});
    CHECK(limited->rate_limit->key == RateLimitPolicy::Key::client_ip);
  }

  TEST_CASE("example-full sets every section") {
    const Config c = load_config_file(PROBLEMGATE_SOURCE_DIR "/config/example-full.yaml");
    CHECK(c.trusted_proxies.size() == 2);
    CHECK(c.problem.type_base == "https://docs.example.com/errors#");
    CHECK(c.problem.catalog.count(418) == 1);
    CHECK(c.problem.legacy_codes.count("QUOTA_EXCEEDED") == 1);
    REQUIRE(c.upstreams.size() == 4);
    CHECK(c.upstreams[3].https);
    CHECK(c.upstreams[3].port == 8443);
    REQUIRE(c.listen.size() == 2);
    REQUIRE(c.listen[1].tls);
    CHECK(c.listen[1].tls->certificates.size() == 2);
    CHECK(c.upstreams[1].endpoints.size() == 2);
    CHECK(c.upstreams[1].lb == problemgate::config::Upstream::Lb::least_request);
    REQUIRE(c.upstreams[1].health_check);
    CHECK(c.upstreams[1].health_check->path == "/healthz");
    CHECK(c.upstreams[0].retries.methods == problemgate::config::kRetryDefaultMethods);
    CHECK(c.routes.size() == 3);
    CHECK(c.routes[0].problem.rules.size() == 3);
    CHECK(c.routes[1].rate_limit->key == RateLimitPolicy::Key::header);
    CHECK(c.routes[1].rate_limit->header_name == "Authorization");
  }
}
