// plugins/dkim/sign.cc — the `dkim_sign` plugin: DKIM (RFC 6376) signing of outgoing mail on
// libopendkim, with every enabled key of the From: domain in the policy database (table
// dkim_keys, read through policy_lookup), RSA (rsa-sha256) and ed25519 (RFC 8463) alike.
//
// Owns: deciding whether a message is signed, signing it with each key, the DKIM-Signature
// fields it inserts at the top of the header, its log lines and the DKIM_SIGNED /
// DKIM_SIGN_ERROR symbols. Must not touch: verification (dkim.cc, the `dkim` plugin) or the
// keys themselves (`mailgatectl dkim`, gateway/policy/dkim_key.h).
// A separate .so from `dkim` so that admins put it LAST in the chain, after every plugin that
// edits header fields: it signs the fields exactly as they will be relayed (header_raw_at).
//
//   EOM   trusted client (authenticated, or in relay_networks; setting "sign_from") and exactly
//         one From: field with exactly one address whose domain has keys (and is in "domains"
//         when that is set) → one DKIM handle per key, fed the relayed header fields and the
//         CRLF-canonical body once, each signature inserted at index 0. A failing key is
//         logged and skipped (DKIM_SIGN_ERROR, score 0): signing never refuses mail.
//
// Settings (JSON object, every key optional; unknown keys or wrong types fail create()):
//   "sign_from": ["authenticated", "relay_networks"]   which clients count as trusted
//   "domains": []                  only these From domains are signed (empty: any with keys)
//   "canonicalization": "relaxed/relaxed"   header/body: relaxed or simple ("relaxed" alone =
//                                  relaxed/simple, as the c= tag reads)
//   "headers": [...]               header fields to sign (must include "from"); default below
//   "oversign": ["from"]           fields signed once more than present (no later addition)
//   "envelope_fallback": false     no key for the From domain → use the MAIL FROM domain's
//
// Threads: the plugin is blocking (not MG_PLUGIN_NONBLOCKING) only because signing with RSA
// 4096 keys takes milliseconds of CPU. One DKIM_LIB per instance, configured in the constructor
// and read-only afterwards; each message gets its own DKIM handles.
#include <cstring>
#include <mailgate/plugin.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/settings.hpp"
#include "opendkim.h"

namespace {

using mailgate::Action;
using mailgate::Item;
using mailgate::LogLevel;
using mailgate::Session;

constexpr const char* kDefaultHeaders[] = {
    "from",       "to",           "cc",           "subject",
    "date",       "message-id",   "reply-to",     "in-reply-to",
    "references", "mime-version", "content-type", "content-transfer-encoding"};

struct LibDeleter {
  void operator()(DKIM_LIB* lib) const noexcept { dkim_close(lib); }
};
struct HandleDeleter {
  void operator()(DKIM* d) const noexcept { dkim_free(d); }
};

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}


// The domain of the one address in a From: value (RFC 5322 mailbox-list), or an explanation of
// why there is none: several addresses, a group, no '@', a domain literal.
struct FromDomain {
  std::string domain;  // lower-case; empty when `problem` is set
  std::string problem;
};

FromDomain from_domain(std::string_view value) {
  // Remove comments and split at top-level commas, keeping quoted strings intact.
  std::vector<std::string> parts(1);
  int depth = 0;
  bool quoted = false;
  bool angle = false;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c == '\\' && (quoted || depth > 0) && i + 1 < value.size()) {
      if (depth == 0) parts.back().append(value.substr(i, 2));
      ++i;
      continue;
    }
    if (depth > 0) {
      if (c == '(') ++depth;
      if (c == ')') --depth;
      continue;
    }
    if (quoted) {
      if (c == '"') quoted = false;
      parts.back() += c;
      continue;
    }
    if (c == '(') {
      ++depth;
      parts.back() += ' ';
      continue;
    }
    if (c == '"') quoted = true;
    if (c == '<') angle = true;
    if (c == '>') angle = false;
    if (c == ':' && !angle) return {"", "a group address"};
    if (c == ',' && !angle) {
      parts.emplace_back();
      continue;
    }
    parts.back() += c;
  }
  std::vector<std::string> addresses;
  for (const std::string& p : parts)
    if (p.find_first_not_of(" \t\r\n") != std::string::npos) addresses.push_back(p);
  if (addresses.empty()) return {"", "no address"};
  if (addresses.size() > 1) return {"", std::to_string(addresses.size()) + " addresses"};
  std::string spec = addresses.front();
  const std::size_t open = spec.rfind('<');
  if (open != std::string::npos) {
    const std::size_t close = spec.find('>', open);
    if (close == std::string::npos) return {"", "an unclosed '<'"};
    spec = spec.substr(open + 1, close - open - 1);
  }
  const std::size_t at = spec.rfind('@');
  if (at == std::string::npos) return {"", "an address without '@'"};
  std::string domain;
  for (char c : spec.substr(at + 1))
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') domain += c;
  if (domain.empty()) return {"", "an empty domain"};
  if (domain.front() == '[') return {"", "a domain literal"};
  while (!domain.empty() && domain.back() == '.') domain.pop_back();
  for (char c : domain) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.';
    if (!ok) return {"", "a domain that is not a DNS name"};
  }
  return {lower(domain), ""};
}

dkim_canon_t parse_canon(std::string_view text) {
  if (text == "relaxed") return DKIM_CANON_RELAXED;
  if (text == "simple") return DKIM_CANON_SIMPLE;
  throw std::invalid_argument(
      "setting \"canonicalization\" must be HEADER/BODY with each "
      "relaxed or simple (e.g. \"relaxed/relaxed\")");
}

// A header field name for the library's lists: letters, digits and '-' (the library builds
// a regular expression from them).
std::string field_name(const nlohmann::json& value, const std::string& setting) {
  if (!value.is_string() || value.get<std::string>().empty())
    throw std::invalid_argument("setting \"" + setting + "\" must be an array of header names");
  const std::string name = lower(value.get<std::string>());
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      throw std::invalid_argument("setting \"" + setting + "\": '" + name +
                                  "' is not a header field name (use a-z, 0-9, '-')");
  return name;
}

struct Key {
  std::string selector;
  std::string algorithm;  // "rsa-sha256" or "ed25519-sha256"
  std::string pem;
};

// One signing handle with the key it belongs to.
struct Signer {
  Key key;
  std::unique_ptr<DKIM, HandleDeleter> dkim;
  std::string error;  // set when this key failed; it is skipped from then on
};

class DkimSign final : public mailgate::Plugin {
 public:
  explicit DkimSign(const mailgate::PluginContext& context) : Plugin(context) {
    for (const char* h : kDefaultHeaders) headers_.emplace_back(h);
    oversign_.emplace_back("from");
    parse_settings();
    if (hcanon_ == DKIM_CANON_SIMPLE && !MG_HOST_HAS(host(), header_raw_at))
      throw std::invalid_argument(
          "simple header canonicalization needs a host with header_raw_at (plugin ABI 1.1)");
    lib_.reset(dkim_init(nullptr, nullptr));
    if (!lib_) throw std::runtime_error("dkim_sign: dkim_init failed");
    for (const std::string& h : headers_) header_ptrs_.push_back(h.c_str());
    header_ptrs_.push_back(nullptr);
    for (const std::string& h : oversign_) oversign_ptrs_.push_back(h.c_str());
    oversign_ptrs_.push_back(nullptr);
    if (dkim_options(lib_.get(), DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, header_ptrs_.data(),
                     sizeof(const char**)) != DKIM_STAT_OK)
      throw std::invalid_argument("dkim_sign: libopendkim refused the \"headers\" list");
    if (dkim_options(lib_.get(), DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, oversign_ptrs_.data(),
                     sizeof(const char**)) != DKIM_STAT_OK)
      throw std::invalid_argument("dkim_sign: libopendkim refused the \"oversign\" list");
  }

  Action on_eom(Session& s) override {
    try {
      sign(s);
    } catch (const std::exception& e) {
      // Never refuse mail because signing failed.
      s.add_symbol("DKIM_SIGN_ERROR", 0.0, e.what());
      s.log(LogLevel::kWarning, std::string("dkim_sign: not signed: ") + e.what());
    }
    return Action::kContinue;
  }

 private:
  // Why the client may have its mail signed, or nullopt.
  std::optional<std::string> trusted(Session& s) const {
    if (sign_authenticated_) {
      if (auto user = s.find(Item::kAuthUser); user && !user->empty())
        return "authenticated as " + std::string(*user);
    }
    if (sign_relay_networks_) {
      const std::string addr(s.get(Item::kClientAddr));
      if (!addr.empty()) {
        if (auto net = policy_lookup("relay_networks", addr)) return "relay network " + *net;
      }
    }
    return std::nullopt;
  }

  std::vector<Key> keys_for(const std::string& domain) const {
    std::vector<Key> out;
    auto json = policy_lookup("dkim_keys", domain);
    if (!json) return out;
    const nlohmann::json keys = nlohmann::json::parse(*json, nullptr, /*allow_exceptions=*/false);
    if (!keys.is_array()) throw std::runtime_error("policy lookup dkim_keys: not a JSON array");
    for (const auto& k : keys) {
      if (!k.is_object() || !k.contains("selector") || !k.contains("algorithm") ||
          !k.contains("private_key") || !k["selector"].is_string() || !k["algorithm"].is_string() ||
          !k["private_key"].is_string())
        throw std::runtime_error("policy lookup dkim_keys: malformed key entry");
      out.push_back(Key{k["selector"].get<std::string>(), k["algorithm"].get<std::string>(),
                        k["private_key"].get<std::string>()});
    }
    return out;
  }

  void sign(Session& s) const {
    auto why = trusted(s);
    if (!why) {
      s.log(LogLevel::kDebug, "dkim_sign: not signing: client is not trusted");
      return;
    }
    // Exactly one From: field with exactly one address.
    std::optional<std::string_view> from;
    std::size_t from_fields = 0;
    for (const Session::Header& h : s.headers()) {
      if (mailgate::equal_ignore_case(h.name, "from")) {
        ++from_fields;
        from = h.value;
      }
    }
    if (from_fields != 1) {
      s.log(LogLevel::kInfo, "dkim_sign: not signing: the message has " +
                                 std::to_string(from_fields) + " From: fields (" + *why + ")");
      return;
    }
    FromDomain fd = from_domain(*from);
    if (!fd.problem.empty()) {
      s.log(LogLevel::kInfo, "dkim_sign: not signing: From: has " + fd.problem + " (" + *why + ")");
      return;
    }
    std::string domain = fd.domain;
    std::vector<Key> keys;
    if (allowed(domain)) keys = keys_for(domain);
    if (keys.empty() && envelope_fallback_) {
      const std::string sender(s.get(Item::kSender));
      const std::size_t at = sender.rfind('@');
      const std::string envelope = at == std::string::npos ? "" : lower(sender.substr(at + 1));
      if (!envelope.empty() && envelope != domain && allowed(envelope)) {
        keys = keys_for(envelope);
        if (!keys.empty()) domain = envelope;
      }
    }
    if (keys.empty()) {
      s.log(LogLevel::kInfo, "dkim_sign: not signing: no enabled key for " + fd.domain +
                                 (domains_.empty() ? "" : " among the configured domains") + " (" +
                                 *why + ")");
      return;
    }

    const std::string id(s.find(Item::kTxId).value_or("mailgate"));
    std::vector<Signer> signers;
    for (Key& key : keys) {
      Signer sg{std::move(key), nullptr, {}};
      const dkim_alg_t alg = sg.key.algorithm == "ed25519-sha256" ? DKIM_SIGN_ED25519SHA256
                             : sg.key.algorithm == "rsa-sha256"   ? DKIM_SIGN_RSASHA256
                                                                  : DKIM_SIGN_UNKNOWN;
      if (alg == DKIM_SIGN_UNKNOWN) {
        sg.error = "unknown algorithm '" + sg.key.algorithm + "'";
      } else {
        DKIM_STAT status = DKIM_STAT_OK;
        sg.dkim.reset(dkim_sign(lib_.get(), reinterpret_cast<const unsigned char*>(id.c_str()),
                                nullptr, reinterpret_cast<unsigned char*>(sg.key.pem.data()),
                                reinterpret_cast<const unsigned char*>(sg.key.selector.c_str()),
                                reinterpret_cast<const unsigned char*>(domain.c_str()), hcanon_,
                                bcanon_, alg, -1, &status));
        if (!sg.dkim) {
          sg.error = "dkim_sign failed: " + status_text(status);
        } else if (hcanon_ == DKIM_CANON_SIMPLE &&
                   dkim_set_margin(sg.dkim.get(), 0) != DKIM_STAT_OK) {
          // libopendkim folds the DKIM-Signature field it hashes (b= empty) and the one it
          // returns (b= filled) independently, so their folding can differ; simple header
          // canonicalization hashes the folding, so the field is left unfolded (margin 0).
          sg.error = "cannot turn off folding of the signature field";
        }
      }
      signers.push_back(std::move(sg));
    }

    // The header fields as they will be relayed, each without its final CRLF.
    const std::size_t count = s.headers().size();
    std::string field;
    for (std::size_t i = 0; i < count; ++i) {
      if (auto raw = s.header_raw(i)) {
        field.assign(*raw);
        if (field.size() >= 2 && field.compare(field.size() - 2, 2, "\r\n") == 0)
          field.resize(field.size() - 2);
      } else {
        const Session::Header h = s.headers()[i];
        field.assign(h.name).append(": ").append(h.value);
      }
      for (Signer& sg : signers) {
        if (!sg.error.empty()) continue;
        const DKIM_STAT st = dkim_header(
            sg.dkim.get(), reinterpret_cast<unsigned char*>(field.data()), field.size());
        if (st != DKIM_STAT_OK)
          sg.error = "header field " + std::to_string(i) + ": " + error(sg, st);
      }
    }
    for (Signer& sg : signers)
      if (sg.error.empty())
        if (DKIM_STAT st = dkim_eoh(sg.dkim.get()); st != DKIM_STAT_OK)
          sg.error = "end of header: " + error(sg, st);

    std::vector<unsigned char> buf(65536);
    std::uint64_t offset = 0;
    for (;;) {
      const std::int64_t got = s.read_body(offset, buf.data(), buf.size());
      if (got < 0) throw std::runtime_error("cannot read the message body");
      if (got == 0) break;
      for (Signer& sg : signers) {
        if (!sg.error.empty()) continue;
        const DKIM_STAT st = dkim_body(sg.dkim.get(), buf.data(), static_cast<std::size_t>(got));
        if (st != DKIM_STAT_OK) sg.error = "body: " + error(sg, st);
      }
      offset += static_cast<std::uint64_t>(got);
    }

    std::string signed_detail;
    std::string error_detail;
    const std::string canon = canon_name();
    for (Signer& sg : signers) {
      const std::string what = "d=" + domain + " s=" + sg.key.selector + " a=" + sg.key.algorithm;
      if (sg.error.empty()) {
        if (DKIM_STAT st = dkim_eom(sg.dkim.get(), nullptr); st != DKIM_STAT_OK)
          sg.error = "signing: " + error(sg, st);
      }
      unsigned char* value = nullptr;
      std::size_t len = 0;
      if (sg.error.empty()) {
        const DKIM_STAT st =
            dkim_getsighdr_d(sg.dkim.get(), std::strlen("DKIM-Signature: "), &value, &len);
        if (st != DKIM_STAT_OK || value == nullptr) sg.error = "signature field: " + error(sg, st);
      }
      if (sg.error.empty()) {
        const std::string text(reinterpret_cast<const char*>(value), len);
        if (s.host()->header_insert(s.raw(), 0, "DKIM-Signature", text.c_str()) != 0)
          sg.error = "the host refused to insert the DKIM-Signature field";
      }
      if (!sg.error.empty()) {
        s.log(LogLevel::kWarning, "dkim_sign: key skipped: " + what + ": " + sg.error);
        if (!error_detail.empty()) error_detail += "; ";
        error_detail += what + ": " + sg.error;
        continue;
      }
      s.log(LogLevel::kInfo, "dkim_sign: signed " + what + " c=" + canon + " (" + *why + ")");
      if (!signed_detail.empty()) signed_detail += "; ";
      signed_detail += what;
    }
    if (!signed_detail.empty()) s.add_symbol("DKIM_SIGNED", 0.0, signed_detail);
    if (!error_detail.empty()) s.add_symbol("DKIM_SIGN_ERROR", 0.0, error_detail);
  }

  bool allowed(const std::string& domain) const {
    if (domains_.empty()) return true;
    for (const std::string& d : domains_)
      if (d == domain) return true;
    return false;
  }

  static std::string status_text(DKIM_STAT st) {
    const char* text = dkim_getresultstr(st);
    return text != nullptr ? text : "status " + std::to_string(st);
  }
  static std::string error(const Signer& sg, DKIM_STAT st) {
    const char* detail = sg.dkim ? dkim_geterror(sg.dkim.get()) : nullptr;
    std::string out = status_text(st);
    if (detail != nullptr && *detail != '\0') out += std::string(" (") + detail + ")";
    return out;
  }

  std::string canon_name() const {
    const auto name = [](dkim_canon_t c) { return c == DKIM_CANON_SIMPLE ? "simple" : "relaxed"; };
    return std::string(name(hcanon_)) + "/" + name(bcanon_);
  }

  void parse_settings() {
    const nlohmann::json settings = mailgate::plugins::parse_settings_object(settings_json());
    const auto names = [](const nlohmann::json& value, const std::string& key) {
      if (!value.is_array())
        throw std::invalid_argument("setting \"" + key + "\" must be an array of strings");
      std::vector<std::string> out;
      for (const auto& v : value) out.push_back(field_name(v, key));
      return out;
    };
    for (const auto& [key, value] : settings.items()) {
      if (key == "sign_from") {
        if (!value.is_array())
          throw std::invalid_argument("setting \"sign_from\" must be an array");
        sign_authenticated_ = sign_relay_networks_ = false;
        for (const auto& v : value) {
          if (v == "authenticated") {
            sign_authenticated_ = true;
          } else if (v == "relay_networks") {
            sign_relay_networks_ = true;
          } else {
            throw std::invalid_argument(
                "setting \"sign_from\": " + v.dump() +
                " is not a kind of client (use \"authenticated\", \"relay_networks\")");
          }
        }
      } else if (key == "domains") {
        if (!value.is_array())
          throw std::invalid_argument("setting \"domains\" must be an array of domains");
        for (const auto& v : value) {
          if (!v.is_string() || v.get<std::string>().empty())
            throw std::invalid_argument("setting \"domains\" must be an array of domains");
          domains_.push_back(lower(v.get<std::string>()));
        }
      } else if (key == "canonicalization") {
        if (!value.is_string())
          throw std::invalid_argument("setting \"canonicalization\" must be a string");
        const std::string c = value.get<std::string>();
        const std::size_t slash = c.find('/');
        hcanon_ = parse_canon(c.substr(0, slash));
        bcanon_ = slash == std::string::npos ? DKIM_CANON_SIMPLE : parse_canon(c.substr(slash + 1));
      } else if (key == "headers") {
        headers_ = names(value, key);
        bool has_from = false;
        for (const std::string& h : headers_) has_from = has_from || h == "from";
        if (!has_from)
          throw std::invalid_argument("setting \"headers\" must include \"from\" (RFC 6376)");
      } else if (key == "oversign") {
        oversign_ = names(value, key);
      } else if (key == "envelope_fallback") {
        envelope_fallback_ = mailgate::plugins::setting_bool(value, key);
      } else {
        throw std::invalid_argument("unknown setting \"" + key +
                                    "\" (the dkim_sign plugin knows sign_from, domains, "
                                    "canonicalization, headers, oversign, envelope_fallback)");
      }
    }
  }

  bool sign_authenticated_ = true;
  bool sign_relay_networks_ = true;
  std::vector<std::string> domains_;
  dkim_canon_t hcanon_ = DKIM_CANON_RELAXED;
  dkim_canon_t bcanon_ = DKIM_CANON_RELAXED;
  std::vector<std::string> headers_;
  std::vector<std::string> oversign_;
  std::vector<const char*> header_ptrs_;
  std::vector<const char*> oversign_ptrs_;
  bool envelope_fallback_ = false;
  std::unique_ptr<DKIM_LIB, LibDeleter> lib_;
};

}  // namespace

MAILGATE_PLUGIN(DkimSign, "dkim_sign", "1.0", 0);
