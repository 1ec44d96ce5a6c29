// smtp/sasl.h — the I/O-free half of SMTP AUTH (RFC 4954): mechanism names, base64 (RFC 4648,
// strict), and the PLAIN response (RFC 4616). LOGIN is the de-facto two-prompt mechanism
// (draft-murchison-sasl-login): a username, then a password, each base64.
// Owns: pure functions over bytes; smtp/session.cc runs the exchange, relay/ repeats it to
// the backend, which decides.
// Must not touch: sockets, logging (never log what these functions see: it holds passwords).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mailgate::smtp {

enum class SaslMechanism {
  kPlain,    // one response: authzid NUL authcid NUL password
  kLogin,    // two prompts: "Username:", "Password:"
  kUnknown,  // anything else (answered 504 5.5.4)
};

SaslMechanism parse_sasl_mechanism(std::string_view name);  // case-insensitive

std::string base64_encode(std::string_view bytes);
// Strict: the standard alphabet, padding required, no white space; nullopt otherwise. "=" (an
// empty initial response, RFC 4954 §4) decodes to an empty string.
std::optional<std::string> base64_decode(std::string_view text);

struct PlainResponse {
  std::string authzid;   // may be empty: act as authcid
  std::string authcid;   // the user name
  std::string password;
};
// Splits a decoded PLAIN response; nullopt unless there are exactly two NULs and a non-empty
// authcid and password.
std::optional<PlainResponse> parse_plain_response(std::string_view decoded);

// Overwrites a string's bytes before it is freed (passwords).
void wipe(std::string& secret);

}  // namespace mailgate::smtp
