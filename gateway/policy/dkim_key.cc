// policy/dkim_key.cc — DKIM key rules, key generation and TXT records. See dkim_key.h.
#include "policy/dkim_key.h"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <vector>

namespace mailgate::policy {
namespace {

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
};
struct BioDeleter {
  void operator()(BIO* p) const noexcept { BIO_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;
using Bio = std::unique_ptr<BIO, BioDeleter>;

bool is_rsa_algorithm(std::string_view algorithm) { return algorithm == "rsa-sha256"; }

// Refuses to prompt for a pass phrase: an encrypted key simply does not load.
int no_passphrase(char*, int, int, void*) { return 0; }

// The key in `pem`, or nullptr when it is not an unencrypted PEM private key.
Pkey read_private_key(std::string_view pem) {
  if (pem.size() > (1u << 20)) return nullptr;
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  return Pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, &no_passphrase, nullptr));
}

std::string base64(const unsigned char* data, size_t len) {
  std::string out(4 * ((len + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(len));
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

Expected<std::string, std::string> public_b64(EVP_PKEY* key, bool rsa) {
  if (rsa) {
    int len = i2d_PUBKEY(key, nullptr);
    if (len <= 0) return unexpected(std::string("cannot encode the RSA public key"));
    std::vector<unsigned char> der(static_cast<size_t>(len));
    unsigned char* p = der.data();
    if (i2d_PUBKEY(key, &p) != len) return unexpected(std::string("cannot encode the public key"));
    return base64(der.data(), der.size());
  }
  unsigned char raw[64];
  size_t len = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != 32)
    return unexpected(std::string("cannot read the ed25519 public key"));
  return base64(raw, len);
}

}  // namespace

Problem check_dkim_algorithm(std::string_view algorithm) {
  if (algorithm == "rsa-sha256" || algorithm == "ed25519-sha256") return std::nullopt;
  return fmt::format("must be rsa-sha256 or ed25519-sha256 (got '{}')", algorithm);
}

Problem check_dkim_selector(std::string_view selector) {
  auto bad = [&](std::string_view why) {
    return fmt::format("'{}' is not a valid DKIM selector: {}", selector, why);
  };
  if (selector.empty()) return bad("is empty");
  if (selector.size() > 253) return bad("is longer than 253 characters");
  size_t start = 0;
  while (start <= selector.size()) {
    size_t dot = selector.find('.', start);
    if (dot == std::string_view::npos) dot = selector.size();
    std::string_view label = selector.substr(start, dot - start);
    if (label.empty()) return bad("has an empty label");
    if (label.size() > 63)
      return bad(fmt::format("label '{}' is longer than 63 characters", label));
    for (char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_';
      if (!ok)
        return bad(fmt::format("label '{}' has a character other than a-z, 0-9, '-', '_'", label));
    }
    if (label.front() == '-' || label.back() == '-')
      return bad(fmt::format("label '{}' starts or ends with '-'", label));
    start = dot + 1;
  }
  return std::nullopt;
}

Problem check_dkim_private_key(std::string_view algorithm, std::string_view pem) {
  if (auto p = check_dkim_algorithm(algorithm))
    return fmt::format("cannot be checked: algorithm {}", *p);
  const bool rsa = is_rsa_algorithm(algorithm);
  const char* kind = rsa ? "RSA" : "ed25519";
  Pkey key = read_private_key(pem);
  if (!key) return fmt::format("is not a valid {} PEM key (an unencrypted PEM private key)", kind);
  const bool key_rsa = EVP_PKEY_is_a(key.get(), "RSA") == 1;
  const bool key_ed25519 = EVP_PKEY_is_a(key.get(), "ED25519") == 1;
  if (rsa && !key_rsa) {
    return fmt::format("is {} key, but algorithm is {}", key_ed25519 ? "an ed25519" : "not an RSA",
                       algorithm);
  }
  if (!rsa && !key_ed25519) {
    return fmt::format("is {} key, but algorithm is {}", key_rsa ? "an RSA" : "not an ed25519",
                       algorithm);
  }
  if (rsa) {
    int bits = EVP_PKEY_get_bits(key.get());
    if (bits < kDkimMinRsaBits || bits > kDkimMaxRsaBits) {
      return fmt::format("is a {}-bit RSA key; DKIM needs {}..{} bits (RFC 8301)", bits,
                         kDkimMinRsaBits, kDkimMaxRsaBits);
    }
  }
  return std::nullopt;
}

Expected<DkimKeyPair, std::string> generate_dkim_key(std::string_view algorithm, int rsa_bits) {
  if (auto p = check_dkim_algorithm(algorithm)) return unexpected(fmt::format("algorithm {}", *p));
  const bool rsa = is_rsa_algorithm(algorithm);
  if (rsa && (rsa_bits < kDkimMinRsaBits || rsa_bits > kDkimMaxRsaBits)) {
    return unexpected(fmt::format("RSA keys must have {}..{} bits (RFC 8301; got {})",
                                  kDkimMinRsaBits, kDkimMaxRsaBits, rsa_bits));
  }
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, rsa ? "RSA" : "ED25519", nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1)
    return unexpected(std::string("OpenSSL cannot set up key generation"));
  if (rsa && EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), rsa_bits) != 1)
    return unexpected(fmt::format("OpenSSL refused an RSA key size of {} bits", rsa_bits));
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &raw) != 1 || raw == nullptr)
    return unexpected(std::string("OpenSSL failed to generate the key"));
  Pkey key(raw);

  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return unexpected(std::string("cannot write the private key as PEM"));
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  if (len <= 0 || data == nullptr) return unexpected(std::string("cannot write the private key"));
  DkimKeyPair pair;
  pair.private_pem.assign(data, static_cast<size_t>(len));
  auto pub = public_b64(key.get(), rsa);
  if (!pub) return unexpected(pub.error());
  pair.public_b64 = std::move(*pub);
  return pair;
}

Expected<std::string, std::string> dkim_public_key(std::string_view algorithm,
                                                   std::string_view private_pem) {
  if (auto p = check_dkim_private_key(algorithm, private_pem))
    return unexpected(fmt::format("private_key {}", *p));
  Pkey key = read_private_key(private_pem);
  return public_b64(key.get(), is_rsa_algorithm(algorithm));
}

std::string dkim_txt_value(std::string_view algorithm, std::string_view public_b64) {
  return fmt::format("v=DKIM1; k={}; p={}", is_rsa_algorithm(algorithm) ? "rsa" : "ed25519",
                     public_b64);
}

std::string dkim_txt_record(std::string_view domain, std::string_view selector,
                            std::string_view algorithm, std::string_view public_b64) {
  const std::string value = dkim_txt_value(algorithm, public_b64);
  std::string strings;
  for (size_t pos = 0; pos < value.size(); pos += 255) {
    if (!strings.empty()) strings += ' ';
    strings += fmt::format("\"{}\"", value.substr(pos, 255));
  }
  return fmt::format("{}._domainkey.{}. IN TXT ( {} )", to_lower(selector), to_lower(domain),
                     strings);
}

}  // namespace mailgate::policy
