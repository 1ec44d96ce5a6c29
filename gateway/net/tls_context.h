// net/tls_context.h — the server side TLS configuration: one OpenSSL SSL_CTX (through
// asio::ssl::context) holding the certificate chain and private key from --tls_cert/--tls_key.
// Owns: loading and checking the PEM files, the protocol floor (TLS 1.2), the cipher and
// option choices. A context is immutable once built; SIGHUP builds a new one (server/), new
// sessions take it and running sessions keep the one they started with (shared_ptr).
// Must not touch: sockets and sessions (smtp/client_stream.cc runs the handshakes).
// Thread-safety: a built context is shared by the I/O threads; OpenSSL's SSL_CTX is safe for
// concurrent SSL_new once configured.
#pragma once

#include <memory>
#include <string>

#include <asio/ssl/context.hpp>

#include "util/expected.h"

namespace mailgate::net {

class TlsContext {
 public:
  // Loads the PEM certificate chain (leaf first) and the PEM private key, and checks that they
  // belong together. Errors name the flag and the file: "--tls_cert=/x.pem: cannot load the
  // certificate chain: no start line".
  static Expected<std::shared_ptr<const TlsContext>, std::string> load(
      const std::string& cert_file, const std::string& key_file);

  // asio's stream wants a mutable context; SSL_new only takes a reference to the SSL_CTX.
  asio::ssl::context& native() const { return ctx_; }
  // "subject CN=mx.example, expires 2027-01-01" for the log line of a (re)load.
  const std::string& description() const { return description_; }

  explicit TlsContext(asio::ssl::context ctx) : ctx_(std::move(ctx)) {}

 private:
  mutable asio::ssl::context ctx_;
  std::string description_;
};

// Details of an established TLS connection, for plugins, Received and logs.
struct TlsInfo {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_256_GCM_SHA384"
  int bits = 0;         // secret bits of the cipher
};

}  // namespace mailgate::net
