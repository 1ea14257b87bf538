#include "problemgate/http1/tls.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace problemgate::http1 {

namespace ssl = boost::asio::ssl;

namespace {

// Mozilla's "intermediate" configuration (v5.7): TLS 1.2 suites with forward secrecy and AEAD
// only; TLS 1.3 keeps OpenSSL's defaults, which are the same three suites Mozilla lists.
constexpr const char* kIntermediateCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

/// OpenSSL's reason for the last failure (and clears the queue).
std::string openssl_reason() {
  unsigned long last = 0;
  while (const unsigned long e = ERR_get_error()) last = e;
  if (last == 0) return "unknown error";
  const char* r = ERR_reason_error_string(last);
  return r ? r : "error " + std::to_string(last);
}

[[noreturn]] void fail(const std::string& file, const std::string& what) {
  throw std::runtime_error(file + ": " + what);
}

/// A file that cannot be opened is named with the system's reason, before OpenSSL says
/// something vaguer ("system lib").
void check_readable(const std::string& file) {
  std::ifstream in(file);
  if (!in) fail(file, "cannot open: " + std::string(std::strerror(errno)));
}

void load_pair(SSL_CTX* ctx, const CertFiles& f) {
  check_readable(f.cert);
  check_readable(f.key);
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, f.cert.c_str()) != 1)
    fail(f.cert, "cannot load the certificate chain: " + openssl_reason());
  if (SSL_CTX_use_PrivateKey_file(ctx, f.key.c_str(), SSL_FILETYPE_PEM) != 1)
    fail(f.key, "cannot load the private key: " + openssl_reason());
  if (SSL_CTX_check_private_key(ctx) != 1)
    fail(f.key,
         "the private key does not match the certificate " + f.cert + ": " + openssl_reason());
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned inlen, void* arg) {
  const auto& wire = *static_cast<const std::string*>(arg);
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;  // no protocol in common: go on without ALPN, as nginx does
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

int reason_of(const boost::system::error_code& ec) {
  if (ec.category() != boost::asio::error::get_ssl_category()) return 0;
  return ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
}

}  // namespace

ServerTls::~ServerTls() = default;

int ServerTls::on_server_name(SSL* ssl_conn, int*, void* arg) {
  const auto& self = *static_cast<const ServerTls*>(arg);
  const char* name = SSL_get_servername(ssl_conn, TLSEXT_NAMETYPE_host_name);
  if (!name || self.contexts_.size() < 2) return SSL_TLSEXT_ERR_OK;
  const std::size_t len = std::strlen(name);
  for (const auto& e : self.contexts_) {
    X509* cert = SSL_CTX_get0_certificate(e.ctx->native_handle());
    if (cert &&
        X509_check_host(cert, name, len, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1) {
      if (&e != &self.contexts_.front()) SSL_set_SSL_CTX(ssl_conn, e.ctx->native_handle());
      return SSL_TLSEXT_ERR_OK;
    }
  }
  return SSL_TLSEXT_ERR_OK;  // unknown name: the default certificate
}

std::shared_ptr<const ServerTls> ServerTls::make(const ServerTlsSettings& settings) {
  std::shared_ptr<ServerTls> tls(new ServerTls());
  for (const auto& p : settings.alpn) {
    tls->alpn_wire_ += static_cast<char>(p.size());
    tls->alpn_wire_ += p;
  }
  for (const auto& files : settings.certificates) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    SSL_CTX* c = ctx->native_handle();
    SSL_CTX_set_min_proto_version(c, settings.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
    // No compression (CRIME), no renegotiation (nginx, Mozilla), the client's cipher order
    // (Mozilla intermediate: every suite offered is strong).
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_cipher_list(c, kIntermediateCiphers);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
    static constexpr unsigned char kSessionContext[] = "problemgate";
    SSL_CTX_set_session_id_context(c, kSessionContext, sizeof kSessionContext - 1);
    load_pair(c, files);
    if (!settings.client_ca.empty()) {
      check_readable(settings.client_ca);
      ERR_clear_error();
      if (SSL_CTX_load_verify_locations(c, settings.client_ca.c_str(), nullptr) != 1)
        fail(settings.client_ca, "cannot load the client CA bundle: " + openssl_reason());
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.client_ca.c_str());
      if (names) SSL_CTX_set_client_CA_list(c, names);
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    if (!tls->alpn_wire_.empty()) SSL_CTX_set_alpn_select_cb(c, select_alpn, &tls->alpn_wire_);
    tls->contexts_.push_back(Entry{std::move(ctx), {}});
  }
  if (tls->contexts_.empty()) throw std::runtime_error("no certificate");
  SSL_CTX* first = tls->contexts_.front().ctx->native_handle();
  SSL_CTX_set_tlsext_servername_callback(first, &ServerTls::on_server_name);
  SSL_CTX_set_tlsext_servername_arg(first, tls.get());
  return tls;
}

std::shared_ptr<ssl::context> make_client_context(const ClientTlsSettings& settings) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* c = ctx->native_handle();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  ERR_clear_error();
  if (settings.verify) {
    if (settings.ca_file.empty()) {
      if (SSL_CTX_set_default_verify_paths(c) != 1)
        throw std::runtime_error("the system trust store: cannot load: " + openssl_reason());
    } else {
      check_readable(settings.ca_file);
      if (SSL_CTX_load_verify_locations(c, settings.ca_file.c_str(), nullptr) != 1)
        fail(settings.ca_file, "cannot load the CA bundle: " + openssl_reason());
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
  }
  if (!settings.cert.empty()) load_pair(c, CertFiles{settings.cert, settings.key});
  return ctx;
}

void prepare_client(DeadlineSocket::tls_stream& stream, const std::string& server_name,
                    bool verify) {
  SSL* s = stream.native_handle();
  const bool ip = is_ip_literal(server_name);
  if (!ip) SSL_set_tlsext_host_name(s, server_name.c_str());
  if (!verify) return;
  if (ip) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), server_name.c_str());
  } else {
    SSL_set_hostflags(s, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_set1_host(s, server_name.c_str());
  }
}

std::string_view handshake_failure_reason(const boost::system::error_code& ec, bool timed_out) {
  if (timed_out) return "timeout";
  if (ec == boost::asio::error::eof || ec == ssl::error::stream_truncated ||
      ec == boost::asio::error::connection_reset || ec == boost::asio::error::broken_pipe)
    return "closed";
  switch (reason_of(ec)) {
    case SSL_R_HTTP_REQUEST: return "http_request";
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE: return "no_client_certificate";
    case SSL_R_CERTIFICATE_VERIFY_FAILED: return "bad_certificate";
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION: return "unsupported_protocol";
    case SSL_R_NO_SHARED_CIPHER: return "no_shared_cipher";
    default: return "protocol_error";
  }
}

bool is_certificate_error(const boost::system::error_code& ec) {
  return reason_of(ec) == SSL_R_CERTIFICATE_VERIFY_FAILED;
}

std::string peer_subject(DeadlineSocket::tls_stream& stream) {
  X509* cert = SSL_get0_peer_certificate(stream.native_handle());
  if (!cert) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio) return {};
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, n > 0 ? static_cast<std::size_t>(n) : 0);
  BIO_free(bio);
  return out;
}

}  // namespace problemgate::http1
