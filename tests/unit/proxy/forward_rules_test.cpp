#include "proxy/forward_rules.hpp"

#include <doctest/doctest.h>

#include "problemgate/config/config.hpp"

using namespace problemgate::proxy;
namespace config = problemgate::config;

namespace {
/// A GET on a pooled connection that the upstream had closed: nothing came back.
AttemptFailure stale_get() { return {true, false, false, false, false, true}; }
}  // namespace

TEST_CASE("a pooled connection closed under a bodyless idempotent request is tried once more") {
  CHECK(is_stale_pooled_close(stale_get()));
  auto f = stale_get();
  f.fresh_only = true;  // already the retry: a second close is the upstream's answer
  CHECK_FALSE(is_stale_pooled_close(f));
  f = stale_get();
  f.reused = false;  // a new connection that fails is not the keep-alive race
  CHECK_FALSE(is_stale_pooled_close(f));
  f = stale_get();
  f.got_any_byte = true;  // the upstream started answering: it may have acted
  CHECK_FALSE(is_stale_pooled_close(f));
  f = stale_get();
  f.timed_out = true;  // it may still be working on it
  CHECK_FALSE(is_stale_pooled_close(f));
  f = stale_get();
  f.has_body = true;  // the body is gone
  CHECK_FALSE(is_stale_pooled_close(f));
  f = stale_get();
  f.idempotent = false;  // a POST is never sent twice by our doing
  CHECK_FALSE(is_stale_pooled_close(f));
}

TEST_CASE("a reset moves the request elsewhere only for listed methods without a body") {
  const auto methods = config::kRetryDefaultMethods;
  AttemptFailure reset{false, false, false, false, false, true};
  CHECK(can_retry_reset(reset, true, methods, retry_method_bit("GET")));
  CHECK(can_retry_reset(reset, true, methods, retry_method_bit("HEAD")));
  CHECK(can_retry_reset(reset, true, methods, retry_method_bit("OPTIONS")));
  CHECK_FALSE(
      can_retry_reset(reset, false, methods, retry_method_bit("GET")));  // retries.on lacks it
  CHECK_FALSE(can_retry_reset(reset, true, methods, retry_method_bit("PUT")));  // opt-in only
  CHECK(can_retry_reset(reset, true, methods | config::kRetryPut, retry_method_bit("PUT")));
  CHECK_FALSE(can_retry_reset(reset, true, 0xff, retry_method_bit("POST")));  // never
  CHECK_FALSE(can_retry_reset(reset, true, 0xff, retry_method_bit("PATCH")));
  CHECK_FALSE(
      can_retry_reset(reset, true, 0xff, retry_method_bit("get")));  // methods are case-sensitive
  auto f = reset;
  f.got_any_byte = true;
  CHECK_FALSE(can_retry_reset(f, true, methods, retry_method_bit("GET")));
  f = reset;
  f.timed_out = true;
  CHECK_FALSE(can_retry_reset(f, true, methods, retry_method_bit("GET")));
  f = reset;
  f.has_body = true;
  CHECK_FALSE(can_retry_reset(f, true, methods | config::kRetryPut, retry_method_bit("PUT")));
}

TEST_CASE("the upstream keeps the connection by version, Connection and framing") {
  // HTTP/1.1: open unless it says close.
  CHECK(upstream_keeps_alive(false, false, true, 1, false, false));
  CHECK_FALSE(upstream_keeps_alive(false, false, true, 1, true, false));
  // HTTP/1.0: closed unless it says keep-alive.
  CHECK_FALSE(upstream_keeps_alive(false, false, true, 0, false, false));
  CHECK(upstream_keeps_alive(false, false, true, 0, false, true));
  // A body that ends when the upstream closes leaves nothing to reuse.
  CHECK_FALSE(upstream_keeps_alive(false, false, false, 1, false, false));
  CHECK(upstream_keeps_alive(false, true, false, 1, false, false));  // chunked
  CHECK(upstream_keeps_alive(true, false, false, 1, false, false));  // HEAD / 204 / 304
}

TEST_CASE("a 204 or 304 that announces a body broke framing") {
  CHECK(declares_forbidden_body(204, false, true, 5));
  CHECK_FALSE(declares_forbidden_body(204, false, true, 0));
  CHECK(declares_forbidden_body(204, true, false, 0));
  CHECK(declares_forbidden_body(304, true, false, 0));
  CHECK_FALSE(declares_forbidden_body(304, false, true, 120));  // the length of the stored body
  CHECK_FALSE(declares_forbidden_body(200, true, false, 0));
}

TEST_CASE("a connection is pooled only after a clean, complete exchange") {
  const ExchangeEnd clean{true, true, true, false};
  CHECK(reusable(clean));
  auto e = clean;
  e.response_complete = false;  // an oversize error body left unread, a client gone mid-body
  CHECK_FALSE(reusable(e));
  e = clean;
  e.keeps_alive = false;
  CHECK_FALSE(reusable(e));
  e = clean;
  e.request_complete = false;
  CHECK_FALSE(reusable(e));
  e = clean;
  e.forbidden_body = true;
  CHECK_FALSE(reusable(e));
}
