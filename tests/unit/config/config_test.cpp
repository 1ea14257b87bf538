#include "problemgate/config/config.hpp"

#include <doctest/doctest.h>

#include "problemgate/config/load.hpp"

using namespace problemgate::config;

TEST_SUITE("config.config") {
  TEST_CASE("worker threads") {
    Config c;
    CHECK(c.worker_threads() >= 1);
    c.threads = 3;
    CHECK(c.worker_threads() == 3);
  }

  TEST_CASE("endpoint to_string brackets IPv6") {
    CHECK(Endpoint{"127.0.0.1", 80, std::nullopt}.to_string() == "127.0.0.1:80");
    CHECK(Endpoint{"::1", 8080, std::nullopt}.to_string() == "[::1]:8080");
  }
}
