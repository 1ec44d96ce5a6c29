// policy/dkim_key.h — DKIM signing keys as the policy database keeps them (table dkim_keys).
// Owns: the rules for a dkim_keys row's selector, algorithm and PEM private key (used by the
// snapshot loader and by `mailgatectl dkim`, so both refuse exactly the same), making a new key
// pair with OpenSSL, and the DNS TXT record that publishes its public half (RFC 6376 section
// 3.6.1; ed25519 keys as in RFC 8463: the raw 32-byte key, not SubjectPublicKeyInfo).
// Checks return nullopt or a message that reads after the column name, like validate.h's.
// Threading: pure functions (OpenSSL 3 is thread-safe for these calls).
// Must not touch: SQLite (rows come in as text), signing messages (the dkim_sign plugin does).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/validate.h"
#include "util/expected.h"

namespace mailgate::policy {

inline constexpr int kDkimMinRsaBits = 1024;  // RFC 8301 section 3.2
inline constexpr int kDkimMaxRsaBits = 4096;
inline constexpr int kDkimDefaultRsaBits = 2048;

// 'rsa-sha256' or 'ed25519-sha256' (the DKIM a= names).
Problem check_dkim_algorithm(std::string_view algorithm);
// One or more dot-separated labels of A-Z, a-z, 0-9, '-', '_' (1..63 characters each, no
// leading or trailing '-'), at most 253 characters in all.
Problem check_dkim_selector(std::string_view selector);
// An unencrypted PEM private key (PKCS#8 or PKCS#1) of the algorithm's type; RSA keys of
// kDkimMinRsaBits..kDkimMaxRsaBits bits. E.g. "is not a valid RSA PEM key", "is an ed25519
// key, but algorithm is rsa-sha256", "is a 512-bit RSA key; DKIM needs 1024..4096 bits".
Problem check_dkim_private_key(std::string_view algorithm, std::string_view pem);

struct DkimKeyPair {
  std::string private_pem;  // PKCS#8 PEM, unencrypted
  std::string public_b64;   // the p= value: base64 SubjectPublicKeyInfo (RSA) or raw key (ed25519)
};

// A fresh key: algorithm 'rsa-sha256' (with `rsa_bits`, checked against the limits above) or
// 'ed25519-sha256' (rsa_bits ignored). Errors name what failed.
Expected<DkimKeyPair, std::string> generate_dkim_key(std::string_view algorithm, int rsa_bits);

// The p= value of an existing private key (as generate_dkim_key() would report it).
Expected<std::string, std::string> dkim_public_key(std::string_view algorithm,
                                                   std::string_view private_pem);

// The TXT record's text, "v=DKIM1; k=rsa; p=MIIB...", split into DNS character-strings of at
// most 255 bytes, for a zone file:
//   sel1._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa; p=MIIB..." "...rest" )
std::string dkim_txt_value(std::string_view algorithm, std::string_view public_b64);
std::string dkim_txt_record(std::string_view domain, std::string_view selector,
                            std::string_view algorithm, std::string_view public_b64);

}  // namespace mailgate::policy
