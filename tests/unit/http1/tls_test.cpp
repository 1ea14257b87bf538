#include "problemgate/http1/tls.hpp"

#include <doctest/doctest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

using problemgate::http1::ClientTlsSettings;
using problemgate::http1::handshake_failure_reason;
using problemgate::http1::is_certificate_error;
using problemgate::http1::make_client_context;
using problemgate::http1::ServerTls;
using problemgate::http1::ServerTlsSettings;

namespace {

std::string what_of(auto&& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no error";
}

/// A file with `text` in the test's temp directory (removed by the fixture).
struct TempFile {
  explicit TempFile(const std::string& text)
      : path((std::filesystem::temp_directory_path() /
              ("pg-tls-unit-" + std::to_string(::getpid()) + ".pem"))
                 .string()) {
    std::ofstream(path) << text;
  }
  ~TempFile() { std::filesystem::remove(path); }
  std::string path;
};

boost::system::error_code ssl_error(int reason) {
  return {static_cast<int>(ERR_PACK(ERR_LIB_SSL, 0, reason)),
          boost::asio::error::get_ssl_category()};
}

}  // namespace

TEST_SUITE("http1.tls") {
  TEST_CASE("a certificate file that cannot be used is named with the reason") {
    ServerTlsSettings s;
    s.certificates = {{"/nonexistent/pg.pem", "/nonexistent/pg.key"}};
    CHECK(what_of([&] { ServerTls::make(s); }) ==
          "/nonexistent/pg.pem: cannot open: No such file or directory");
    TempFile garbage("not a certificate\n");
    s.certificates = {{garbage.path, garbage.path}};
    CHECK(what_of([&] {
            ServerTls::make(s);
          }).starts_with(garbage.path + ": cannot load the certificate chain: "));
    CHECK(what_of([&] { ServerTls::make(ServerTlsSettings{}); }) == "no certificate");
  }

  TEST_CASE("client contexts: system store, a CA file, no verification") {
    CHECK(make_client_context(ClientTlsSettings{}) != nullptr);
    CHECK(make_client_context(ClientTlsSettings{"", false, "", ""}) != nullptr);
    CHECK(what_of([] {
            make_client_context(ClientTlsSettings{"/nonexistent/ca.pem", true, "", ""});
          }) == "/nonexistent/ca.pem: cannot open: No such file or directory");
    TempFile garbage("junk\n");
    CHECK(what_of([&] {
            make_client_context(ClientTlsSettings{garbage.path, true, "", ""});
          }).starts_with(garbage.path + ": cannot load the CA bundle: "));
    CHECK(what_of([&] {
            make_client_context(ClientTlsSettings{"", true, garbage.path, garbage.path});
          }).starts_with(garbage.path + ": cannot load the certificate chain: "));
  }

  TEST_CASE("handshake failures by reason") {
    CHECK(handshake_failure_reason(boost::asio::error::operation_aborted, true) == "timeout");
    CHECK(handshake_failure_reason(boost::asio::error::eof, false) == "closed");
    CHECK(handshake_failure_reason(boost::asio::ssl::error::stream_truncated, false) == "closed");
    CHECK(handshake_failure_reason(ssl_error(SSL_R_HTTP_REQUEST), false) == "http_request");
    CHECK(handshake_failure_reason(ssl_error(SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE), false) ==
          "no_client_certificate");
    CHECK(handshake_failure_reason(ssl_error(SSL_R_CERTIFICATE_VERIFY_FAILED), false) ==
          "bad_certificate");
    CHECK(handshake_failure_reason(ssl_error(SSL_R_NO_SHARED_CIPHER), false) == "no_shared_cipher");
    CHECK(handshake_failure_reason(ssl_error(SSL_R_UNSUPPORTED_PROTOCOL), false) ==
          "unsupported_protocol");
    CHECK(handshake_failure_reason(ssl_error(SSL_R_WRONG_VERSION_NUMBER), false) ==
          "protocol_error");
  }

  TEST_CASE("only a verification failure is a certificate error (RFC 9209)") {
    CHECK(is_certificate_error(ssl_error(SSL_R_CERTIFICATE_VERIFY_FAILED)));
    CHECK_FALSE(is_certificate_error(ssl_error(SSL_R_WRONG_VERSION_NUMBER)));
    CHECK_FALSE(is_certificate_error(boost::asio::error::connection_reset));
  }
}
