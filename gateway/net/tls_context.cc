// net/tls_context.cc — see tls_context.h.
#include "net/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>

namespace mailgate::net {
namespace {

// The reason OpenSSL left on its error queue (or asio's message), without the queue.
std::string ssl_reason(const std::error_code& ec) {
  unsigned long e = ERR_peek_last_error();
  std::string text = e != 0 ? ERR_reason_error_string(e) ? ERR_reason_error_string(e) : ""
                            : std::string();
  ERR_clear_error();
  if (text.empty()) text = ec ? ec.message() : std::string("unknown error");
  return text;
}

std::string name_of(X509_NAME* name) {
  if (name == nullptr) return "?";
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio) return "?";
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string("?");
}

std::string time_of(const ASN1_TIME* t) {
  if (t == nullptr) return "?";
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio) return "?";
  ASN1_TIME_print(bio.get(), t);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string("?");
}

}  // namespace

Expected<std::shared_ptr<const TlsContext>, std::string> TlsContext::load(
    const std::string& cert_file, const std::string& key_file) {
  if (cert_file.empty() || key_file.empty())
    return unexpected(std::string("--tls_cert and --tls_key: both are needed for TLS"));
  ERR_clear_error();
  asio::ssl::context ctx(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx.native_handle();
  // TLS 1.2 is the floor (RFC 8996 retired 1.0 and 1.1); compression off (CRIME); the server
  // picks the cipher; no renegotiation initiated by the client.
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1)
    return unexpected("--tls_cert: cannot set the minimum TLS version: " + ssl_reason({}));
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                  SSL_OP_NO_RENEGOTIATION | SSL_OP_SINGLE_DH_USE);
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  std::error_code ec;
  ctx.use_certificate_chain_file(cert_file, ec);
  if (ec) {
    return unexpected("--tls_cert=" + cert_file + ": cannot load the certificate chain: " +
                      ssl_reason(ec));
  }
  ctx.use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec) {
    return unexpected("--tls_key=" + key_file + ": cannot load the private key: " +
                      ssl_reason(ec));
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return unexpected("--tls_key=" + key_file + ": does not match the certificate in --tls_cert=" +
                      cert_file + ": " + ssl_reason({}));
  }
  auto out = std::make_shared<TlsContext>(std::move(ctx));
  X509* leaf = SSL_CTX_get0_certificate(native);
  if (leaf != nullptr) {
    out->description_ = "subject " + name_of(X509_get_subject_name(leaf)) + ", expires " +
                        time_of(X509_get0_notAfter(leaf));
  }
  return std::shared_ptr<const TlsContext>(std::move(out));
}

}  // namespace mailgate::net
