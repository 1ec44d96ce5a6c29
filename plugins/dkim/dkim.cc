// plugins/dkim/dkim.cc — the `dkim` plugin: DomainKeys Identified Mail (RFC 6376) verification
// on libopendkim, every key fetched through the host's resolver (dkim_set_key_lookup), with the
// crypto policy of RFC 8301 (rsa-sha1 and RSA keys under 1024 bits are not acceptable).
//
// Owns: verifying every DKIM-Signature of a message, what each outcome scores, the optional
// action, the symbols other plugins read (DMARC, Authentication-Results) and the log line.
// Where:
//
//   EOM   the whole message (host->header_at for the header fields as received, folding kept;
//         host->body_read for the CRLF-canonical body) is fed to a verifying DKIM handle of
//         its own; each signature gets one result (see README.md for the symbols and their
//         details). One log line per message.
//
// Signing is not here: it is the separate `dkim_sign` plugin (sign.cc, README-sign.md), its
// own .so so that it can run last in the chain, after the plugins that edit header fields.
//
// Settings (JSON object, every key optional; unknown keys or wrong types fail create()):
//   "scores": {"valid": -1, "invalid": 2, "nokey": 0, "temperror": 0, "permerror": 0,
//              "none": 0, "sha1": 0, "weak_key": 0}
//   "reject_invalid": false         no valid signature and one invalid → 550 5.7.20
//   "tempfail_on_dns_error": false  no valid signature and one key lookup failed → 451 4.7.5
//   "max_signatures": 10            key lookups per message (1-100); later signatures are
//                                   permerror, not checked (bounds the DNS work of a message)
//
// Threads: blocking (DNS), not MG_PLUGIN_NONBLOCKING, but tried on the I/O thread first with
// DNS from the resolver's cache (MG_PLUGIN_TRY_INLINE): the keys are looked up before anything
// is hashed or written, and a key not cached sends EOM to the worker pool. One DKIM_LIB per
// plugin instance, configured in the constructor and read-only afterwards (libopendkim allows
// concurrent handles on one library handle); each message gets its own DKIM handle, and the
// key lookup finds the session through the handle's user context.
#include <array>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <mailgate/plugin.hpp>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/settings.hpp"
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "opendkim.h"

namespace {

using mailgate::Action;
using mailgate::Item;
using mailgate::LogLevel;
using mailgate::Session;

// The outcomes, each with its own symbol and score.
enum class Outcome { kValid, kInvalid, kNoKey, kTempError, kPermError };
constexpr std::size_t kOutcomeCount = 5;
constexpr std::array<const char*, kOutcomeCount> kSymbols = {
    "DKIM_VALID", "DKIM_INVALID", "DKIM_NOKEY", "DKIM_TEMPERROR", "DKIM_PERMERROR"};
constexpr std::array<const char*, kOutcomeCount> kOutcomeNames = {"valid", "invalid", "nokey",
                                                                  "temperror", "permerror"};

struct Scores {
  std::array<double, kOutcomeCount> outcome = {-1.0, 2.0, 0.0, 0.0, 0.0};
  double none = 0.0;
  double sha1 = 0.0;
  double weak_key = 0.0;
};

struct LibDeleter {
  void operator()(DKIM_LIB* lib) const noexcept { dkim_close(lib); }
};
struct HandleDeleter {
  void operator()(DKIM* d) const noexcept { dkim_free(d); }
};

// What the key lookup needs, reached through dkim_get_user_context().
struct LookupContext {
  const mg_host* host;
  mg_session* session;
  std::size_t max_lookups;
  std::size_t lookups = 0;
  std::set<std::string> failed;   // "selector._domainkey.domain" names whose lookup failed
  std::set<std::string> skipped;  // names not asked: past max_signatures key lookups
  // Keys looked up before verification (Dkim::prefetch_keys), by name; counted in `lookups`.
  std::map<std::string, mailgate::DnsResult> keys;
  bool would_block = false;  // a try on the host's I/O thread met a key not in the cache
};

// One signature's result.
struct SigResult {
  Outcome outcome = Outcome::kPermError;
  std::string domain;
  std::string selector;
  std::string algorithm;  // "rsa-sha256", "rsa-sha1", "ed25519-sha256", "unknown"
  unsigned int bits = 0;
  std::string result;     // RFC 8601 result: pass, fail, policy, neutral, temperror, permerror
  std::string reason;     // empty for pass
  std::string b_prefix;   // the first 8 characters of b= (RFC 6008 header.b)
  bool sha1 = false;
  bool weak_key = false;

  // Properties of the RFC 8601 resinfo: the signing domain, selector, algorithm and header.b.
  std::string properties() const {
    std::string p = "header.d=" + (domain.empty() ? std::string("(none)") : domain);
    if (!selector.empty()) p += " header.s=" + selector;
    if (algorithm != "unknown") p += " header.a=" + algorithm;
    if (!b_prefix.empty()) p += " header.b=" + b_prefix;
    return p;
  }

  std::string detail() const {
    std::string d = "d=" + (domain.empty() ? std::string("(none)") : domain) +
                    " s=" + (selector.empty() ? std::string("(none)") : selector) +
                    " a=" + algorithm;
    if (bits != 0) d += " bits=" + std::to_string(bits);
    d += " result=" + result;
    if (!reason.empty()) d += " reason=\"" + reason + "\"";
    return d;
  }
};

std::string sanitized(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '"' || c == ';') continue;
    out += c;
  }
  return out;
}

// The value of tag `tag` in a DKIM-Signature's tag list, whitespace removed; "" when absent.
std::string tag_value(std::string_view field, std::string_view tag) {
  std::size_t pos = 0;
  while (pos <= field.size()) {
    std::size_t end = field.find(';', pos);
    if (end == std::string_view::npos) end = field.size();
    std::string_view spec = field.substr(pos, end - pos);
    const std::size_t eq = spec.find('=');
    if (eq != std::string_view::npos) {
      std::string name;
      for (char c : spec.substr(0, eq))
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') name += c;
      if (name == tag) {
        std::string value;
        for (char c : spec.substr(eq + 1))
          if (c != ' ' && c != '\t' && c != '\r' && c != '\n') value += c;
        return value;
      }
    }
    pos = end + 1;
  }
  return {};
}

bool is_signature_field(std::string_view name) {
  return mailgate::equal_ignore_case(name, "dkim-signature");
}

// The key lookup: TXT selector._domainkey.domain through the host's resolver, the record
// copied into buf. libopendkim 2.11 reads the return value as a DKIM_CBSTAT (any other value
// fails the whole handle with DKIM_STAT_CBINVALID): NXDOMAIN/NODATA → DKIM_CBSTAT_NOTFOUND
// (the library's DKIM_STAT_NOKEY, signature error DKIM_SIGERROR_NOKEY). A failed lookup
// (TEMPFAIL/ERROR) cannot be told to the library per signature: DKIM_CBSTAT_ERROR and
// DKIM_CBSTAT_TRYAGAIN abort the whole handle (dkim_eoh returns DKIM_STAT_CBERROR), losing the
// other signatures. So it is answered DKIM_CBSTAT_NOTFOUND too and the name is remembered in
// the context; judge() turns that signature's NOKEY into temperror.
DKIM_CBSTAT key_lookup(DKIM* dkim, DKIM_SIGINFO* sig, u_char* buf, size_t buflen) {
  auto* ctx = static_cast<LookupContext*>(dkim_get_user_context(dkim));
  const unsigned char* domain = dkim_sig_getdomain(sig);
  const unsigned char* selector = dkim_sig_getselector(sig);
  if (ctx == nullptr || domain == nullptr || selector == nullptr || buf == nullptr || buflen == 0)
    return DKIM_CBSTAT_NOTFOUND;
  const std::string name = std::string(reinterpret_cast<const char*>(selector)) +
                           "._domainkey." + reinterpret_cast<const char*>(domain);
  mailgate::DnsResult queried;
  const mailgate::DnsResult* result = &queried;
  if (auto known = ctx->keys.find(name); known != ctx->keys.end()) {
    result = &known->second;
  } else if (ctx->lookups >= ctx->max_lookups) {
    ctx->skipped.insert(name);
    return DKIM_CBSTAT_NOTFOUND;
  } else {
    ++ctx->lookups;
    queried = mailgate::DnsResult(
        ctx->host, ctx->host->dns_query(ctx->session, name.c_str(), MG_DNS_TXT));
  }
  DKIM_CBSTAT status = DKIM_CBSTAT_CONTINUE;
  switch (result->status()) {
    case mailgate::DnsStatus::kOk: {
      if (result->empty()) {
        status = DKIM_CBSTAT_NOTFOUND;
        break;
      }
      // Several TXT records at the name: take the first that looks like a key record.
      const char* text = (*result)[0].text;
      for (const mg_dns_record& record : *result) {
        const char* t = record.text;
        if (t != nullptr && std::strncmp(t, "v=DKIM1", 7) == 0) {
          text = t;
          break;
        }
      }
      if (text == nullptr) {
        status = DKIM_CBSTAT_NOTFOUND;
        break;
      }
      const std::size_t len = std::strlen(text);
      if (len + 1 > buflen) {
        ctx->failed.insert(name);
        status = DKIM_CBSTAT_NOTFOUND;
        break;
      }
      std::memcpy(buf, text, len + 1);
      break;
    }
    case mailgate::DnsStatus::kNxDomain:
    case mailgate::DnsStatus::kNoData:
      status = DKIM_CBSTAT_NOTFOUND;
      break;
    case mailgate::DnsStatus::kWouldBlock:
      ctx->would_block = true;
      status = DKIM_CBSTAT_NOTFOUND;
      break;
    case mailgate::DnsStatus::kTempFail:
    case mailgate::DnsStatus::kError:
    default:
      ctx->failed.insert(name);
      status = DKIM_CBSTAT_NOTFOUND;
      break;
  }
  return status;
}

class Dkim final : public mailgate::Plugin {
 public:
  explicit Dkim(const mailgate::PluginContext& context) : Plugin(context) {
    parse_settings();
    lib_.reset(dkim_init(nullptr, nullptr));
    if (!lib_) throw std::runtime_error("dkim: dkim_init failed");
    // Keep handles of signatures that fail to parse, so each gets its permerror.
    unsigned int flags = 0;
    if (dkim_options(lib_.get(), DKIM_OP_GETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags)) !=
        DKIM_STAT_OK)
      throw std::runtime_error("dkim: cannot read the library flags");
    flags |= DKIM_LIBFLAGS_BADSIGHANDLES;
    if (dkim_options(lib_.get(), DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags)) !=
        DKIM_STAT_OK)
      throw std::runtime_error("dkim: cannot set the library flags");
    // Let the library verify small keys: the plugin judges key sizes itself (RFC 8301), so a
    // correct signature by a weak key is told apart from a broken one.
    unsigned int min_bits = 1;
    if (dkim_options(lib_.get(), DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &min_bits,
                     sizeof(min_bits)) != DKIM_STAT_OK)
      throw std::runtime_error("dkim: cannot set the minimum key size");
    if (dkim_set_key_lookup(lib_.get(), &key_lookup) != DKIM_STAT_OK)
      throw std::runtime_error("dkim: cannot set the key lookup");
  }

  Action on_eom(Session& s) override {
    const std::vector<Session::Header> headers = s.headers();
    std::size_t signature_fields = 0;
    for (const auto& h : headers)
      if (is_signature_field(h.name)) ++signature_fields;
    if (signature_fields == 0) {
      s.add_symbol("DKIM_NONE", scores_.none, "no DKIM-Signature");
      s.add_auth_result("dkim", "none", "message not signed");
      s.log(LogLevel::kInfo, "dkim: result=none signatures=0");
      return Action::kContinue;
    }

    LookupContext keys{host(), s.raw(), max_signatures_, 0, {}, {}, {}, false};
    if (!prefetch_keys(s, headers, keys)) return Action::kRetryBlocking;
    std::optional<std::vector<SigResult>> verified = verify(s, headers, keys);
    if (!verified) return Action::kRetryBlocking;
    std::vector<SigResult>& results = *verified;
    if (results.empty()) {
      // The library kept no signature: report each field as unusable.
      for (const auto& h : headers) {
        if (!is_signature_field(h.name)) continue;
        SigResult r;
        r.domain = sanitized(tag_value(h.value, "d"));
        r.selector = sanitized(tag_value(h.value, "s"));
        r.algorithm = sanitized(tag_value(h.value, "a"));
        if (r.algorithm.empty()) r.algorithm = "unknown";
        r.outcome = Outcome::kPermError;
        r.result = "permerror";
        r.reason = "signature not usable";
        results.push_back(std::move(r));
      }
    }

    std::array<std::string, kOutcomeCount> details;
    std::string sha1_detail;
    std::string weak_detail;
    const auto append = [](std::string& to, const std::string& what) {
      if (!to.empty()) to += "; ";
      to += what;
    };
    for (const SigResult& r : results) {
      s.add_auth_result("dkim", r.result, r.reason, r.properties());
      append(details[static_cast<std::size_t>(r.outcome)], r.detail());
      if (r.sha1) append(sha1_detail, r.detail());
      if (r.weak_key) append(weak_detail, r.detail());
    }
    std::string summary;
    for (std::size_t i = 0; i < kOutcomeCount; ++i) {
      if (details[i].empty()) continue;
      s.add_symbol(kSymbols[i], scores_.outcome[i], details[i]);
      if (!summary.empty()) summary += ",";
      summary += kOutcomeNames[i];
    }
    if (!sha1_detail.empty()) s.add_symbol("DKIM_SHA1", scores_.sha1, sha1_detail);
    if (!weak_detail.empty()) s.add_symbol("DKIM_WEAK_KEY", scores_.weak_key, weak_detail);

    std::string line = "dkim: result=" + summary + " signatures=" + std::to_string(results.size());
    for (const SigResult& r : results) line += " [" + r.detail() + "]";
    s.log(LogLevel::kInfo, line);

    const bool any_valid = !details[static_cast<std::size_t>(Outcome::kValid)].empty();
    if (!any_valid && reject_invalid_ &&
        !details[static_cast<std::size_t>(Outcome::kInvalid)].empty()) {
      const SigResult* first = nullptr;
      for (const SigResult& r : results)
        if (r.outcome == Outcome::kInvalid && first == nullptr) first = &r;
      return s.reject(550, "5.7.20",
                      "No passing DKIM signature found (d=" + first->domain + ": " +
                          first->reason + ")");
    }
    if (!any_valid && tempfail_on_dns_error_ &&
        !details[static_cast<std::size_t>(Outcome::kTempError)].empty()) {
      const SigResult* first = nullptr;
      for (const SigResult& r : results)
        if (r.outcome == Outcome::kTempError && first == nullptr) first = &r;
      return s.tempfail(451, "4.7.5",
                        "DKIM key lookup failed for d=" + first->domain + " s=" +
                            first->selector + ", try again later");
    }
    return Action::kContinue;
  }

 private:
  // Looks up the keys of the first max_signatures signatures before anything is hashed, so a
  // try on the host's I/O thread (MG_PLUGIN_TRY_INLINE) that meets a key not in the resolver's
  // cache gives up at once (false) instead of after verifying the message.
  bool prefetch_keys(Session& s, const std::vector<Session::Header>& headers,
                     LookupContext& ctx) const {
    for (const auto& h : headers) {
      if (!is_signature_field(h.name)) continue;
      if (ctx.lookups >= ctx.max_lookups) break;
      const std::string domain = tag_value(h.value, "d");
      const std::string selector = tag_value(h.value, "s");
      if (domain.empty() || selector.empty()) continue;  // libopendkim refuses the signature
      std::string name = selector + "._domainkey." + domain;
      if (ctx.keys.count(name) != 0) continue;
      ++ctx.lookups;
      mailgate::DnsResult key = s.dns(name, mailgate::DnsType::kTxt);
      if (key.status() == mailgate::DnsStatus::kWouldBlock) return false;
      ctx.keys.emplace(std::move(name), std::move(key));
    }
    return true;
  }

  // Every signature's result; nullopt when a try on the I/O thread met a key not cached.
  std::optional<std::vector<SigResult>> verify(Session& s,
                                               const std::vector<Session::Header>& headers,
                                               LookupContext& ctx) const {
    std::vector<SigResult> out;
    const std::string id(s.find(Item::kTxId).value_or("mailgate"));
    DKIM_STAT status = DKIM_STAT_OK;
    std::unique_ptr<DKIM, HandleDeleter> dkim(
        dkim_verify(lib_.get(), reinterpret_cast<const unsigned char*>(id.c_str()), nullptr,
                    &status));
    if (!dkim) throw std::runtime_error("dkim: dkim_verify failed (status " +
                                        std::to_string(status) + ")");
    dkim_set_user_context(dkim.get(), &ctx);

    bool fed = true;
    std::string field;
    for (std::size_t i = 0; i < headers.size(); ++i) {
      // The field's bytes as received (simple canonicalization needs them), without the CRLF
      // that ends it; a host before ABI 1.1 gives name and value only.
      const std::optional<std::string_view> raw = s.header_raw(i);
      if (raw && raw->size() >= 2 && raw->substr(raw->size() - 2) == "\r\n")
        field.assign(raw->substr(0, raw->size() - 2));
      else
        field.assign(headers[i].name).append(": ").append(headers[i].value);
      status = dkim_header(dkim.get(), reinterpret_cast<unsigned char*>(field.data()),
                           field.size());
      if (status != DKIM_STAT_OK) {
        fed = false;
        break;
      }
    }
    if (fed) status = dkim_eoh(dkim.get());
    if (fed && status == DKIM_STAT_OK) {
      std::vector<unsigned char> buf(65536);
      std::uint64_t offset = 0;
      for (;;) {
        const std::int64_t got = s.read_body(offset, buf.data(), buf.size());
        if (got < 0) throw std::runtime_error("dkim: cannot read the message body");
        if (got == 0) break;
        status = dkim_body(dkim.get(), buf.data(), static_cast<std::size_t>(got));
        if (status != DKIM_STAT_OK) break;
        offset += static_cast<std::uint64_t>(got);
      }
      bool testkey = false;
      dkim_eom(dkim.get(), &testkey);  // each signature's outcome is read below
    }

    if (ctx.would_block) return std::nullopt;
    DKIM_SIGINFO** sigs = nullptr;
    int nsigs = 0;
    if (dkim_getsiglist(dkim.get(), &sigs, &nsigs) != DKIM_STAT_OK || sigs == nullptr) return out;
    for (int i = 0; i < nsigs; ++i) {
      SigResult r = judge(sigs[i]);
      const std::string key_name = r.selector + "._domainkey." + r.domain;
      if (r.outcome == Outcome::kNoKey && ctx.failed.count(key_name) != 0) {
        r.outcome = Outcome::kTempError;
        r.result = "temperror";
        r.reason = "key lookup failed";
      } else if (r.outcome == Outcome::kNoKey && ctx.skipped.count(key_name) != 0) {
        r.outcome = Outcome::kPermError;
        r.result = "permerror";
        r.reason = "not checked: more than " + std::to_string(max_signatures_) + " signatures";
      }
      out.push_back(std::move(r));
    }
    return out;
  }

  static SigResult judge(DKIM_SIGINFO* sig) {
    SigResult r;
    if (const unsigned char* d = dkim_sig_getdomain(sig))
      r.domain = sanitized(reinterpret_cast<const char*>(d));
    if (const unsigned char* sel = dkim_sig_getselector(sig))
      r.selector = sanitized(reinterpret_cast<const char*>(sel));
    static unsigned char kB[] = "b";
    if (const unsigned char* b = dkim_sig_gettagvalue(sig, false, kB)) {
      for (const unsigned char* p = b; *p != 0 && r.b_prefix.size() < 8; ++p)
        if (std::isalnum(*p) || *p == '+' || *p == '/') r.b_prefix += static_cast<char>(*p);
    }
    dkim_alg_t alg = DKIM_SIGN_UNKNOWN;
    r.algorithm = "unknown";
    if (dkim_sig_getsignalg(sig, &alg) == DKIM_STAT_OK) {
      switch (alg) {
        case DKIM_SIGN_RSASHA1:
          r.algorithm = "rsa-sha1";
          break;
        case DKIM_SIGN_RSASHA256:
          r.algorithm = "rsa-sha256";
          break;
        case DKIM_SIGN_ED25519SHA256:
          r.algorithm = "ed25519-sha256";
          break;
        default:
          break;
      }
    }
    unsigned int bits = 0;
    if (dkim_sig_getkeysize(sig, &bits) == DKIM_STAT_OK) r.bits = bits;

    const unsigned int flags = dkim_sig_getflags(sig);
    const int bh = dkim_sig_getbh(sig);
    const int error = dkim_sig_geterror(sig);
    const auto set = [&r](Outcome o, const char* result, std::string reason) {
      r.outcome = o;
      r.result = result;
      r.reason = std::move(reason);
    };
    switch (error) {
      case DKIM_SIGERROR_OK:
      case DKIM_SIGERROR_BADSIG:
      case DKIM_SIGERROR_KEYTOOSMALL:
        break;
      case DKIM_SIGERROR_NOKEY:
        set(Outcome::kNoKey, "permerror", "no key");
        return r;
      case DKIM_SIGERROR_KEYFAIL:
        set(Outcome::kTempError, "temperror", "key lookup failed");
        return r;
      case DKIM_SIGERROR_EXPIRED:
      case DKIM_SIGERROR_FUTURE:
      case DKIM_SIGERROR_MBSFAILED:
      case DKIM_SIGERROR_KEYHASHMISMATCH:
      case DKIM_SIGERROR_SUBDOMAIN:
      case DKIM_SIGERROR_KEYREVOKED: {
        const char* text = dkim_sig_geterrorstr(static_cast<DKIM_SIGERROR>(error));
        set(Outcome::kInvalid, "fail", text != nullptr ? text : "invalid");
        return r;
      }
      default: {
        const char* text = dkim_sig_geterrorstr(static_cast<DKIM_SIGERROR>(error));
        set(Outcome::kPermError, "permerror", text != nullptr ? text : "unusable signature");
        return r;
      }
    }
    if (alg != DKIM_SIGN_RSASHA1 && alg != DKIM_SIGN_RSASHA256 &&
        alg != DKIM_SIGN_ED25519SHA256) {
      set(Outcome::kPermError, "permerror", "unsupported algorithm");
      return r;
    }
    const bool rsa = alg == DKIM_SIGN_RSASHA1 || alg == DKIM_SIGN_RSASHA256;
    if (error == DKIM_SIGERROR_KEYTOOSMALL || (rsa && r.bits != 0 && r.bits < 1024)) {
      r.weak_key = true;
      set(Outcome::kInvalid, "policy", "RSA key under 1024 bits (RFC 8301)");
      return r;
    }
    if (bh == DKIM_SIGBH_MISMATCH) {
      set(Outcome::kInvalid, "fail", "body hash mismatch");
      return r;
    }
    if (error == DKIM_SIGERROR_BADSIG) {
      set(Outcome::kInvalid, "fail", "signature mismatch");
      return r;
    }
    if ((flags & DKIM_SIGFLAG_PASSED) == 0 || bh != DKIM_SIGBH_MATCH) {
      if ((flags & DKIM_SIGFLAG_PROCESSED) == 0)
        set(Outcome::kPermError, "permerror", "signature not processed");
      else
        set(Outcome::kInvalid, "fail", "signature mismatch");
      return r;
    }
    if (alg == DKIM_SIGN_RSASHA1) {
      r.sha1 = true;
      set(Outcome::kInvalid, "policy", "rsa-sha1 is not acceptable (RFC 8301)");
      return r;
    }
    set(Outcome::kValid, "pass", "");
    return r;
  }

  void parse_settings() {
    const nlohmann::json settings = mailgate::plugins::parse_settings_object(settings_json());
    const auto boolean = mailgate::plugins::setting_bool;
    for (const auto& [key, value] : settings.items()) {
      if (key == "scores") {
        if (!value.is_object()) throw std::invalid_argument("setting \"scores\" must be an object");
        for (const auto& [name, score] : value.items()) {
          if (!score.is_number())
            throw std::invalid_argument("setting \"scores\"." + name + " must be a number");
          const double v = score.get<double>();
          bool known = false;
          for (std::size_t i = 0; i < kOutcomeCount; ++i) {
            if (name == kOutcomeNames[i]) {
              scores_.outcome[i] = v;
              known = true;
            }
          }
          if (name == "none") {
            scores_.none = v;
            known = true;
          } else if (name == "sha1") {
            scores_.sha1 = v;
            known = true;
          } else if (name == "weak_key") {
            scores_.weak_key = v;
            known = true;
          }
          if (!known)
            throw std::invalid_argument(
                "unknown result \"" + name +
                "\" in \"scores\" (known: valid, invalid, nokey, temperror, permerror, none, "
                "sha1, weak_key)");
        }
      } else if (key == "reject_invalid") {
        reject_invalid_ = boolean(value, key);
      } else if (key == "max_signatures") {
        if (!value.is_number_integer() || value.get<long long>() < 1 ||
            value.get<long long>() > 100)
          throw std::invalid_argument("setting \"max_signatures\" must be an integer from 1 to 100");
        max_signatures_ = static_cast<std::size_t>(value.get<long long>());
      } else if (key == "tempfail_on_dns_error") {
        tempfail_on_dns_error_ = boolean(value, key);
      } else {
        throw std::invalid_argument("unknown setting \"" + key +
                                    "\" (the dkim plugin knows scores, reject_invalid, "
                                    "tempfail_on_dns_error, max_signatures)");
      }
    }
  }

  Scores scores_;
  bool reject_invalid_ = false;
  bool tempfail_on_dns_error_ = false;
  std::size_t max_signatures_ = 10;
  std::unique_ptr<DKIM_LIB, LibDeleter> lib_;
};

}  // namespace

MAILGATE_PLUGIN(Dkim, "dkim", "1.0", MG_PLUGIN_TRY_INLINE);
