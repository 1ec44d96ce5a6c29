// mailgate/plugin.hpp — a header-only C++ layer over the plugin C ABI (mailgate/plugin.h).
//
// Owns: Plugin (derive from it, override the stages you need), Session (typed access to one
// session through the host's services table), DnsResult (RAII for a DNS answer), and
// MAILGATE_PLUGIN, the one macro that exports a plugin. Needs C++17 or later, nothing else.
//
//   class Tagger : public mailgate::Plugin {
//    public:
//     using Plugin::Plugin;
//     mailgate::Action on_eom(mailgate::Session& s) override {
//       s.header_add("X-Tagged", "yes");
//       return mailgate::Action::kContinue;
//     }
//   };
//   MAILGATE_PLUGIN(Tagger, "tagger", "1.0", 0);
//
// Threads: the rules of the C ABI. One session's callbacks never run concurrently, but several
// sessions call the same Plugin object from several threads at once: keep it immutable after
// construction, or synchronise what changes.
// Must not: let an exception cross the C ABI. Every trampoline catches everything; an
// exception from a stage becomes MG_TEMPFAIL plus an error line in the host's log, and one
// from the constructor makes create() fail with its what() as the error. A Session, and every
// string_view it returns, is valid only during the callback that received it.
#pragma once

#include <mailgate/plugin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace mailgate {

// What a stage decides; the values are the C ABI's mg_action.
enum class Action : int {
  kContinue = MG_CONTINUE,  // no objection: the next plugin runs
  kAccept = MG_ACCEPT,      // accept for this stage: the rest of the chain is skipped for it
  kTempFail = MG_TEMPFAIL,  // refuse for now (4xx); Session::set_reply() may give the reply
  kReject = MG_REJECT,      // refuse (5xx); Session::set_reply() may give the reply
  kDiscard = MG_DISCARD,    // accept the message and drop it (logged); from MAIL on
  kFailed = MG_FAILED,      // could not decide: the gateway applies the plugin's fail mode
  // Only in a try on the I/O thread (MG_PLUGIN_TRY_INLINE) after a DNS answer came back
  // kWouldBlock, before changing anything: the gateway calls the stage again where it may block.
  kRetryBlocking = MG_RETRY_BLOCKING,
};

// Session and transaction items; the values are the C ABI's mg_item (see plugin.h).
enum class Item : int {
  kSessionId = MG_ITEM_SESSION_ID,
  kClientAddr = MG_ITEM_CLIENT_ADDR,
  kClientPort = MG_ITEM_CLIENT_PORT,
  kClientName = MG_ITEM_CLIENT_NAME,
  kLocalAddr = MG_ITEM_LOCAL_ADDR,
  kProfile = MG_ITEM_PROFILE,
  kHelo = MG_ITEM_HELO,
  kProtocol = MG_ITEM_PROTOCOL,
  kTlsVersion = MG_ITEM_TLS_VERSION,
  kTlsCipher = MG_ITEM_TLS_CIPHER,
  kAuthUser = MG_ITEM_AUTH_USER,
  kSender = MG_ITEM_SENDER,
  kTxId = MG_ITEM_TX_ID,
  kHostname = MG_ITEM_HOSTNAME,
  kCurrentRcpt = MG_ITEM_CURRENT_RCPT,
};

enum class LogLevel : int {
  kDebug = MG_LOG_DEBUG,
  kInfo = MG_LOG_INFO,
  kWarning = MG_LOG_WARNING,
  kError = MG_LOG_ERROR,
};

enum class DnsType : int {
  kA = MG_DNS_A,
  kPtr = MG_DNS_PTR,
  kMx = MG_DNS_MX,
  kTxt = MG_DNS_TXT,
  kAaaa = MG_DNS_AAAA,
};

enum class DnsStatus : int {
  kOk = MG_DNS_OK,              // answers present
  kNxDomain = MG_DNS_NXDOMAIN,  // the name does not exist
  kNoData = MG_DNS_NODATA,      // the name exists, no record of that type
  kTempFail = MG_DNS_TEMPFAIL,  // timeout or SERVFAIL: try later
  kError = MG_DNS_ERROR,        // bad query, resolver unusable, or not allowed (non-blocking)
  kWouldBlock = MG_DNS_WOULDBLOCK,  // in a try (MG_PLUGIN_TRY_INLINE): not cached; see kRetryBlocking
};

// Lifetime of a data slot (Session::set_data).
enum class Scope : int {
  kTransaction = 0,  // freed after the RESET stage
  kSession = 1,      // freed after the CLOSE stage
};

namespace detail {

// A NUL-terminated copy of a string_view for a call into the host, on the stack when short.
// Text after an embedded NUL is not seen by the host.
class CString {
 public:
  explicit CString(std::string_view text) {
    if (text.size() < sizeof(small_)) {
      if (!text.empty()) std::memcpy(small_, text.data(), text.size());
      small_[text.size()] = '\0';
      ptr_ = small_;
    } else {
      large_.assign(text);
      ptr_ = large_.c_str();
    }
  }
  CString(const CString&) = delete;
  CString& operator=(const CString&) = delete;
  const char* c_str() const noexcept { return ptr_; }

 private:
  char small_[256];
  std::string large_;
  const char* ptr_;
};

inline std::string_view view(const char* text) noexcept {
  return text != nullptr ? std::string_view(text) : std::string_view();
}

inline bool equal_ignore_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Plugin names are what the policy database and the logs use: [a-z0-9_-]+.
constexpr bool valid_plugin_name(const char* name) {
  if (name == nullptr || name[0] == '\0') return false;
  for (const char* p = name; *p != '\0'; ++p) {
    const char c = *p;
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace detail

// ASCII case-insensitive equality, as RFC 5322 compares header field names and DNS compares
// names ("DKIM-Signature" and "dkim-signature"). No locale: bytes >= 0x80 compare exactly.
using detail::equal_ignore_case;

// One DNS answer from the host's resolver. Owns the host's mg_dns_result and frees it with
// host->dns_free(). Move-only. A default-constructed or failed result has status kError.
class DnsResult {
 public:
  DnsResult() noexcept = default;
  DnsResult(const mg_host* host, mg_dns_result* result) noexcept : host_(host), result_(result) {}
  DnsResult(DnsResult&& other) noexcept
      : host_(other.host_), result_(std::exchange(other.result_, nullptr)) {}
  DnsResult& operator=(DnsResult&& other) noexcept {
    if (this != &other) {
      reset();
      host_ = other.host_;
      result_ = std::exchange(other.result_, nullptr);
    }
    return *this;
  }
  DnsResult(const DnsResult&) = delete;
  DnsResult& operator=(const DnsResult&) = delete;
  ~DnsResult() { reset(); }

  DnsStatus status() const noexcept {
    return result_ != nullptr ? static_cast<DnsStatus>(result_->status) : DnsStatus::kError;
  }
  bool ok() const noexcept { return status() == DnsStatus::kOk; }
  // True when the answer was DNSSEC-validated.
  bool secure() const noexcept { return result_ != nullptr && result_->secure != 0; }
  std::size_t size() const noexcept {
    return result_ != nullptr && result_->records != nullptr ? result_->count : 0;
  }
  bool empty() const noexcept { return size() == 0; }
  const mg_dns_record* begin() const noexcept {
    return result_ != nullptr ? result_->records : nullptr;
  }
  const mg_dns_record* end() const noexcept { return begin() + size(); }
  const mg_dns_record& operator[](std::size_t i) const noexcept { return begin()[i]; }
  // The records' text (address, name, or TXT strings), in answer order.
  std::vector<std::string_view> texts() const {
    std::vector<std::string_view> out;
    out.reserve(size());
    for (const mg_dns_record& r : *this) out.push_back(detail::view(r.text));
    return out;
  }
  const mg_dns_result* raw() const noexcept { return result_; }

 private:
  void reset() noexcept {
    if (result_ != nullptr && host_ != nullptr) host_->dns_free(result_);
    result_ = nullptr;
  }
  const mg_host* host_ = nullptr;
  mg_dns_result* result_ = nullptr;
};

// One session (and its current transaction) as seen by one plugin during one callback. A cheap
// view: copy it freely within the callback, never keep it beyond. Every string_view it returns
// points into the host's memory and is valid until the callback returns. Strings passed in are
// copied by the host.
class Session {
 public:
  struct Header {
    std::string_view name;
    std::string_view value;
  };
  struct Symbol {
    std::string_view name;
    double score;
    std::string_view detail;
  };
  // One authentication result (RFC 8601 resinfo); see mg_host.auth_result_add.
  struct AuthResult {
    std::string_view method;
    std::string_view result;
    std::string_view reason;      // empty when none
    std::string_view properties;  // "header.d=example.com header.s=sel1"; empty when none
  };

  Session(const mg_host* host, mg_session* session) noexcept : host_(host), session_(session) {}

  // --- the session and the transaction ---------------------------------------------------
  // The item's value; empty when the host does not know it (yet). find() tells absent from "".
  std::string_view get(Item item) const { return detail::view(raw_get(item)); }
  std::optional<std::string_view> find(Item item) const {
    const char* value = raw_get(item);
    if (value == nullptr) return std::nullopt;
    return std::string_view(value);
  }
  // A MAIL FROM parameter by keyword ("SIZE", "BODY", "SMTPUTF8"): "" for a keyword without a
  // value, nullopt when absent.
  std::optional<std::string_view> mail_param(std::string_view keyword) const {
    const char* value = host_->mail_param(session_, detail::CString(keyword).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string_view(value);
  }
  // Recipients accepted so far (in the RCPT stage, without the one being checked).
  std::size_t recipient_count() const { return host_->rcpt_count(session_); }
  std::vector<std::string_view> recipients() const {
    std::vector<std::string_view> out;
    const std::size_t n = host_->rcpt_count(session_);
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) out.push_back(detail::view(host_->rcpt_at(session_, i)));
    return out;
  }
  // The message's header fields as received, in order (from the EOH stage on).
  std::vector<Header> headers() const {
    std::vector<Header> out;
    const std::size_t n = host_->header_count(session_);
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const char* name = nullptr;
      const char* value = nullptr;
      if (host_->header_at(session_, i, &name, &value) == 0)
        out.push_back(Header{detail::view(name), detail::view(value)});
    }
    return out;
  }
  // The value of the first header field named `name` (case-insensitive), from EOH on.
  std::optional<std::string_view> header(std::string_view name) const {
    const std::size_t n = host_->header_count(session_);
    for (std::size_t i = 0; i < n; ++i) {
      const char* field = nullptr;
      const char* value = nullptr;
      if (host_->header_at(session_, i, &field, &value) == 0 &&
          detail::equal_ignore_case(detail::view(field), name))
        return detail::view(value);
    }
    return std::nullopt;
  }
  // The field at `index` exactly as it will be relayed (name, colon, value with its folding,
  // CRLF); nullopt when out of range or when the host predates ABI 1.1.
  std::optional<std::string_view> header_raw(std::size_t index) const {
    if (!MG_HOST_HAS(host_, header_raw_at)) return std::nullopt;
    const char* raw = nullptr;
    std::size_t len = 0;
    if (host_->header_raw_at(session_, index, &raw, &len) != 0) return std::nullopt;
    return std::string_view(raw, len);
  }
  std::uint64_t message_size() const { return host_->message_size(session_); }
  // Reads body bytes at `offset` (from the EOM stage on): bytes read, 0 at the end, -1 on error.
  std::int64_t read_body(std::uint64_t offset, void* buf, std::size_t len) const {
    return host_->body_read(session_, offset, buf, len);
  }
  // The body (after the header block), at most max_bytes of it; nullopt on a read error.
  std::optional<std::string> body(std::size_t max_bytes = static_cast<std::size_t>(-1)) const {
    std::string out;
    char buf[16384];
    while (out.size() < max_bytes) {
      const std::size_t want = std::min(sizeof(buf), max_bytes - out.size());
      const std::int64_t got = host_->body_read(session_, out.size(), buf, want);
      if (got < 0) return std::nullopt;
      if (got == 0) break;
      out.append(buf, static_cast<std::size_t>(got));
    }
    return out;
  }

  // --- replies --------------------------------------------------------------------------
  // The reply for a TEMPFAIL or REJECT: code 4xx/5xx matching the action, enhanced status
  // ("5.7.1", or empty for none), one line of text.
  void set_reply(int code, std::string_view enhanced, std::string_view text) const {
    detail::CString enhanced_c(enhanced);
    host_->set_reply(session_, code, enhanced.empty() ? nullptr : enhanced_c.c_str(),
                     detail::CString(text).c_str());
  }
  // set_reply() and the matching action, for `return s.reject(550, "5.7.1", "...");`.
  Action reject(int code, std::string_view enhanced, std::string_view text) const {
    set_reply(code, enhanced, text);
    return Action::kReject;
  }
  Action tempfail(int code, std::string_view enhanced, std::string_view text) const {
    set_reply(code, enhanced, text);
    return Action::kTempFail;
  }

  // --- score symbols --------------------------------------------------------------------
  // Adds (or replaces) a symbol: name [A-Z0-9_]+, score, optional detail.
  void add_symbol(std::string_view name, double score, std::string_view detail_text = {}) const {
    detail::CString detail_c(detail_text);
    host_->add_symbol(session_, detail::CString(name).c_str(), score,
                      detail_text.empty() ? nullptr : detail_c.c_str());
  }
  // The sum of all plugins' symbols so far for this message.
  double score() const { return host_->score(session_); }
  std::vector<Symbol> symbols() const {
    std::vector<Symbol> out;
    const std::size_t n = host_->symbol_count(session_);
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const char* name = nullptr;
      const char* detail_text = nullptr;
      double value = 0;
      if (host_->symbol_at(session_, i, &name, &value, &detail_text) == 0)
        out.push_back(Symbol{detail::view(name), value, detail::view(detail_text)});
    }
    return out;
  }

  // --- authentication results (ABI 1.1; a host without them refuses and lists none) -----
  // Records a result for the plugins that read them; false when refused (bad argument).
  bool add_auth_result(std::string_view method, std::string_view result,
                       std::string_view reason = {}, std::string_view properties = {}) const {
    if (!MG_HOST_HAS(host_, auth_result_add)) return false;
    detail::CString reason_c(reason);
    detail::CString properties_c(properties);
    return host_->auth_result_add(session_, detail::CString(method).c_str(),
                                  detail::CString(result).c_str(),
                                  reason.empty() ? nullptr : reason_c.c_str(),
                                  properties.empty() ? nullptr : properties_c.c_str()) == 0;
  }
  std::vector<AuthResult> auth_results() const {
    std::vector<AuthResult> out;
    if (!MG_HOST_HAS(host_, auth_result_at)) return out;
    const std::size_t n = host_->auth_result_count(session_);
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const char* method = nullptr;
      const char* result = nullptr;
      const char* reason = nullptr;
      const char* properties = nullptr;
      if (host_->auth_result_at(session_, i, &method, &result, &reason, &properties) == 0)
        out.push_back(AuthResult{detail::view(method), detail::view(result), detail::view(reason),
                                 detail::view(properties)});
    }
    return out;
  }

  // --- header edits (EOH and EOM stages only); false when refused -------------------------
  bool header_add(std::string_view name, std::string_view value) const {
    return host_->header_add(session_, detail::CString(name).c_str(),
                             detail::CString(value).c_str()) == 0;
  }
  // Inserts at `index` (0 = top).
  bool header_insert(std::size_t index, std::string_view name, std::string_view value) const {
    return host_->header_insert(session_, index, detail::CString(name).c_str(),
                                detail::CString(value).c_str()) == 0;
  }
  // Removes the occurrence-th (1-based) field named `name`, or all of them when 0.
  bool header_remove(std::string_view name, std::size_t occurrence = 0) const {
    return host_->header_remove(session_, detail::CString(name).c_str(), occurrence) == 0;
  }
  // Replaces the value of the occurrence-th (1-based) field named `name`.
  bool header_change(std::string_view name, std::size_t occurrence, std::string_view value) const {
    return host_->header_change(session_, detail::CString(name).c_str(), occurrence,
                                detail::CString(value).c_str()) == 0;
  }

  // --- envelope edits; addresses without <>; false when refused ---------------------------
  bool set_sender(std::string_view address) const {
    return host_->set_sender(session_, detail::CString(address).c_str()) == 0;
  }
  // RCPT stage: replaces the recipient being checked.
  bool rcpt_rewrite(std::string_view address) const {
    return host_->rcpt_rewrite(session_, detail::CString(address).c_str()) == 0;
  }
  bool rcpt_add(std::string_view address) const {
    return host_->rcpt_add(session_, detail::CString(address).c_str()) == 0;
  }
  bool rcpt_remove(std::string_view address) const {
    return host_->rcpt_remove(session_, detail::CString(address).c_str()) == 0;
  }

  // --- ABI 1.3: body replacement and quarantine (EOM stage only); false when refused ------
  // True when the host offers them (a gateway of ABI 1.3 or later).
  bool has_body_services() const noexcept { return MG_HOST_HAS(host_, quarantine); }
  // The plugin's first call in the EOM stage replaces the body (CRLF line endings, not
  // dot-stuffed); its later calls append. False from an older host, outside EOM, or when the
  // body would exceed the gateway's maximum message size.
  bool body_replace(std::string_view data) const {
    if (!MG_HOST_HAS(host_, body_replace)) return false;
    return host_->body_replace(session_, data.data(), data.size()) == 0;
  }
  // Accepts and relays the message but has it held (proxy mode: an X-Mailgate-Quarantine
  // header field; milter mode: the MTA's quarantine). `reason`: one line, not empty.
  bool quarantine(std::string_view reason) const {
    if (!MG_HOST_HAS(host_, quarantine)) return false;
    return host_->quarantine(session_, detail::CString(reason).c_str()) == 0;
  }

  // --- DNS (blocking: plugins without MG_PLUGIN_NONBLOCKING only) ------------------------
  DnsResult dns(std::string_view name, DnsType type) const {
    return DnsResult(host_, host_->dns_query(session_, detail::CString(name).c_str(),
                                             static_cast<mg_dns_type>(type)));
  }

  // --- logging: the host prefixes the plugin's name and the session id -------------------
  void log(LogLevel level, std::string_view message) const {
    host_->log(session_, static_cast<mg_log_level>(level), detail::CString(message).c_str());
  }

  // --- per-plugin data slots: one object per scope, owned by the host from here on ---------
  // Setting a slot again destroys the previous object. T must be the same type data<T>() asks
  // for.
  template <class T>
  void set_data(std::unique_ptr<T> data, Scope scope = Scope::kTransaction) const {
    void (*free_fn)(void*) = [](void* p) { delete static_cast<T*>(p); };
    host_->set_data(session_, static_cast<int>(scope), data.get(), free_fn);
    data.release();
  }
  // The object stored with set_data<T>(), or nullptr.
  template <class T>
  T* data(Scope scope = Scope::kTransaction) const {
    return static_cast<T*>(host_->get_data(session_, static_cast<int>(scope)));
  }

  const mg_host* host() const noexcept { return host_; }
  mg_session* raw() const noexcept { return session_; }

 private:
  const char* raw_get(Item item) const { return host_->get(session_, static_cast<mg_item>(item)); }

  const mg_host* host_;
  mg_session* session_;
};

// A rate_limit() answer.
struct RateLimitResult {
  bool allowed;
  std::uint32_t retry_after_ms;  // when limited: how long until the same cost would pass
};

// What kv_set() did.
enum class KvSetResult {
  kStored,       // written
  kExists,       // only_if_absent and a live record was there: nothing written
  kUnavailable,  // the store could not be reached
};

// What the admin wants when the store is unavailable (mg_host.store_fail_mode).
enum class StoreFailMode {
  kOpen,      // go on without the check
  kTempFail,  // answer 4xx, so the client retries
};

// What the plugin's constructor receives.
struct PluginContext {
  const mg_host* host;
  std::string_view settings_json;  // from the policy database; "{}" when none
};

// The base class of a C++ plugin. The derived class must be constructible from
// `const PluginContext&` (write `using Plugin::Plugin;` when there is nothing to set up).
// Parse the settings in the constructor and throw on bad ones: create() then fails with the
// exception's text and the gateway keeps its previous chain. Override the stages you need,
// publicly, with `override`; MAILGATE_PLUGIN registers only the overridden ones.
class Plugin {
 public:
  explicit Plugin(const PluginContext& context)
      : host_(context.host), settings_json_(context.settings_json) {}
  virtual ~Plugin() = default;
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  virtual Action on_connect(Session&) { return Action::kContinue; }
  virtual Action on_helo(Session&, std::string_view /*helo*/) { return Action::kContinue; }
  virtual Action on_mail(Session&, std::string_view /*sender*/) { return Action::kContinue; }
  virtual Action on_rcpt(Session&, std::string_view /*recipient*/) { return Action::kContinue; }
  virtual Action on_data(Session&) { return Action::kContinue; }
  virtual Action on_header(Session&, std::string_view /*name*/, std::string_view /*value*/) {
    return Action::kContinue;
  }
  virtual Action on_eoh(Session&) { return Action::kContinue; }
  // A chunk of the body as raw bytes.
  virtual Action on_body(Session&, std::string_view /*chunk*/) { return Action::kContinue; }
  virtual Action on_eom(Session&) { return Action::kContinue; }
  virtual void on_reset(Session&) {}
  virtual void on_close(Session&) {}

  const mg_host* host() const noexcept { return host_; }
  // The raw JSON settings text.
  const std::string& settings_json() const noexcept { return settings_json_; }

  // Logs outside a session (the constructor or destructor).
  void log(LogLevel level, std::string_view message) const {
    host_->log(nullptr, static_cast<mg_log_level>(level), detail::CString(message).c_str());
  }
  // A read-only lookup in the gateway's current policy snapshot; nullopt when not found.
  std::optional<std::string> policy_lookup(std::string_view table, std::string_view key) const {
    detail::CString table_c(table);
    detail::CString key_c(key);
    // The host truncates to the buffer: grow until the value fits (or 1 MiB).
    for (std::size_t size = 256;; size *= 2) {
      std::string buf(size, '\0');
      if (host_->policy_lookup(table_c.c_str(), key_c.c_str(), buf.data(), buf.size()) != 1)
        return std::nullopt;
      const std::size_t len = std::strlen(buf.c_str());
      if (len + 1 < size || size >= (1u << 20)) {
        buf.resize(len);
        return buf;
      }
    }
  }
  // Adds delta to a shared counter within a window of window_ms (0: no expiry); the new value,
  // or nullopt when the counter store is unavailable.
  std::optional<std::int64_t> counter_add(std::string_view key, std::int64_t delta,
                                          std::uint32_t window_ms = 0) const {
    std::int64_t value = 0;
    if (host_->counter_add(detail::CString(key).c_str(), delta, window_ms, &value) != 0)
      return std::nullopt;
    return value;
  }

  // --- ABI 1.2: the gateway's clock, rate limits and expiring records (mailgate/plugin.h) ---
  // In memory or in Redis shared by several gateways; with Redis a call blocks for at most
  // --redis_timeout_ms. nullopt / kUnavailable when the store is unavailable: then apply your
  // fail mode, by default store_fail_mode().
  // True when the host offers them (a gateway of ABI 1.2 or later).
  bool has_store_services() const noexcept { return MG_HOST_HAS(host_, store_fail_mode); }
  // The gateway's clock in milliseconds since the Unix epoch (0 from an older host).
  std::uint64_t now_ms() const { return MG_HOST_HAS(host_, now_ms) ? host_->now_ms() : 0; }
  // One GCRA step: `rate` units per `period_ms`, bursts of `burst` (0 = rate). With dry_run the
  // state is not changed.
  std::optional<RateLimitResult> rate_limit(std::string_view key, std::uint32_t rate,
                                            std::uint32_t period_ms, std::uint32_t burst = 0,
                                            std::uint32_t cost = 1, bool dry_run = false) const {
    if (!MG_HOST_HAS(host_, rate_limit)) return std::nullopt;
    std::uint32_t retry = 0;
    const int r = host_->rate_limit(detail::CString(key).c_str(), rate, period_ms, burst, cost,
                                    dry_run ? 1 : 0, &retry);
    if (r < 0) return std::nullopt;
    return RateLimitResult{r == 1, r == 1 ? 0 : retry};
  }
  // The live record at `key`: outer nullopt when unavailable, inner nullopt when absent.
  std::optional<std::optional<std::string>> kv_get(std::string_view key) const {
    if (!MG_HOST_HAS(host_, kv_get)) return std::nullopt;
    detail::CString key_c(key);
    // The host truncates to the buffer: grow until the value fits (values are at most 64 KiB).
    for (std::size_t size = 512;; size *= 4) {
      std::string buf(size, '\0');
      const int r = host_->kv_get(key_c.c_str(), buf.data(), buf.size());
      if (r < 0) return std::nullopt;
      if (r == 0) return std::optional<std::string>();
      const std::size_t len = std::strlen(buf.c_str());
      if (len + 1 < size || size > (1u << 17)) {
        buf.resize(len);
        return std::optional<std::string>(std::move(buf));
      }
    }
  }
  // Writes a record for ttl_ms (0 = no expiry); with only_if_absent, only when none is live.
  KvSetResult kv_set(std::string_view key, std::string_view value, std::uint32_t ttl_ms,
                     bool only_if_absent = false) const {
    if (!MG_HOST_HAS(host_, kv_set)) return KvSetResult::kUnavailable;
    const int r = host_->kv_set(detail::CString(key).c_str(), detail::CString(value).c_str(),
                                ttl_ms, only_if_absent ? 1 : 0);
    if (r == 1) return KvSetResult::kStored;
    return r == 0 ? KvSetResult::kExists : KvSetResult::kUnavailable;
  }
  // The admin's choice (--redis_fail_mode) for when the store is unavailable; kTempFail from an
  // older host.
  StoreFailMode store_fail_mode() const {
    if (!MG_HOST_HAS(host_, store_fail_mode)) return StoreFailMode::kTempFail;
    return host_->store_fail_mode() == MG_STORE_FAIL_OPEN ? StoreFailMode::kOpen
                                                          : StoreFailMode::kTempFail;
  }

 private:
  const mg_host* host_;
  std::string settings_json_;
};

namespace detail {

// What a stage answers when the plugin throws: the host then applies the plugin's fail mode.
inline constexpr mg_action kActionOnException = MG_FAILED;

inline void write_error(char* err, std::size_t errlen, const char* what) noexcept {
  if (err != nullptr && errlen > 0) std::snprintf(err, errlen, "%s", what);
}

inline void log_exception(const mg_host* host, mg_session* s, const char* stage,
                          const char* what) noexcept {
  if (host == nullptr || host->log == nullptr) return;
  char line[512];
  std::snprintf(line, sizeof(line), "exception in %s: %s; the plugin's fail mode applies", stage, what);
  host->log(s, MG_LOG_ERROR, line);
}

inline mg_action to_c(Action action, const mg_host* host, mg_session* s,
                      const char* stage) noexcept {
  switch (action) {
    case Action::kContinue:
    case Action::kAccept:
    case Action::kTempFail:
    case Action::kReject:
    case Action::kDiscard:
    case Action::kFailed:
    case Action::kRetryBlocking:
      return static_cast<mg_action>(action);
  }
  log_exception(host, s, stage, "the stage returned an invalid Action");
  return kActionOnException;
}

// Runs one stage: builds the Session, calls the plugin, keeps exceptions on this side.
template <class Fn>
mg_action run_stage(void* state, mg_session* s, const char* stage, Fn&& fn) noexcept {
  Plugin* self = static_cast<Plugin*>(state);
  try {
    Session session(self->host(), s);
    return to_c(fn(*self, session), self->host(), s, stage);
  } catch (const std::exception& e) {
    log_exception(self->host(), s, stage, e.what());
  } catch (...) {
    log_exception(self->host(), s, stage, "unknown exception");
  }
  return kActionOnException;
}

template <class Fn>
void run_void_stage(void* state, mg_session* s, const char* stage, Fn&& fn) noexcept {
  Plugin* self = static_cast<Plugin*>(state);
  try {
    Session session(self->host(), s);
    fn(*self, session);
  } catch (const std::exception& e) {
    log_exception(self->host(), s, stage, e.what());
  } catch (...) {
    log_exception(self->host(), s, stage, "unknown exception");
  }
}

// The C callbacks for plugin class P. The state the host holds is a Plugin*.
template <class P>
struct Trampolines {
  static void* create(const mg_host* host, const char* settings_json, char* err,
                      std::size_t errlen) noexcept {
    try {
      const PluginContext context{host, settings_json != nullptr ? settings_json : "{}"};
      std::unique_ptr<P> plugin(new P(context));
      return static_cast<Plugin*>(plugin.release());
    } catch (const std::exception& e) {
      write_error(err, errlen, e.what());
    } catch (...) {
      write_error(err, errlen, "unknown exception in the plugin's constructor");
    }
    return nullptr;
  }
  static void destroy(void* state) noexcept { delete static_cast<Plugin*>(state); }

  static mg_action on_connect(void* st, mg_session* s) noexcept {
    return run_stage(st, s, "on_connect", [](Plugin& p, Session& ss) { return p.on_connect(ss); });
  }
  static mg_action on_helo(void* st, mg_session* s, const char* helo) noexcept {
    return run_stage(st, s, "on_helo",
                     [helo](Plugin& p, Session& ss) { return p.on_helo(ss, view(helo)); });
  }
  static mg_action on_mail(void* st, mg_session* s, const char* sender) noexcept {
    return run_stage(st, s, "on_mail",
                     [sender](Plugin& p, Session& ss) { return p.on_mail(ss, view(sender)); });
  }
  static mg_action on_rcpt(void* st, mg_session* s, const char* rcpt) noexcept {
    return run_stage(st, s, "on_rcpt",
                     [rcpt](Plugin& p, Session& ss) { return p.on_rcpt(ss, view(rcpt)); });
  }
  static mg_action on_data(void* st, mg_session* s) noexcept {
    return run_stage(st, s, "on_data", [](Plugin& p, Session& ss) { return p.on_data(ss); });
  }
  static mg_action on_header(void* st, mg_session* s, const char* name,
                             const char* value) noexcept {
    return run_stage(st, s, "on_header", [name, value](Plugin& p, Session& ss) {
      return p.on_header(ss, view(name), view(value));
    });
  }
  static mg_action on_eoh(void* st, mg_session* s) noexcept {
    return run_stage(st, s, "on_eoh", [](Plugin& p, Session& ss) { return p.on_eoh(ss); });
  }
  static mg_action on_body(void* st, mg_session* s, const unsigned char* chunk,
                           std::size_t len) noexcept {
    return run_stage(st, s, "on_body", [chunk, len](Plugin& p, Session& ss) {
      const std::string_view bytes =
          chunk != nullptr ? std::string_view(reinterpret_cast<const char*>(chunk), len)
                           : std::string_view();
      return p.on_body(ss, bytes);
    });
  }
  static mg_action on_eom(void* st, mg_session* s) noexcept {
    return run_stage(st, s, "on_eom", [](Plugin& p, Session& ss) { return p.on_eom(ss); });
  }
  static void on_reset(void* st, mg_session* s) noexcept {
    run_void_stage(st, s, "on_reset", [](Plugin& p, Session& ss) { p.on_reset(ss); });
  }
  static void on_close(void* st, mg_session* s) noexcept {
    run_void_stage(st, s, "on_close", [](Plugin& p, Session& ss) { p.on_close(ss); });
  }
};

// Whether P overrides a stage: `&P::on_x` names Plugin::on_x, of type `R (Plugin::*)(...)`,
// unless P (or a base between P and Plugin) declares its own on_x.
#define MAILGATE_DETAIL_OVERRIDES(P, stage) \
  (!std::is_same_v<decltype(&P::stage), decltype(&::mailgate::Plugin::stage)>)

}  // namespace detail

// Which stages P overrides, as a bit set indexed by mg_stage.
template <class P>
constexpr std::uint32_t overridden_stages() {
  std::uint32_t bits = 0;
  if constexpr (MAILGATE_DETAIL_OVERRIDES(P, on_connect)) bits |= 1u << MG_STAGE_CONNECT;
  if constexpr (MAILGATE_DETAIL_OVERRIDES(P, on_helo)) bits |= 1u << MG_STAGE_HELO;
  if constexpr (MAILGATE_DETAIL_OVERRIDES(P, on_mail)) bits |= 1u << MG_STAGE_MAIL;
  if constexpr (MAILGATE_DETAIL_OVERRIDES(P, on_rcpt)) bits |= 1u << MG_STAGE_RCPT;
  if constexpr (MAILGATE_DETAIL_OVERRIDES(P, on_data)) bits |= 1u << MG_STAGE_DATA;
  if constexpr (MAILGATE_DETAIL_OVERRIDES(P, on_header)) bits |= 1u << MG_STAGE_HEADER;
  if constexpr (MAILGATE_DETAIL_OVERRIDES(P, on_eoh)) bits |= 1u << MG_STAGE_EOH;
  if constexpr (MAILGATE_DETAIL_OVERRIDES(P, on_body)) bits |= 1u << MG_STAGE_BODY;
  if constexpr (MAILGATE_DETAIL_OVERRIDES(P, on_eom)) bits |= 1u << MG_STAGE_EOM;
  if constexpr (MAILGATE_DETAIL_OVERRIDES(P, on_reset)) bits |= 1u << MG_STAGE_RESET;
  if constexpr (MAILGATE_DETAIL_OVERRIDES(P, on_close)) bits |= 1u << MG_STAGE_CLOSE;
  return bits;
}
#undef MAILGATE_DETAIL_OVERRIDES

// The descriptor for plugin class P: create/destroy always, a callback only for each stage P
// overrides, so the gateway skips the others without a call (a body-stage callback that does
// nothing would otherwise be called for every chunk of every message).
template <class P>
constexpr mg_plugin make_descriptor(const char* name, const char* version, std::uint32_t flags) {
  static_assert(std::is_base_of_v<Plugin, P>, "a mailgate plugin class derives from Plugin");
  static_assert(std::is_constructible_v<P, const PluginContext&>,
                "a mailgate plugin class is constructible from const PluginContext& "
                "(write `using Plugin::Plugin;` if it needs nothing else)");
  using T = detail::Trampolines<P>;
  constexpr std::uint32_t stages = overridden_stages<P>();
  mg_plugin d{};
  d.struct_size = sizeof(mg_plugin);
  d.abi_version = MG_ABI_VERSION;
  d.name = name;
  d.version = version;
  d.flags = flags;
  d.create = &T::create;
  d.destroy = &T::destroy;
  if (stages & (1u << MG_STAGE_CONNECT)) d.on_connect = &T::on_connect;
  if (stages & (1u << MG_STAGE_HELO)) d.on_helo = &T::on_helo;
  if (stages & (1u << MG_STAGE_MAIL)) d.on_mail = &T::on_mail;
  if (stages & (1u << MG_STAGE_RCPT)) d.on_rcpt = &T::on_rcpt;
  if (stages & (1u << MG_STAGE_DATA)) d.on_data = &T::on_data;
  if (stages & (1u << MG_STAGE_HEADER)) d.on_header = &T::on_header;
  if (stages & (1u << MG_STAGE_EOH)) d.on_eoh = &T::on_eoh;
  if (stages & (1u << MG_STAGE_BODY)) d.on_body = &T::on_body;
  if (stages & (1u << MG_STAGE_EOM)) d.on_eom = &T::on_eom;
  if (stages & (1u << MG_STAGE_RESET)) d.on_reset = &T::on_reset;
  if (stages & (1u << MG_STAGE_CLOSE)) d.on_close = &T::on_close;
  return d;
}

// The body of mailgate_plugin_entry(): the descriptor when the host's ABI major is ours, else
// NULL after an error line naming the plugin and both versions (through host->log, whose place
// in the table never changes across majors). `host` may be NULL.
inline const mg_plugin* accept_host(const mg_plugin* descriptor, std::uint32_t host_abi_version,
                                    const mg_host* host) noexcept {
  if (MG_ABI_MAJOR(host_abi_version) == MG_ABI_VERSION_MAJOR) return descriptor;
  if (host != nullptr && host->struct_size >= offsetof(mg_host, log) + sizeof(host->log) &&
      host->log != nullptr) {
    char line[384];
    std::snprintf(line, sizeof(line),
                  "plugin %s %s was built for plugin ABI %u.%u and cannot run on a host with "
                  "ABI %u.%u: rebuild it against this gateway's SDK",
                  descriptor->name, descriptor->version, unsigned{MG_ABI_VERSION_MAJOR},
                  unsigned{MG_ABI_VERSION_MINOR}, unsigned{MG_ABI_MAJOR(host_abi_version)},
                  unsigned{MG_ABI_MINOR(host_abi_version)});
    host->log(nullptr, MG_LOG_ERROR, line);
  }
  return nullptr;
}

}  // namespace mailgate

// Exports plugin class `Class` under `name` ([a-z0-9_-]+, unique in the chain) with its own
// `version` text and `flags` (0, MG_PLUGIN_NONBLOCKING, or the ABI 1.4 hints
// MG_PLUGIN_BLOCKS_ONLY_IN_STORE and MG_PLUGIN_INLINE_STAGE(stage); see mailgate/plugin.h).
// Use it once per .so, at namespace scope, followed by a semicolon. It defines the static
// descriptor and the extern "C" mailgate_plugin_entry(), which refuses a host of another ABI
// major.
#define MAILGATE_PLUGIN(Class, name, version, flags)                                      \
  namespace {                                                                             \
  constexpr ::mg_plugin mailgate_plugin_descriptor_ =                                     \
      ::mailgate::make_descriptor<Class>(name, version, flags);                           \
  }                                                                                       \
  extern "C" MG_PLUGIN_EXPORT const ::mg_plugin* mailgate_plugin_entry(                   \
      ::std::uint32_t host_abi_version, const ::mg_host* host) {                          \
    return ::mailgate::accept_host(&mailgate_plugin_descriptor_, host_abi_version, host); \
  }                                                                                       \
  static_assert(::mailgate::detail::valid_plugin_name(name),                              \
                "MAILGATE_PLUGIN: the plugin name must match [a-z0-9_-]+")
