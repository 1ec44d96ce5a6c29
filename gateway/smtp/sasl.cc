// smtp/sasl.cc — see sasl.h.
#include "smtp/sasl.h"

#include <openssl/crypto.h>

#include <cstdint>

#include "util/ascii.h"

namespace mailgate::smtp {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

SaslMechanism parse_sasl_mechanism(std::string_view name) {
  if (iequals(name, "PLAIN")) return SaslMechanism::kPlain;
  if (iequals(name, "LOGIN")) return SaslMechanism::kLogin;
  return SaslMechanism::kUnknown;
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                 uint8_t(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text == "=") return std::string();
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int a = sextet(text[i]), b = sextet(text[i + 1]);
    if (a < 0 || b < 0) return std::nullopt;
    const bool pad3 = text[i + 2] == '=', pad4 = text[i + 3] == '=';
    if ((pad3 || pad4) && !last) return std::nullopt;
    if (pad3 && !pad4) return std::nullopt;
    int c = pad3 ? 0 : sextet(text[i + 2]);
    int d = pad4 ? 0 : sextet(text[i + 3]);
    if (c < 0 || d < 0) return std::nullopt;
    uint32_t v = (uint32_t(a) << 18) | (uint32_t(b) << 12) | (uint32_t(c) << 6) | uint32_t(d);
    out += static_cast<char>((v >> 16) & 0xFF);
    if (!pad3) out += static_cast<char>((v >> 8) & 0xFF);
    if (!pad4) out += static_cast<char>(v & 0xFF);
  }
  return out;
}

std::optional<PlainResponse> parse_plain_response(std::string_view decoded) {
  size_t first = decoded.find('\0');
  if (first == std::string_view::npos) return std::nullopt;
  size_t second = decoded.find('\0', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  if (decoded.find('\0', second + 1) != std::string_view::npos) return std::nullopt;
  PlainResponse r;
  r.authzid = std::string(decoded.substr(0, first));
  r.authcid = std::string(decoded.substr(first + 1, second - first - 1));
  r.password = std::string(decoded.substr(second + 1));
  if (r.authcid.empty() || r.password.empty()) {
    wipe(r.password);
    return std::nullopt;
  }
  return r;
}

void wipe(std::string& secret) {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
  secret.clear();
}

}  // namespace mailgate::smtp
