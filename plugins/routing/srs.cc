// plugins/routing/srs.cc — see srs.h.
#include "srs.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <stdexcept>

namespace mailgate::routing {
namespace {

constexpr std::string_view kBase32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr uint64_t kDay = 86'400;
constexpr int kTimeSlots = 1024;  // two base32 characters

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char &c : out) c = lower(c);
  return out;
}

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool is_separator(char c) { return c == '=' || c == '+' || c == '-'; }

int today(uint64_t now_s) { return static_cast<int>((now_s / kDay) % kTimeSlots); }

std::string encode_time(int slot) {
  return {kBase32[static_cast<size_t>(slot >> 5) & 31], kBase32[static_cast<size_t>(slot) & 31]};
}

// -1 when not two base32 characters (either case).
int decode_time(std::string_view tt) {
  if (tt.size() != 2) return -1;
  int slot = 0;
  for (char c : tt) {
    const char up = c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
    const size_t v = kBase32.find(up);
    if (v == std::string_view::npos) return -1;
    slot = slot * 32 + static_cast<int>(v);
  }
  return slot;
}

// Splits `s` at the first '=': head and the rest; false when there is none.
bool cut(std::string_view s, std::string_view *head, std::string_view *rest) {
  const size_t eq = s.find('=');
  if (eq == std::string_view::npos) return false;
  *head = s.substr(0, eq);
  *rest = s.substr(eq + 1);
  return true;
}

}  // namespace

std::string_view to_string(SrsStatus status) {
  switch (status) {
    case SrsStatus::kOk:
      return "ok";
    case SrsStatus::kNotSrs:
      return "not an SRS address";
    case SrsStatus::kMalformed:
      return "malformed SRS address";
    case SrsStatus::kBadHash:
      return "bad SRS hash";
    case SrsStatus::kExpired:
      return "expired SRS address";
  }
  return "?";
}

Srs::Srs(SrsConfig config) : config_(std::move(config)) {
  if (config_.domain.empty()) throw std::invalid_argument("setting \"srs_domain\" is empty");
  if (config_.secrets.empty())
    throw std::invalid_argument("setting \"srs_secrets\" must hold at least one secret");
  for (const std::string &s : config_.secrets)
    if (s.size() < 16)
      throw std::invalid_argument(
          "setting \"srs_secrets\": every secret needs 16 characters or more");
  if (config_.hash_length < 4 || config_.hash_length > 27)
    throw std::invalid_argument("setting \"srs_hash_length\" must be an integer from 4 to 27");
  if (config_.max_age_days < 1 || config_.max_age_days >= kTimeSlots)
    throw std::invalid_argument("setting \"srs_max_age_days\" must be an integer from 1 to 1023");
  config_.domain = lower(config_.domain);
}

bool Srs::is_srs(std::string_view local) {
  return local.size() > 4 &&
         (iequal(local.substr(0, 4), "SRS0") || iequal(local.substr(0, 4), "SRS1")) &&
         is_separator(local[4]);
}

std::string Srs::hash(const std::string &secret,
                      std::initializer_list<std::string_view> fields) const {
  std::string data;
  for (std::string_view f : fields) data += lower(f);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char *>(data.data()), data.size(), mac, &mac_len);
  unsigned char b64[64];
  const int n = EVP_EncodeBlock(b64, mac, static_cast<int>(mac_len));
  return std::string(reinterpret_cast<const char *>(b64),
                     static_cast<size_t>(std::min(n, config_.hash_length)));
}

bool Srs::hash_ok(std::string_view given, std::initializer_list<std::string_view> fields) const {
  if (given.size() != static_cast<size_t>(config_.hash_length)) return false;
  for (const std::string &secret : config_.secrets)
    if (iequal(hash(secret, fields), given)) return true;
  return false;
}

std::string Srs::forward(std::string_view sender, uint64_t now_s) const {
  const size_t at = sender.rfind('@');
  const std::string_view local = sender.substr(0, at);
  const std::string_view domain = at == std::string_view::npos ? "" : sender.substr(at + 1);
  const std::string &key = config_.secrets.front();
  if (is_srs(local) && iequal(local.substr(0, 4), "SRS1")) {
    // SRS1<sep>hash=hop=rest: keep the first hop and the rest, sign them again.
    std::string_view old_hash, hop, rest;
    if (cut(local.substr(5), &old_hash, &rest) && cut(rest, &hop, &rest) && !hop.empty()) {
      return "SRS1=" + hash(key, {hop, rest}) + "=" + std::string(hop) + "=" + std::string(rest) +
             "@" + config_.domain;
    }
  } else if (is_srs(local)) {
    // SRS0 from the previous hop: SRS1=hash=hop=<sep>rest-of-SRS0.
    const std::string_view rest = local.substr(4);
    return "SRS1=" + hash(key, {domain, rest}) + "=" + std::string(domain) + "=" +
           std::string(rest) + "@" + config_.domain;
  }
  const std::string tt = encode_time(today(now_s));
  return "SRS0=" + hash(key, {tt, domain, local}) + "=" + tt + "=" + std::string(domain) + "=" +
         std::string(local) + "@" + config_.domain;
}

SrsResult Srs::reverse(std::string_view address, uint64_t now_s) const {
  const size_t at = address.rfind('@');
  const std::string_view local = address.substr(0, at);
  if (at == std::string_view::npos || !is_srs(local)) return {SrsStatus::kNotSrs, {}};
  const bool srs1 = iequal(local.substr(0, 4), "SRS1");
  std::string_view given, rest;
  if (!cut(local.substr(5), &given, &rest)) return {SrsStatus::kMalformed, {}};
  if (srs1) {
    std::string_view hop;
    if (!cut(rest, &hop, &rest) || hop.empty() || rest.empty() || !is_separator(rest[0]))
      return {SrsStatus::kMalformed, {}};
    if (!hash_ok(given, {hop, rest})) return {SrsStatus::kBadHash, {}};
    return {SrsStatus::kOk, "SRS0" + std::string(rest) + "@" + std::string(hop)};
  }
  std::string_view tt, domain, user;
  if (!cut(rest, &tt, &rest) || !cut(rest, &domain, &user) || domain.empty() || user.empty())
    return {SrsStatus::kMalformed, {}};
  const int slot = decode_time(tt);
  if (slot < 0) return {SrsStatus::kMalformed, {}};
  if (!hash_ok(given, {tt, domain, user})) return {SrsStatus::kBadHash, {}};
  const int age = (today(now_s) - slot + kTimeSlots) % kTimeSlots;
  if (age > config_.max_age_days) return {SrsStatus::kExpired, {}};
  return {SrsStatus::kOk, std::string(user) + "@" + std::string(domain)};
}

}  // namespace mailgate::routing
