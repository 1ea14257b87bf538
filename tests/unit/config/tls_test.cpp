// Issue 19: the TLS keys of listeners and upstreams; every error names its path and reason.
#include "problemgate/config/load.hpp"

#include <doctest/doctest.h>

#include "config_test_support.hpp"

using problemgate::config::ListenTls;
using problemgate::config::load_config_text;
using problemgate::config::restart_only_changes;
using problemgate::config::test::error_of;
using problemgate::config::test::errors_of;
using problemgate::config::test::with;

namespace {

constexpr std::string_view kRoutes = "routes:\n  - match: { prefix: / }\n";

std::string upstream_doc(std::string_view body) {
  return "upstreams:\n  a:\n" + std::string(body) + std::string(kRoutes);
}

}  // namespace

TEST_SUITE("config.tls") {
  TEST_CASE("listen: strings and {address, tls} side by side, every key") {
    const auto c = load_config_text(with(R"(listen:
  - 127.0.0.1:8080
  - address: 127.0.0.1:8443
    tls:
      cert: /tls/a.pem
      key: /tls/a.key
      certificates:
        - { cert: /tls/b.pem, key: /tls/b.key }
      min_version: "1.3"
      alpn: [http/1.1, http/1.0]
      client_ca: /tls/ca.pem
      handshake_timeout: 3s
)"),
                                    "t.yaml", {});
    REQUIRE(c.listen.size() == 2);
    CHECK_FALSE(c.listen[0].tls);
    REQUIRE(c.listen[1].tls);
    const ListenTls& t = *c.listen[1].tls;
    CHECK(c.listen[1].to_string() == "127.0.0.1:8443");
    REQUIRE(t.certificates.size() == 2);
    CHECK(t.certificates[0].cert == "/tls/a.pem");
    CHECK(t.certificates[0].key == "/tls/a.key");
    CHECK(t.certificates[1].cert == "/tls/b.pem");
    CHECK(t.min_version == ListenTls::Version::tls1_3);
    CHECK(t.alpn == std::vector<std::string>{"http/1.1", "http/1.0"});
    CHECK(t.client_ca == "/tls/ca.pem");
    CHECK(t.handshake_timeout.count() == 3000);
  }

  TEST_CASE("listen tls defaults: TLS 1.2, http/1.1, no client certificates, 10s") {
    const auto c = load_config_text(
        with("listen: [{ address: 127.0.0.1:8443, tls: { cert: /a.pem, key: /a.key } }]\n"),
        "t.yaml", {});
    REQUIRE(c.listen.size() == 1);
    REQUIRE(c.listen[0].tls);
    CHECK(c.listen[0].tls->min_version == ListenTls::Version::tls1_2);
    CHECK(c.listen[0].tls->alpn == std::vector<std::string>{"http/1.1"});
    CHECK(c.listen[0].tls->client_ca.empty());
    CHECK(c.listen[0].tls->handshake_timeout.count() == 10'000);
    // YAML reads an unquoted 1.2 as a number: it means the version all the same.
    const auto n = load_config_text(
        with(
            "listen: [{ address: 127.0.0.1:8443, tls: { cert: /a.pem, key: /a.key, min_version: 1.3 } }]\n"),
        "t.yaml", {});
    CHECK(n.listen[0].tls->min_version == ListenTls::Version::tls1_3);
  }

  TEST_CASE("listen tls mistakes name path and reason") {
    auto listen = [](std::string_view item) {
      return with("listen:\n  - " + std::string(item) + "\n");
    };
    CHECK(error_of(listen("{ tls: { cert: /a, key: /b } }")) ==
          "t.yaml:7: /listen/0: missing address (HOST:PORT)");
    CHECK(error_of(listen("{ address: 127.0.0.1:1, tls: { key: /b } }")) ==
          "t.yaml:7: /listen/0/tls: missing cert (a PEM certificate chain, leaf first)");
    CHECK(error_of(listen("{ address: 127.0.0.1:1, tls: { cert: /a } }")) ==
          "t.yaml:7: /listen/0/tls: missing key (the PEM private key of cert)");
    CHECK(error_of(listen("{ address: 127.0.0.1:1, tls: { cert: \"\", key: /b } }")) ==
          "t.yaml:7: /listen/0/tls/cert: expected a non-empty string, got \"\"");
    CHECK(error_of(listen(
              "{ address: 127.0.0.1:1, tls: { cert: /a, key: /b, min_version: \"1.1\" } }")) ==
          "t.yaml:7: /listen/0/tls/min_version: expected \"1.2\" or \"1.3\", got \"1.1\"");
    CHECK(error_of(listen("{ address: 127.0.0.1:1, tls: { cert: /a, key: /b, alpn: [h2] } }")) ==
          "t.yaml:7: /listen/0/tls/alpn/0: \"h2\": only http/1.1 and http/1.0 are served");
    CHECK(
        error_of(listen("{ address: 127.0.0.1:1, tls: { cert: /a, key: /b, alpn: h2 } }")) ==
        "t.yaml:7: /listen/0/tls/alpn: expected a list of protocol names like [http/1.1], got \"h2\"");
    CHECK(error_of(
              listen("{ address: 127.0.0.1:1, tls: { cert: /a, key: /b, handshake_timeout: 10 } }"))
              .starts_with("t.yaml:7: /listen/0/tls/handshake_timeout: invalid duration 10"));
    CHECK(
        error_of(listen(
            "{ address: 127.0.0.1:1, tls: { cert: /a, key: /b, certificates: [{ cert: /c }] } }")) ==
        "t.yaml:7: /listen/0/tls/certificates/0: missing key");
    CHECK(error_of(
              listen("{ address: 127.0.0.1:1, tls: { cert: /a, key: /b, certificates: /c } }")) ==
          "t.yaml:7: /listen/0/tls/certificates: expected a list of {cert, key}, got \"/c\"");
    CHECK(
        error_of(listen("{ address: 127.0.0.1:1, tls: { cert: /a, key: /b, ciphers: x } }"))
            .starts_with(
                "t.yaml:7: /listen/0/tls/ciphers: unknown key \"ciphers\"; expected one of: cert key"));
    CHECK(error_of(listen("{ address: 127.0.0.1:1, tcp: {} }"))
              .starts_with(
                  "t.yaml:7: /listen/0/tcp: unknown key \"tcp\"; expected one of: address tls"));
    CHECK(error_of(listen("{ address: nowhere, tls: { cert: /a, key: /b } }")) ==
          "t.yaml:7: /listen/0/address: \"nowhere\": missing port: expected HOST:PORT");
  }

  TEST_CASE("https upstreams: port 443 by default, tls keys") {
    const auto c = load_config_text(upstream_doc(R"(    url: https://api.example.com
    tls: { ca_file: /ca.pem, server_name: internal.example.com, verify: false, cert: /c.pem, key: /c.key }
)"),
                                    "t.yaml", {});
    const auto& u = c.upstreams.at(0);
    CHECK(u.https);
    CHECK(u.port == 443);
    CHECK(u.endpoints.at(0).https);
    CHECK(u.tls.ca_file == "/ca.pem");
    CHECK(u.tls.server_name == "internal.example.com");
    CHECK_FALSE(u.tls.verify);
    CHECK(u.tls.cert == "/c.pem");
    CHECK(u.tls.key == "/c.key");
    const auto d = load_config_text(
        "upstreams: { a: \"https://[::1]:8443\" }\n" + std::string(kRoutes), "t.yaml", {});
    CHECK(d.upstreams.at(0).https);
    CHECK(d.upstreams.at(0).port == 8443);
    CHECK(d.upstreams.at(0).tls.verify);  // verified against the system store by default
    CHECK(d.upstreams.at(0).tls.ca_file.empty());
  }

  TEST_CASE("upstream tls mistakes name path and reason") {
    CHECK(
        error_of(upstream_doc("    url: http://x\n    tls: { verify: false }\n")) ==
        "t.yaml:4: /upstreams/a/tls: tls settings apply to https:// upstreams; the URL is http://");
    CHECK(error_of(upstream_doc("    url: https://x\n    tls: { cert: /c.pem }\n")) ==
          "t.yaml:4: /upstreams/a/tls: cert without key: a client certificate needs both");
    CHECK(error_of(upstream_doc("    url: https://x\n    tls: { key: /c.key }\n")) ==
          "t.yaml:4: /upstreams/a/tls: key without cert: a client certificate needs both");
    CHECK(error_of(upstream_doc("    url: https://x\n    tls: { verify: maybe }\n")) ==
          "t.yaml:4: /upstreams/a/tls/verify: expected true or false, got \"maybe\"");
    CHECK(
        error_of(upstream_doc("    url: https://x\n    tls: { server_name: \"a b\" }\n")) ==
        "t.yaml:4: /upstreams/a/tls/server_name: expected a host name like api.example.com, got \"a b\"");
    CHECK(error_of(upstream_doc("    url: https://x\n    tls: { ca_file: \"\" }\n")) ==
          "t.yaml:4: /upstreams/a/tls/ca_file: expected a non-empty string, got \"\"");
    CHECK(error_of(upstream_doc("    url: https://x\n    tls: { sni: y }\n"))
              .starts_with(
                  "t.yaml:4: /upstreams/a/tls/sni: unknown key \"sni\"; expected one of: ca_file"));
    CHECK(
        error_of(upstream_doc("    endpoints: [https://x, http://y]\n")) ==
        "t.yaml:3: /upstreams/a/endpoints/1: \"http://y\": mixes http:// and https:// endpoints in one upstream");
  }

  TEST_CASE("a reload may change certificates, not whether a port speaks TLS") {
    auto cfg = [](std::string_view listen) { return load_config_text(with(listen), "t.yaml", {}); };
    const auto running =
        cfg("listen: [{ address: 127.0.0.1:8443, tls: { cert: /a.pem, key: /a.key } }]\n");
    CHECK(restart_only_changes(
              running,
              cfg("listen: [{ address: 127.0.0.1:8443, tls: { cert: /b.pem, key: /b.key } }]\n"))
              .empty());
    const auto p = restart_only_changes(running, cfg("listen: 127.0.0.1:8443\n"));
    REQUIRE(p.size() == 1);
    CHECK(p[0] ==
          "t.yaml: /listen: cannot change on a reload (runs 127.0.0.1:8443 (tls), the file says "
          "127.0.0.1:8443): restart to apply it");
  }
}
