#pragma once
#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "problemgate/http1/deadline_socket.hpp"

namespace problemgate::http1 {

/// A certificate chain (PEM, leaf first) and its private key.
struct CertFiles {
  std::string cert;
  std::string key;
};

/// What a TLS listener is built from (config `listen[].tls`).
struct ServerTlsSettings {
  std::vector<CertFiles> certificates;  ///< the first is the default; the others by SNI
  bool tls13_only = false;              ///< min_version "1.3" (else 1.2)
  std::vector<std::string> alpn;        ///< offered protocols, in preference order
  std::string client_ca;                ///< PEM bundle; set = a client certificate is required
};

/// The TLS contexts of one listener: one per certificate, the first the default. A client's
/// SNI picks the certificate whose names (subjectAltName DNS entries, `*.` wildcards; the CN
/// when there are none) match; no match or no SNI gets the default. Immutable once made and
/// shared by every worker (an SSL_CTX is safe to create connections from on several threads);
/// a reload makes a new one, and connections keep the one they were accepted with.
class ServerTls {
 public:
  /// Reads every file now. Throws std::runtime_error naming the file and the reason
  /// ("/etc/tls/a.pem: cannot load the certificate chain: no start line").
  static std::shared_ptr<const ServerTls> make(const ServerTlsSettings& settings);

  /// The context new connections start with (its SNI callback may switch them to another).
  boost::asio::ssl::context& context() const noexcept { return *contexts_.front().ctx; }

  ServerTls(const ServerTls&) = delete;
  ServerTls& operator=(const ServerTls&) = delete;
  ~ServerTls();

 private:
  ServerTls() = default;
  struct Entry {
    std::unique_ptr<boost::asio::ssl::context> ctx;
    std::vector<std::string> names;  ///< lowercase DNS names, wildcards as "*.example.com"
  };
  static int on_server_name(SSL* ssl, int* alert, void* arg);
  std::vector<Entry> contexts_;
  std::string alpn_wire_;  ///< the ALPN list in wire format (length-prefixed)
};

/// What an upstream's TLS client context is built from (config `upstreams.*.tls`).
struct ClientTlsSettings {
  std::string ca_file;  ///< empty = the system's trust store
  bool verify = true;
  std::string cert;  ///< client certificate (mTLS), with key
  std::string key;
};

/// A client context for one upstream. Throws std::runtime_error naming the file and reason.
std::shared_ptr<boost::asio::ssl::context> make_client_context(const ClientTlsSettings& settings);

/// Sets SNI (unless `server_name` is an IP literal) and, with `verify`, the name the
/// certificate must carry (a DNS name, or an IP address in its subjectAltName).
void prepare_client(DeadlineSocket::tls_stream& stream, const std::string& server_name,
                    bool verify);

/// Why a handshake failed, as a metric label: "timeout", "closed", "http_request" (plain HTTP
/// to a TLS port), "no_client_certificate", "bad_certificate" (the peer's did not verify),
/// "unsupported_protocol", "no_shared_cipher", "protocol_error".
std::string_view handshake_failure_reason(const boost::system::error_code& ec, bool timed_out);

/// True when a client handshake failed because the server's certificate did not verify
/// (RFC 9209 tls_certificate_error); other failures are tls_protocol_error.
bool is_certificate_error(const boost::system::error_code& ec);

/// "CN=client,O=Example": the verified client certificate's subject, or empty.
std::string peer_subject(DeadlineSocket::tls_stream& stream);

}  // namespace problemgate::http1
