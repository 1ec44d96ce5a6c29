// plugins/routing/srs.h — the Sender Rewriting Scheme: envelope senders a
// forwarder can use without breaking SPF, and the way back for bounces.
//
// Owns: the address formats (the common scheme of Shevek's SRS paper and
// libsrs2), the hash and the timestamp. Forward:
//   alice@orig.example       -> SRS0=HHHH=TT=orig.example=alice@fwd.example
//   SRS0=hhhh=tt=d=u@hop1    -> SRS1=HHHH=hop1==hhhh=tt=d=u@fwd.example
//   (re-forwarding) SRS1=xxxx=hop1==rest@hop2 ->
//   SRS1=HHHH=hop1==rest@fwd.example        (the first hop kept)
// HHHH: the first `hash_length` characters of base64(HMAC-SHA1(secret,
// fields)), the fields lower-cased (TT, domain, local for SRS0; the first hop
// and the rest for SRS1) so a hop that changes the case of an address does not
// break it; compared case-insensitively too. TT: days since the epoch mod 1024
// in two base32 characters; an SRS0 address older than max_age_days is refused.
// Reverse undoes one step: SRS0 -> the original address, SRS1 -> the SRS0
// address at the first hop. The first secret signs; every secret in the list is
// accepted on the way back (so a secret can be rotated without refusing bounces
// of mail already forwarded). Threading: immutable after construction; any
// thread. Must not touch: the SDK (pure code, unit tested on its own), SMTP
// replies (the plugin maps errors to them).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::routing {

struct SrsConfig {
  std::string domain;                // the forwarding domain the SRS addresses live in
  std::vector<std::string> secrets;  // [0] signs; all verify
  int hash_length = 4;               // base64 characters kept, 4..27
  int max_age_days = 21;             // 1..1023
};

enum class SrsStatus {
  kOk,
  kNotSrs,     // the local part does not start with SRS0/SRS1 and a separator
  kMalformed,  // SRS0/SRS1 but not the right number of fields
  kBadHash,    // no secret gives this hash
  kExpired,    // SRS0 timestamp older than max_age_days (or in the future)
};

struct SrsResult {
  SrsStatus status = SrsStatus::kNotSrs;
  std::string address;  // kOk: the rewritten address
};

// "ok", "not an SRS address", "malformed SRS address", "bad SRS hash", "expired
// SRS address".
std::string_view to_string(SrsStatus status);

class Srs {
 public:
  // Throws std::invalid_argument naming the setting when the configuration is
  // unusable.
  explicit Srs(SrsConfig config);

  // The SRS sender for `sender` (local@domain, not empty), at `now_s` (Unix
  // seconds).
  std::string forward(std::string_view sender, uint64_t now_s) const;
  // One step back for an SRS address at any domain (the caller checks the
  // domain).
  SrsResult reverse(std::string_view address, uint64_t now_s) const;
  // Does the local part start with SRS0 or SRS1 and a separator ('=', '+' or
  // '-')?
  static bool is_srs(std::string_view local_part);

  const SrsConfig &config() const { return config_; }

 private:
  std::string hash(const std::string &secret, std::initializer_list<std::string_view> fields) const;
  bool hash_ok(std::string_view given, std::initializer_list<std::string_view> fields) const;

  SrsConfig config_;
};

}  // namespace mailgate::routing
