// mailgate/fake_host.hpp — an in-memory mailgate host for plugin unit tests: no gateway, no
// network, no DNS server. Header-only, C++17; link with mailgate::fake_host (it adds libdl).
//
// Owns: FakeHost (one mg_host table whose every service is backed by memory the test scripts
// and inspects: logs, policy rows, DNS answers, and the store (counters, rate limits, records)
// on a fake clock that moves only when the test says so), FakeSession (one
// session: items, MAIL parameters, recipients, headers, body, and what the plugin did —
// reply, symbols, header and envelope edits, data slots), LoadedPlugin (a plugin obtained by
// calling its entry point directly or by dlopen() of its .so, created with its settings), and
// run_*() helpers that drive one stage the way the gateway does.
//
//   mailgate::fake::FakeHost host;
//   mailgate::fake::LoadedPlugin plugin(host, &mailgate_plugin_entry, R"({"score": 2.5})");
//   mailgate::fake::FakeSession s(host);
//   s.set(MG_ITEM_CLIENT_ADDR, "192.0.2.1");
//   EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
//   EXPECT_EQ(run_rcpt(plugin, s, "bot-1@example.com"), MG_REJECT);
//   EXPECT_EQ(s.reply()->code, 550);
//
// The fake enforces the ABI's stage rules (header edits only in EOH/EOM, headers readable from
// EOH, the body from EOM, rcpt_rewrite only in RCPT, ...): a refused call returns -1 as the
// gateway would and is also listed in FakeHost::violations(), with other contract breaches
// (invalid symbol names, DNS results freed twice or never). A clean test ends with
// EXPECT_TRUE(host.violations().empty()).
//
// Threads: a FakeSession belongs to one thread at a time, like a real session; FakeHost's own
// state (logs, DNS, policy, counters) is locked, so a test may drive sessions from several
// threads. Services without a session argument (policy_lookup, counter_add, dns_free, log and
// dns_query with a NULL session) reach the most recently constructed FakeHost that is still
// alive: create hosts one at a time, or nest them.
// Lifetimes: destroy FakeSessions before the LoadedPlugin whose free_fn they may still call
// (declare the plugin first), and the LoadedPlugin before the FakeHost.
#pragma once

#include <dlfcn.h>
#include <mailgate/plugin.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace mailgate::fake {

struct LogLine {
  mg_log_level level;
  std::string session_id;  // empty for a line logged without a session
  std::string message;
};

struct Reply {
  int code;
  std::string enhanced;  // "" when the plugin gave none
  std::string text;      // control characters replaced by spaces, as the gateway does
};

struct Symbol {
  std::string name;
  double score;
  std::optional<std::string> detail;
};

struct HeaderField {
  std::string name;
  std::string value;
  // The field exactly as received (name, colon, value with folding, CRLF); empty for a field
  // given as name and value or added/changed by the plugin, relayed as "name: value" CRLF.
  std::string raw;
};

struct AuthResult {
  std::string method;
  std::string result;
  std::string reason;      // "" when none
  std::string properties;  // "" when none
};

struct HeaderEdit {
  enum class Kind { kAdd, kInsert, kRemove, kChange };
  Kind kind;
  std::string name;
  std::string value;           // kAdd, kInsert, kChange
  std::size_t index = 0;       // kInsert
  std::size_t occurrence = 0;  // kRemove (0 = all), kChange (1-based)
};

struct EnvelopeEdit {
  enum class Kind { kSetSender, kRcptRewrite, kRcptAdd, kRcptRemove };
  Kind kind;
  std::string address;
  std::string previous;  // kSetSender: the old sender; kRcptRewrite: the recipient replaced
};

struct DnsRecord {
  std::string text;  // address, name, or the TXT strings concatenated
  std::uint16_t preference = 0;
  std::uint32_t ttl = 300;
};

struct DnsAnswer {
  mg_dns_status status = MG_DNS_OK;
  std::vector<DnsRecord> records;
  bool secure = false;
};

class FakeHost;
class FakeSession;
class LoadedPlugin;

namespace detail {

inline std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// DNS names compare case-insensitively and without the trailing dot.
inline std::string dns_key(std::string_view name) {
  std::string out = lower(name);
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

inline bool valid_symbol_name(const char* name) {
  if (name == nullptr || *name == '\0' || std::strlen(name) > 64) return false;
  for (const char* p = name; *p != '\0'; ++p)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_')) return false;
  return true;
}

// A header field name: printable US-ASCII except ':' (RFC 5322 section 3.6.8), at most 200.
inline bool valid_header_name(const char* name) {
  if (name == nullptr || *name == '\0' || std::strlen(name) > 200) return false;
  for (const char* p = name; *p != '\0'; ++p)
    if (*p < 33 || *p > 126 || *p == ':') return false;
  return true;
}

// A header value: CR LF only as folding (followed by a space or a tab), at most 64 KiB.
inline bool valid_header_value(const char* value) {
  if (value == nullptr || std::strlen(value) > 64 * 1024) return false;
  for (const char* p = value; *p != '\0'; ++p) {
    if (*p == '\r') {
      if (p[1] != '\n' || (p[2] != ' ' && p[2] != '\t')) return false;
      ++p;
    } else if (*p == '\n') {
      return false;
    }
  }
  return true;
}

// An envelope address without <>: no controls, spaces or angle brackets, at most 254.
inline bool valid_address(const char* address, bool allow_empty) {
  if (address == nullptr || std::strlen(address) > 254) return false;
  if (*address == '\0') return allow_empty;
  for (const char* p = address; *p != '\0'; ++p) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (c <= 32 || c == 127 || c == '<' || c == '>') return false;
  }
  return true;
}

// An enhanced status code "C.S.D" of class `klass` (RFC 3463): S and D of 1 to 3 digits.
inline bool valid_enhanced(const std::string& code, char klass) {
  if (code.size() < 5 || code[0] != klass || code[1] != '.') return false;
  std::size_t dots = 0, digits = 0;
  for (std::size_t i = 2; i < code.size(); ++i) {
    if (code[i] == '.') {
      if (digits == 0 || ++dots > 1) return false;
      digits = 0;
    } else if (code[i] >= '0' && code[i] <= '9') {
      if (++digits > 3) return false;
    } else {
      return false;
    }
  }
  return dots == 1 && digits > 0;
}

// One line as the gateway keeps it: control characters become spaces, bounded length.
inline std::string one_line(const char* text, std::size_t max) {
  std::string out;
  for (const char* p = text; p != nullptr && *p != '\0' && out.size() < max; ++p) {
    const unsigned char c = static_cast<unsigned char>(*p);
    out.push_back(c < 0x20 || c == 0x7f ? ' ' : *p);
  }
  return out;
}

inline const char* stage_name(mg_stage stage) {
  static const char* const kNames[] = {"CONNECT", "HELO", "MAIL", "RCPT",  "DATA", "HEADER",
                                       "EOH",     "BODY", "EOM",  "RESET", "CLOSE"};
  const unsigned i = static_cast<unsigned>(stage);
  return i < sizeof(kNames) / sizeof(kNames[0]) ? kNames[i] : "?";
}

inline FakeHost*& current_host() {
  static FakeHost* host = nullptr;
  return host;
}

struct Callbacks;

}  // namespace detail

// The host side of the ABI, in memory. Not copyable or movable: plugins keep its table.
class FakeHost {
 public:
  FakeHost();
  ~FakeHost();
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  // The services table to hand to a plugin's entry point and create().
  const mg_host* table() const noexcept { return &table_; }
  // Pretends to be an older host: the table's struct_size, e.g. offsetof(mg_host, body_replace)
  // for a 1.2 gateway, so MG_HOST_HAS() is false for what came later. Set it before loading.
  void set_table_size(std::uint32_t struct_size) { table_.struct_size = struct_size; }

  // --- DNS ---------------------------------------------------------------------------------
  // Scripts the answer to (name, type); names match case-insensitively, trailing dot or not.
  void add_dns(std::string_view name, mg_dns_type type, DnsAnswer answer) {
    std::lock_guard<std::mutex> lock(mu_);
    dns_[{detail::dns_key(name), type}] = std::move(answer);
  }
  // Shorthand for an MG_DNS_OK answer with these records' text (ttl 300, preference 0).
  void add_dns(std::string_view name, mg_dns_type type, const std::vector<std::string>& texts) {
    DnsAnswer answer;
    for (const std::string& t : texts) answer.records.push_back(DnsRecord{t, 0, 300});
    add_dns(name, type, std::move(answer));
  }
  // Shorthand for an answer without records (NXDOMAIN, NODATA, TEMPFAIL, ERROR).
  void add_dns_status(std::string_view name, mg_dns_type type, mg_dns_status status) {
    DnsAnswer answer;
    answer.status = status;
    add_dns(name, type, std::move(answer));
  }
  // The status of queries nobody scripted (MG_DNS_NXDOMAIN unless set).
  void set_dns_default(mg_dns_status status) {
    std::lock_guard<std::mutex> lock(mu_);
    dns_default_ = status;
  }
  // Makes queries of (name, type) take `ms` milliseconds of real time before they answer (the
  // lock is not held meanwhile): a slow or dead server, for plugins with their own timeouts.
  void set_dns_delay_ms(std::string_view name, mg_dns_type type, std::uint32_t ms) {
    std::lock_guard<std::mutex> lock(mu_);
    dns_delay_ms_[{detail::dns_key(name), type}] = ms;
  }
  // Tries, as the gateway makes them for a plugin flagged MG_PLUGIN_TRY_INLINE (ABI 1.5): the
  // run_* drivers first call such a plugin's callback (every stage but HEADER and BODY) with
  // DNS from the cache alone, where a (name, type) is cached once a blocking query answered it
  // with a final status (OK, NXDOMAIN, NODATA) and anything else is MG_DNS_WOULDBLOCK; when
  // the callback answers MG_RETRY_BLOCKING they call it again with DNS resolving, as the
  // gateway's worker pool does. On unless turned off.
  void set_try_inline(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    try_inline_ = on;
  }
  bool try_inline() const {
    std::lock_guard<std::mutex> lock(mu_);
    return try_inline_;
  }
  // Tries answered MG_RETRY_BLOCKING, and queries a try got MG_DNS_WOULDBLOCK for.
  std::size_t inline_retries() const {
    std::lock_guard<std::mutex> lock(mu_);
    return inline_retries_;
  }
  std::size_t dns_would_block() const {
    std::lock_guard<std::mutex> lock(mu_);
    return dns_would_block_;
  }
  // Calls `call` (one callback of a plugin with descriptor flags `flags`, in `stage`) as the
  // gateway would: tried first when the plugin asks for it (see set_try_inline). The run_*
  // drivers use it; a test driving callbacks by hand can too.
  template <class Call>
  mg_action call_tried(std::uint32_t flags, mg_stage stage, Call&& call) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!try_inline_ || (flags & MG_PLUGIN_TRY_INLINE) == 0 || stage == MG_STAGE_HEADER ||
        stage == MG_STAGE_BODY || nonblocking_ ||
        (inline_stage_flags_ & MG_PLUGIN_INLINE_STAGE(stage)) != 0) {
      lock.unlock();
      return call();
    }
    lock.unlock();
    trying_here() = true;
    const mg_action action = call();
    trying_here() = false;
    lock.lock();
    if (action != MG_RETRY_BLOCKING) return action;
    ++inline_retries_;
    lock.unlock();
    return call();
  }
  // A try runs on this thread (the callback's): its DNS comes from the cache only. Per thread,
  // as tries of several sessions may run at once.
  static bool& trying_here() {
    static thread_local bool trying = false;
    return trying;
  }
  // Empties the cache the tries answer from.
  void forget_dns_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    dns_cached_.clear();
  }
  // Every query the plugin made, in order: (name as asked, type); a try's answered from the
  // cache are in, its MG_DNS_WOULDBLOCK ones are not.
  std::vector<std::pair<std::string, mg_dns_type>> dns_queries() const {
    std::lock_guard<std::mutex> lock(mu_);
    return dns_queries_;
  }
  // Results handed out and not yet freed with dns_free().
  std::size_t dns_results_outstanding() const {
    std::lock_guard<std::mutex> lock(mu_);
    return dns_results_.size();
  }
  // What dns_query() does for a plugin flagged MG_PLUGIN_NONBLOCKING: MG_DNS_ERROR, no query.
  // LoadedPlugin sets it from the descriptor's flags.
  void set_nonblocking(bool nonblocking) {
    std::lock_guard<std::mutex> lock(mu_);
    nonblocking_ = nonblocking;
  }
  // The same in the stages a plugin declared with MG_PLUGIN_INLINE_STAGE (ABI 1.4), as the
  // gateway does: `flags` is the descriptor's. LoadedPlugin sets it.
  void set_inline_stages(std::uint32_t flags) {
    std::lock_guard<std::mutex> lock(mu_);
    inline_stage_flags_ = flags;
  }

  // --- policy ------------------------------------------------------------------------------
  void set_policy(std::string_view table, std::string_view key, std::string_view value) {
    std::lock_guard<std::mutex> lock(mu_);
    policy_[{std::string(table), std::string(key)}] = std::string(value);
  }
  void clear_policy() {
    std::lock_guard<std::mutex> lock(mu_);
    policy_.clear();
  }

  // --- the store: counters (fixed windows), rate limits (GCRA) and records (ABI 1.2), all on
  // a fake clock that only moves when the test says so -----------------------------------------
  // When false, counter_add(), rate_limit(), kv_get() and kv_set() fail as with an unreachable
  // Redis.
  void set_counters_available(bool available) {
    std::lock_guard<std::mutex> lock(mu_);
    counters_available_ = available;
  }
  // The counter's current value (0 when unknown or expired).
  std::int64_t counter(std::string_view key) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = counters_.find(std::string(key));
    if (it == counters_.end() || expired(it->second)) return 0;
    return it->second.value;
  }
  // Moves the fake clock; counters whose window has passed start again from 0, records whose
  // time to live has passed are gone, rate limits regain room.
  void advance_time_ms(std::uint64_t ms) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ms_ += ms;
  }
  // The fake clock (what now_ms() answers): milliseconds since the epoch, starting at
  // 2026-01-01 00:00:00 UTC.
  std::uint64_t now_ms() const {
    std::lock_guard<std::mutex> lock(mu_);
    return now_ms_;
  }
  void set_time_ms(std::uint64_t ms) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ms_ = ms;
  }
  // The live record at `key` (as kv_get() would see it), nullopt when none.
  std::optional<std::string> record(std::string_view key) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find(std::string(key));
    if (it == records_.end() || (it->second.expires_ms != 0 && it->second.expires_ms <= now_ms_))
      return std::nullopt;
    return it->second.value;
  }
  // What store_fail_mode() answers (MG_STORE_FAIL_TEMPFAIL unless set).
  void set_store_fail_mode(int mode) {
    std::lock_guard<std::mutex> lock(mu_);
    store_fail_mode_ = mode;
  }
  // Every rate_limit() call, in order: "key cost" plus " dry" for dry runs.
  std::vector<std::string> rate_calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return rate_calls_;
  }

  // --- logs and contract violations ----------------------------------------------------------
  std::vector<LogLine> logs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return logs_;
  }
  // True when some line contains `needle`.
  bool logged(std::string_view needle) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const LogLine& line : logs_)
      if (line.message.find(needle) != std::string::npos) return true;
    return false;
  }
  void clear_logs() {
    std::lock_guard<std::mutex> lock(mu_);
    logs_.clear();
  }
  // Also print every log line to stderr (handy when a test fails).
  void echo_logs(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    echo_ = on;
  }
  // Calls the gateway would refuse or that break the ABI's rules, one line each.
  std::vector<std::string> violations() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out = violations_;
    if (!dns_results_.empty())
      out.push_back(std::to_string(dns_results_.size()) + " DNS result(s) not freed");
    return out;
  }

 private:
  friend class FakeSession;
  friend struct detail::Callbacks;

  struct Counter {
    std::int64_t value = 0;
    std::uint64_t start_ms = 0;
    std::uint32_t window_ms = 0;
  };
  // One result handed to the plugin, with the storage its pointers point into.
  struct DnsBlock {
    mg_dns_result result{};
    std::vector<std::string> texts;
    std::vector<mg_dns_record> records;
  };

  bool expired(const Counter& c) const {
    return c.window_ms != 0 && now_ms_ - c.start_ms >= c.window_ms;
  }
  void add_log(mg_log_level level, std::string session_id, std::string message) {
    std::lock_guard<std::mutex> lock(mu_);
    if (echo_) {
      static const char* const kNames[] = {"debug", "info", "warning", "error"};
      const unsigned i = static_cast<unsigned>(level);
      std::fprintf(stderr, "[fake host] %s: %s%s%s\n", i < 4 ? kNames[i] : "?", session_id.c_str(),
                   session_id.empty() ? "" : ": ", message.c_str());
    }
    logs_.push_back(LogLine{level, std::move(session_id), std::move(message)});
  }
  void violation(std::string what) {
    std::lock_guard<std::mutex> lock(mu_);
    violations_.push_back(std::move(what));
  }
  std::uint64_t next_session_number() {
    std::lock_guard<std::mutex> lock(mu_);
    return ++sessions_;
  }

  mg_host table_{};
  FakeHost* previous_ = nullptr;

  mutable std::mutex mu_;
  std::map<std::pair<std::string, mg_dns_type>, DnsAnswer> dns_;
  mg_dns_status dns_default_ = MG_DNS_NXDOMAIN;
  std::vector<std::pair<std::string, mg_dns_type>> dns_queries_;
  std::map<std::pair<std::string, mg_dns_type>, std::uint32_t> dns_delay_ms_;
  std::map<const mg_dns_result*, std::unique_ptr<DnsBlock>> dns_results_;
  bool nonblocking_ = false;
  std::uint32_t inline_stage_flags_ = 0;  // MG_PLUGIN_INLINE_STAGE bits
  bool try_inline_ = true;
  std::set<std::pair<std::string, mg_dns_type>> dns_cached_;
  std::size_t inline_retries_ = 0;
  std::size_t dns_would_block_ = 0;
  std::map<std::pair<std::string, std::string>, std::string> policy_;
  std::map<std::string, Counter> counters_;
  bool counters_available_ = true;
  std::uint64_t now_ms_ = 1'767'225'600'000;
  struct Record {
    std::string value;
    std::uint64_t expires_ms = 0;  // 0: never
  };
  std::map<std::string, Record> records_;
  std::map<std::string, std::int64_t> rate_tat_us_;  // GCRA theoretical arrival times
  std::vector<std::string> rate_calls_;
  int store_fail_mode_ = MG_STORE_FAIL_TEMPFAIL;
  std::vector<LogLine> logs_;
  std::vector<std::string> violations_;
  bool echo_ = false;
  std::uint64_t sessions_ = 0;
};

// One SMTP session as the gateway would present it to a plugin. The test sets what the client
// sent; the run_*() helpers move it through the stages; the accessors show what the plugin did.
// Defaults: a session id, client 192.0.2.1 port 40000 named "unknown", listener 127.0.0.1:25
// with profile "inbound", protocol "SMTP", host name "mx.fake.test"; change any with set().
class FakeSession {
 public:
  explicit FakeSession(FakeHost& host) : host_(host) {
    char id[32];
    std::snprintf(id, sizeof(id), "FAKE%08llu",
                  static_cast<unsigned long long>(host.next_session_number()));
    set(MG_ITEM_SESSION_ID, id);
    set(MG_ITEM_CLIENT_ADDR, "192.0.2.1");
    set(MG_ITEM_CLIENT_PORT, "40000");
    set(MG_ITEM_CLIENT_NAME, "unknown");
    set(MG_ITEM_LOCAL_ADDR, "127.0.0.1:25");
    set(MG_ITEM_PROFILE, "inbound");
    set(MG_ITEM_PROTOCOL, "SMTP");
    set(MG_ITEM_HOSTNAME, "mx.fake.test");
  }
  ~FakeSession() {
    free_slot(tx_data_);
    free_slot(session_data_);
  }
  FakeSession(const FakeSession&) = delete;
  FakeSession& operator=(const FakeSession&) = delete;

  // The opaque handle plugins receive.
  mg_session* handle() noexcept { return reinterpret_cast<mg_session*>(this); }
  FakeHost& host() noexcept { return host_; }

  // --- what the test sets --------------------------------------------------------------------
  FakeSession& set(mg_item item, std::string_view value) {
    if (static_cast<unsigned>(item) < items_.size()) items_[item] = std::string(value);
    return *this;
  }
  FakeSession& unset(mg_item item) {
    if (static_cast<unsigned>(item) < items_.size()) items_[item].reset();
    return *this;
  }
  std::optional<std::string> item(mg_item item) const {
    if (static_cast<unsigned>(item) >= items_.size()) return std::nullopt;
    return items_[item];
  }
  // A MAIL FROM parameter; `value` "" for a keyword without one ("SMTPUTF8").
  FakeSession& set_mail_param(std::string_view keyword, std::string_view value = "") {
    mail_params_[detail::lower(keyword)] = std::string(value);
    return *this;
  }
  // A recipient the gateway has already accepted (run_rcpt() adds them as it goes).
  FakeSession& add_recipient(std::string_view address) {
    recipients_.emplace_back(address);
    return *this;
  }
  // A header field as received (run_header() adds them as it goes).
  FakeSession& add_header(std::string_view name, std::string_view value) {
    received_headers_.push_back(HeaderField{std::string(name), std::string(value), {}});
    headers_.push_back(received_headers_.back());
    return *this;
  }
  // A header field as received, given whole: "Name: value" with its folding and final CRLF
  // (added when missing). header_raw_at() returns these bytes; header_at() the value after the
  // colon with one leading space removed, folding kept, without the final CRLF.
  FakeSession& add_raw_header(std::string_view field) {
    std::string raw(field);
    if (raw.size() < 2 || raw.compare(raw.size() - 2, 2, "\r\n") != 0) raw += "\r\n";
    const std::size_t colon = raw.find(':');
    if (colon == std::string::npos) throw std::invalid_argument("header field without a colon");
    std::string value = raw.substr(colon + 1, raw.size() - 2 - (colon + 1));
    if (!value.empty() && value.front() == ' ') value.erase(0, 1);
    received_headers_.push_back(HeaderField{raw.substr(0, colon), std::move(value), raw});
    headers_.push_back(received_headers_.back());
    return *this;
  }
  // An authentication result recorded by an earlier plugin of the chain (what spf or dkim
  // would have added), for plugins that read them.
  FakeSession& add_auth_result(std::string_view method, std::string_view result,
                               std::string_view reason = {}, std::string_view properties = {}) {
    auth_results_.push_back(AuthResult{std::string(method), std::string(result),
                                       std::string(reason), std::string(properties)});
    return *this;
  }
  FakeSession& set_body(std::string_view body) {
    body_.assign(body);
    return *this;
  }
  // Overrides the computed message size (header fields + blank line + body).
  FakeSession& set_message_size(std::uint64_t size) {
    message_size_ = size;
    return *this;
  }
  // The stage the services see; the run_*() helpers set it.
  // Setting it starts a new callback: the next body_replace() replaces instead of appending.
  FakeSession& set_stage(mg_stage stage) {
    stage_ = stage;
    body_replace_started_ = false;
    return *this;
  }
  // The gateway's maximum message size: body_replace() refuses a body longer than this
  // (default 10240000, the gateway's --max_message_size default).
  FakeSession& set_max_message_size(std::uint64_t size) {
    max_message_size_ = size;
    return *this;
  }
  mg_stage stage() const noexcept { return stage_; }

  // What the gateway does after the RESET stage: frees the transaction's data slot and forgets
  // the transaction (sender, parameters, recipients, message, reply, symbols, edits).
  void end_transaction() {
    free_slot(tx_data_);
    unset(MG_ITEM_SENDER).unset(MG_ITEM_TX_ID).unset(MG_ITEM_CURRENT_RCPT);
    sender_.reset();
    mail_params_.clear();
    recipients_.clear();
    received_headers_.clear();
    headers_.clear();
    body_.clear();
    message_size_.reset();
    reply_.reset();
    symbols_.clear();
    auth_results_.erase(auth_results_.begin() + static_cast<std::ptrdiff_t>(session_auth_results_),
                        auth_results_.end());
    header_edits_.clear();
    envelope_edits_.clear();
    replaced_body_.reset();
    quarantine_reason_.reset();
  }
  // What the gateway does after the CLOSE stage.
  void end_session() {
    free_slot(tx_data_);
    free_slot(session_data_);
  }

  // --- what the plugin did -------------------------------------------------------------------
  const std::optional<Reply>& reply() const noexcept { return reply_; }
  const std::vector<Symbol>& symbols() const noexcept { return symbols_; }
  std::optional<Symbol> symbol(std::string_view name) const {
    for (const Symbol& s : symbols_)
      if (s.name == name) return s;
    return std::nullopt;
  }
  bool has_symbol(std::string_view name) const { return symbol(name).has_value(); }
  // Authentication results: those seeded with add_auth_result() and those the plugin added.
  const std::vector<AuthResult>& auth_results() const noexcept { return auth_results_; }
  std::optional<AuthResult> auth_result(std::string_view method) const {
    for (const AuthResult& r : auth_results_)
      if (r.method == method) return r;
    return std::nullopt;
  }
  double score() const {
    double sum = 0;
    for (const Symbol& s : symbols_) sum += s.score;
    return sum;
  }
  // The edits the plugin made, in order (refused ones are not listed).
  const std::vector<HeaderEdit>& header_edits() const noexcept { return header_edits_; }
  // The header as received, before any edit.
  const std::vector<HeaderField>& received_headers() const noexcept { return received_headers_; }
  // The header as it would be relayed: edits apply at once, as in the gateway, so this is also
  // what header_count()/header_at() show plugins.
  const std::vector<HeaderField>& headers() const noexcept { return headers_; }
  // The value of the first relayed field named `name` (case-insensitive).
  std::optional<std::string> header(std::string_view name) const {
    for (const HeaderField& f : headers_)
      if (detail::lower(f.name) == detail::lower(name)) return f.value;
    return std::nullopt;
  }
  // What the client would get for `action` (TEMPFAIL or REJECT), as the gateway builds it from
  // set_reply(): a code of the wrong class becomes 451/550, an enhanced code of the wrong class
  // or shape becomes 4.7.1/5.7.1, no text becomes the gateway's default. nullopt otherwise.
  std::optional<Reply> client_reply(mg_action action) const {
    if (action != MG_TEMPFAIL && action != MG_REJECT) return std::nullopt;
    const bool temp = action == MG_TEMPFAIL;
    Reply r = reply_.value_or(Reply{0, "", ""});
    if (r.code < (temp ? 400 : 500) || r.code > (temp ? 499 : 599)) r.code = temp ? 451 : 550;
    if (!detail::valid_enhanced(r.enhanced, temp ? '4' : '5'))
      r.enhanced = temp ? "4.7.1" : "5.7.1";
    if (r.text.empty())
      r.text = temp ? "Temporarily rejected by policy, try again later" : "Rejected by policy";
    return r;
  }
  const std::vector<EnvelopeEdit>& envelope_edits() const noexcept { return envelope_edits_; }
  // The envelope as it would be relayed.
  std::optional<std::string> sender() const { return sender_; }
  const std::vector<std::string>& recipients() const noexcept { return recipients_; }
  // The body as received (what body_read() returns, before and after body_replace()).
  const std::string& body() const noexcept { return body_; }
  // ABI 1.3: the body that would be relayed instead (body_replace()), nullopt when not replaced.
  const std::optional<std::string>& replaced_body() const noexcept { return replaced_body_; }
  // ABI 1.3: the reason given to quarantine(), nullopt when the message is not quarantined.
  const std::optional<std::string>& quarantine_reason() const noexcept {
    return quarantine_reason_;
  }
  const std::vector<LogLine>& logs() const noexcept { return logs_; }
  bool logged(std::string_view needle) const {
    for (const LogLine& line : logs_)
      if (line.message.find(needle) != std::string::npos) return true;
    return false;
  }
  // The data slot's pointer (Scope: 0 transaction, 1 session).
  void* data(int session_scope) const noexcept {
    return session_scope != 0 ? session_data_.data : tx_data_.data;
  }

 private:
  friend struct detail::Callbacks;
  friend mg_action run_mail(LoadedPlugin&, FakeSession&, std::string_view);
  friend mg_action run_rcpt(LoadedPlugin&, FakeSession&, std::string_view);
  friend mg_action run_header(LoadedPlugin&, FakeSession&, std::string_view, std::string_view);
  friend mg_action run_body(LoadedPlugin&, FakeSession&, std::string_view);

  struct Slot {
    void* data = nullptr;
    void (*free_fn)(void*) = nullptr;
  };
  static void free_slot(Slot& slot) {
    if (slot.data != nullptr && slot.free_fn != nullptr) slot.free_fn(slot.data);
    slot = Slot{};
  }

  // Applies an edit to the current header; false when header_change found no such field.
  bool apply(const HeaderEdit& e) {
    const std::string name = detail::lower(e.name);
    switch (e.kind) {
      case HeaderEdit::Kind::kAdd:
        headers_.push_back(HeaderField{e.name, e.value, {}});
        return true;
      case HeaderEdit::Kind::kInsert: {
        const std::size_t at = e.index < headers_.size() ? e.index : headers_.size();
        headers_.insert(headers_.begin() + static_cast<std::ptrdiff_t>(at),
                        HeaderField{e.name, e.value, {}});
        return true;
      }
      case HeaderEdit::Kind::kRemove: {
        std::size_t seen = 0;
        for (auto it = headers_.begin(); it != headers_.end();) {
          if (detail::lower(it->name) == name && (e.occurrence == 0 || ++seen == e.occurrence)) {
            it = headers_.erase(it);
            if (e.occurrence != 0) break;
          } else {
            ++it;
          }
        }
        return true;
      }
      case HeaderEdit::Kind::kChange: {
        std::size_t seen = 0;
        for (HeaderField& f : headers_) {
          if (detail::lower(f.name) == name && ++seen == e.occurrence) {
            f.value = e.value;
            f.raw.clear();
            return true;
          }
        }
        return false;
      }
    }
    return false;
  }

  bool in_stages(mg_stage first, mg_stage last) const { return stage_ >= first && stage_ <= last; }
  // A call the gateway refuses in this stage: note it and return -1.
  int refuse(const char* service, const char* rule) {
    host_.violation(std::string(service) + " refused in stage " + detail::stage_name(stage_) +
                    ": " + rule);
    return -1;
  }
  int malformed(const char* service, const char* what) {
    host_.violation(std::string(service) + ": " + what);
    return -1;
  }
  std::uint64_t computed_message_size() const {
    if (message_size_) return *message_size_;
    std::uint64_t size = 2 + body_.size();  // the blank line ending the header
    for (const HeaderField& f : received_headers_)
      size += f.raw.empty() ? f.name.size() + 2 + f.value.size() + 2 : f.raw.size();
    return size;
  }

  FakeHost& host_;
  mg_stage stage_ = MG_STAGE_CONNECT;
  std::array<std::optional<std::string>, MG_ITEM_COUNT> items_;
  std::map<std::string, std::string> mail_params_;  // keyword lower-cased
  std::optional<std::string> sender_;
  std::vector<std::string> recipients_;
  std::string current_rcpt_;
  bool rcpt_dropped_ = false;  // rcpt_remove of current_rcpt_ in RCPT
  std::vector<HeaderField> received_headers_;
  std::vector<HeaderField> headers_;  // received_headers_ with the edits applied
  std::string body_;
  std::optional<std::uint64_t> message_size_;
  std::optional<Reply> reply_;
  std::vector<Symbol> symbols_;
  std::vector<AuthResult> auth_results_;
  std::size_t session_auth_results_ = 0;  // the first ones, added before MAIL, outlive a transaction
  std::vector<HeaderEdit> header_edits_;
  std::vector<EnvelopeEdit> envelope_edits_;
  std::optional<std::string> replaced_body_;
  bool body_replace_started_ = false;  // this callback already called body_replace()
  std::uint64_t max_message_size_ = 10240000;
  std::optional<std::string> quarantine_reason_;
  Slot tx_data_;
  Slot session_data_;
  std::vector<LogLine> logs_;
  unsigned transactions_ = 0;
};

namespace detail {

// The C functions of the fake's mg_host table.
struct Callbacks {
  static FakeSession& session(mg_session* s) { return *reinterpret_cast<FakeSession*>(s); }

  static void log(mg_session* s, mg_log_level level, const char* message) {
    const std::string text = message != nullptr ? message : "(null)";
    if (s == nullptr) {
      if (FakeHost* host = current_host()) host->add_log(level, "", text);
      return;
    }
    FakeSession& fs = session(s);
    const std::string id = fs.item(MG_ITEM_SESSION_ID).value_or("");
    fs.logs_.push_back(LogLine{level, id, text});
    fs.host_.add_log(level, id, text);
  }

  static void set_reply(mg_session* s, int code, const char* enhanced, const char* text) {
    FakeSession& fs = session(s);
    if (code < 400 || code > 599) fs.malformed("set_reply", "code is not 4xx or 5xx");
    fs.reply_ = Reply{code, one_line(enhanced, 16), one_line(text, 400)};
  }

  static const char* get(mg_session* s, mg_item item) {
    FakeSession& fs = session(s);
    if (static_cast<unsigned>(item) >= fs.items_.size()) return nullptr;
    const std::optional<std::string>& value = fs.items_[item];
    return value ? value->c_str() : nullptr;
  }

  static const char* mail_param(mg_session* s, const char* keyword) {
    FakeSession& fs = session(s);
    if (keyword == nullptr) return nullptr;
    auto it = fs.mail_params_.find(lower(keyword));
    return it != fs.mail_params_.end() ? it->second.c_str() : nullptr;
  }

  static std::size_t rcpt_count(mg_session* s) { return session(s).recipients_.size(); }
  static const char* rcpt_at(mg_session* s, std::size_t index) {
    FakeSession& fs = session(s);
    return index < fs.recipients_.size() ? fs.recipients_[index].c_str() : nullptr;
  }

  static bool headers_readable(const FakeSession& fs) {
    return fs.in_stages(MG_STAGE_EOH, MG_STAGE_EOM);
  }
  static std::size_t header_count(mg_session* s) {
    FakeSession& fs = session(s);
    return headers_readable(fs) ? fs.headers_.size() : 0;
  }
  static int header_at(mg_session* s, std::size_t index, const char** name, const char** value) {
    FakeSession& fs = session(s);
    if (!headers_readable(fs) || index >= fs.headers_.size()) return -1;
    if (name != nullptr) *name = fs.headers_[index].name.c_str();
    if (value != nullptr) *value = fs.headers_[index].value.c_str();
    return 0;
  }

  static int header_raw_at(mg_session* s, std::size_t index, const char** raw, std::size_t* len) {
    FakeSession& fs = session(s);
    if (!headers_readable(fs) || index >= fs.headers_.size()) return -1;
    HeaderField& f = fs.headers_[index];
    if (f.raw.empty()) f.raw = f.name + ": " + f.value + "\r\n";
    if (raw != nullptr) *raw = f.raw.data();
    if (len != nullptr) *len = f.raw.size();
    return 0;
  }

  static std::int64_t body_read(mg_session* s, std::uint64_t offset, void* buf, std::size_t len) {
    FakeSession& fs = session(s);
    if (fs.stage_ != MG_STAGE_EOM) return fs.refuse("body_read", "the body is readable in EOM");
    if (offset >= fs.body_.size()) return 0;
    const std::size_t n = std::min<std::uint64_t>(len, fs.body_.size() - offset);
    std::memcpy(buf, fs.body_.data() + offset, n);
    return static_cast<std::int64_t>(n);
  }
  static std::uint64_t message_size(mg_session* s) { return session(s).computed_message_size(); }

  static void add_symbol(mg_session* s, const char* name, double score, const char* detail) {
    FakeSession& fs = session(s);
    if (!valid_symbol_name(name)) {
      fs.malformed("add_symbol", "symbol names match [A-Z0-9_]{1,64}");
      return;
    }
    if (score != score) {
      fs.malformed("add_symbol", "the score is NaN");
      return;
    }
    std::optional<std::string> detail_text;
    if (detail != nullptr) detail_text = detail;
    for (Symbol& sym : fs.symbols_) {
      if (sym.name == name) {
        sym.score = score;
        sym.detail = std::move(detail_text);
        return;
      }
    }
    fs.symbols_.push_back(Symbol{name, score, std::move(detail_text)});
  }
  static bool auth_keyword(const char* text) {
    if (text == nullptr || *text == 0 || std::strlen(text) > 64) return false;
    for (const char* p = text; *p != 0; ++p) {
      const char ch = *p;
      if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
            ch == '-'))
        return false;
    }
    return true;
  }
  static bool auth_text(const char* text) {
    return text == nullptr || (std::strlen(text) <= 1000 && std::strpbrk(text, "\r\n;") == nullptr);
  }
  static int auth_result_add(mg_session* s, const char* method, const char* result,
                             const char* reason, const char* properties) {
    FakeSession& fs = session(s);
    if (!auth_keyword(method) || !auth_keyword(result))
      return fs.malformed("auth_result_add", "method and result match [a-z0-9_.-]{1,64}");
    if (!auth_text(reason) || !auth_text(properties))
      return fs.malformed("auth_result_add", "reason and properties hold no CR, LF or ';'");
    AuthResult r{method, result, reason != nullptr ? reason : "",
                 properties != nullptr ? properties : ""};
    if (fs.stage_ == MG_STAGE_CONNECT || fs.stage_ == MG_STAGE_HELO) {
      fs.auth_results_.insert(
          fs.auth_results_.begin() + static_cast<std::ptrdiff_t>(fs.session_auth_results_++),
          std::move(r));
    } else {
      fs.auth_results_.push_back(std::move(r));
    }
    return 0;
  }
  static std::size_t auth_result_count(mg_session* s) { return session(s).auth_results_.size(); }
  static int auth_result_at(mg_session* s, std::size_t index, const char** method,
                            const char** result, const char** reason, const char** properties) {
    FakeSession& fs = session(s);
    if (index >= fs.auth_results_.size()) return -1;
    const AuthResult& r = fs.auth_results_[index];
    if (method != nullptr) *method = r.method.c_str();
    if (result != nullptr) *result = r.result.c_str();
    if (reason != nullptr) *reason = r.reason.empty() ? nullptr : r.reason.c_str();
    if (properties != nullptr) *properties = r.properties.empty() ? nullptr : r.properties.c_str();
    return 0;
  }

  static double score(mg_session* s) { return session(s).score(); }
  static std::size_t symbol_count(mg_session* s) { return session(s).symbols_.size(); }
  static int symbol_at(mg_session* s, std::size_t index, const char** name, double* score,
                       const char** detail) {
    FakeSession& fs = session(s);
    if (index >= fs.symbols_.size()) return -1;
    const Symbol& sym = fs.symbols_[index];
    if (name != nullptr) *name = sym.name.c_str();
    if (score != nullptr) *score = sym.score;
    if (detail != nullptr) *detail = sym.detail ? sym.detail->c_str() : nullptr;
    return 0;
  }

  static int header_edit(mg_session* s, const char* service, HeaderEdit edit, bool with_value,
                         const char* name, const char* value) {
    FakeSession& fs = session(s);
    if (fs.stage_ != MG_STAGE_EOH && fs.stage_ != MG_STAGE_EOM)
      return fs.refuse(service, "header edits are allowed in EOH and EOM");
    if (!valid_header_name(name)) return fs.malformed(service, "invalid header field name");
    if (with_value && !valid_header_value(value))
      return fs.malformed(service, "invalid header value (NUL, or CR/LF not folding)");
    edit.name = name;
    if (with_value) edit.value = value;
    if (!fs.apply(edit)) return -1;  // header_change: no such field (not a violation)
    fs.header_edits_.push_back(std::move(edit));
    return 0;
  }
  static int header_add(mg_session* s, const char* name, const char* value) {
    return header_edit(s, "header_add", HeaderEdit{HeaderEdit::Kind::kAdd, {}, {}, 0, 0}, true,
                       name, value);
  }
  static int header_insert(mg_session* s, std::size_t index, const char* name, const char* value) {
    return header_edit(s, "header_insert", HeaderEdit{HeaderEdit::Kind::kInsert, {}, {}, index, 0},
                       true, name, value);
  }
  static int header_remove(mg_session* s, const char* name, std::size_t occurrence) {
    return header_edit(s, "header_remove",
                       HeaderEdit{HeaderEdit::Kind::kRemove, {}, {}, 0, occurrence}, false, name,
                       nullptr);
  }
  static int header_change(mg_session* s, const char* name, std::size_t occurrence,
                           const char* value) {
    if (occurrence == 0) return session(s).malformed("header_change", "occurrence is 1-based");
    return header_edit(s, "header_change",
                       HeaderEdit{HeaderEdit::Kind::kChange, {}, {}, 0, occurrence}, true, name,
                       value);
  }

  static int set_sender(mg_session* s, const char* address) {
    FakeSession& fs = session(s);
    if (!fs.in_stages(MG_STAGE_MAIL, MG_STAGE_EOM))
      return fs.refuse("set_sender", "allowed from MAIL to EOM");
    if (!valid_address(address, true)) return fs.malformed("set_sender", "malformed address");
    fs.envelope_edits_.push_back(
        EnvelopeEdit{EnvelopeEdit::Kind::kSetSender, address, fs.sender_.value_or("")});
    fs.sender_ = address;
    return 0;
  }
  static int rcpt_rewrite(mg_session* s, const char* address) {
    FakeSession& fs = session(s);
    if (fs.stage_ != MG_STAGE_RCPT) return fs.refuse("rcpt_rewrite", "allowed in RCPT");
    if (!valid_address(address, false)) return fs.malformed("rcpt_rewrite", "malformed address");
    fs.envelope_edits_.push_back(
        EnvelopeEdit{EnvelopeEdit::Kind::kRcptRewrite, address, fs.current_rcpt_});
    fs.current_rcpt_ = address;
    fs.set(MG_ITEM_CURRENT_RCPT, address);
    return 0;
  }
  static int rcpt_add(mg_session* s, const char* address) {
    FakeSession& fs = session(s);
    if (!fs.in_stages(MG_STAGE_RCPT, MG_STAGE_EOM))
      return fs.refuse("rcpt_add", "allowed from RCPT to EOM");
    if (!valid_address(address, false)) return fs.malformed("rcpt_add", "malformed address");
    fs.envelope_edits_.push_back(EnvelopeEdit{EnvelopeEdit::Kind::kRcptAdd, address, ""});
    fs.recipients_.emplace_back(address);
    return 0;
  }
  static int rcpt_remove(mg_session* s, const char* address) {
    FakeSession& fs = session(s);
    if (!fs.in_stages(MG_STAGE_RCPT, MG_STAGE_EOM))
      return fs.refuse("rcpt_remove", "allowed from RCPT to EOM");
    if (!valid_address(address, false)) return fs.malformed("rcpt_remove", "malformed address");
    fs.envelope_edits_.push_back(EnvelopeEdit{EnvelopeEdit::Kind::kRcptRemove, address, ""});
    // In RCPT, removing the recipient being checked drops it (it never joins the recipients).
    if (fs.stage_ == MG_STAGE_RCPT && lower(fs.current_rcpt_) == lower(address))
      fs.rcpt_dropped_ = true;
    for (auto it = fs.recipients_.begin(); it != fs.recipients_.end();) {
      it = lower(*it) == lower(address) ? fs.recipients_.erase(it) : it + 1;
    }
    return 0;
  }

  static void set_data(mg_session* s, int session_scope, void* data, void (*free_fn)(void*)) {
    FakeSession& fs = session(s);
    FakeSession::Slot& slot = session_scope != 0 ? fs.session_data_ : fs.tx_data_;
    FakeSession::free_slot(slot);
    slot.data = data;
    slot.free_fn = free_fn;
  }
  static void* get_data(mg_session* s, int session_scope) { return session(s).data(session_scope); }

  // `s` may be NULL, as with the gateway (a plugin's own threads): the current host answers.
  static mg_dns_result* dns_query(mg_session* s, const char* name, mg_dns_type type) {
    FakeHost* current = s != nullptr ? &session(s).host_ : current_host();
    if (current == nullptr) return nullptr;
    FakeHost& host = *current;
    auto block = std::make_unique<FakeHost::DnsBlock>();
    block->result.struct_size = sizeof(mg_dns_result);
    std::unique_lock<std::mutex> lock(host.mu_);
    if (name != nullptr) {
      auto delay = host.dns_delay_ms_.find({dns_key(name), type});
      if (delay != host.dns_delay_ms_.end()) {
        const std::uint32_t ms = delay->second;
        lock.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        lock.lock();
      }
    }
    const bool declared_inline =
        s != nullptr && (host.inline_stage_flags_ & MG_PLUGIN_INLINE_STAGE(session(s).stage())) != 0;
    if (host.nonblocking_ || declared_inline) {
      lock.unlock();
      log(s, MG_LOG_WARNING, "dns_query called by a non-blocking plugin: refused");
      lock.lock();
      block->result.status = MG_DNS_ERROR;
    } else if (name == nullptr) {
      block->result.status = MG_DNS_ERROR;
    } else if (FakeHost::trying_here() && host.dns_cached_.count({dns_key(name), type}) == 0) {
      ++host.dns_would_block_;
      block->result.status = MG_DNS_WOULDBLOCK;
    } else {
      host.dns_queries_.emplace_back(name, type);
      auto it = host.dns_.find({dns_key(name), type});
      if (it == host.dns_.end()) {
        block->result.status = host.dns_default_;
      } else {
        const DnsAnswer& answer = it->second;
        block->result.status = answer.status;
        block->result.secure = answer.secure ? 1 : 0;
        block->texts.reserve(answer.records.size());
        for (const DnsRecord& r : answer.records) block->texts.push_back(r.text);
        for (std::size_t i = 0; i < answer.records.size(); ++i)
          block->records.push_back(mg_dns_record{
              block->texts[i].c_str(), answer.records[i].preference, answer.records[i].ttl});
      }
    }
    const mg_dns_status got = block->result.status;
    if (name != nullptr && (got == MG_DNS_OK || got == MG_DNS_NXDOMAIN || got == MG_DNS_NODATA))
      host.dns_cached_.insert({dns_key(name), type});
    block->result.count = block->records.size();
    block->result.records = block->records.empty() ? nullptr : block->records.data();
    mg_dns_result* result = &block->result;
    host.dns_results_[result] = std::move(block);
    return result;
  }
  static void dns_free(mg_dns_result* result) {
    if (result == nullptr) return;
    FakeHost* host = current_host();
    if (host == nullptr) return;
    std::lock_guard<std::mutex> lock(host->mu_);
    if (host->dns_results_.erase(result) == 0)
      host->violations_.push_back("dns_free of a result not handed out (or freed twice)");
  }

  static int policy_lookup(const char* table, const char* key, char* buf, std::size_t buflen) {
    FakeHost* host = current_host();
    if (host == nullptr || table == nullptr || key == nullptr) return 0;
    std::lock_guard<std::mutex> lock(host->mu_);
    auto it = host->policy_.find({table, key});
    if (it == host->policy_.end()) return 0;
    if (buf != nullptr && buflen > 0) {
      const std::size_t n = std::min(buflen - 1, it->second.size());
      std::memcpy(buf, it->second.data(), n);
      buf[n] = '\0';
    }
    return 1;
  }

  static int counter_add(const char* key, std::int64_t delta, std::uint32_t window_ms,
                         std::int64_t* value) {
    FakeHost* host = current_host();
    if (host == nullptr || key == nullptr) return -1;
    std::lock_guard<std::mutex> lock(host->mu_);
    if (!host->counters_available_) return -1;
    FakeHost::Counter& c = host->counters_[key];
    if (host->expired(c) || c.window_ms != window_ms) {
      c.value = 0;
      c.start_ms = host->now_ms_;
      c.window_ms = window_ms;
    }
    c.value += delta;
    if (value != nullptr) *value = c.value;
    return 0;
  }

  static std::uint64_t now_ms() {
    FakeHost* host = current_host();
    if (host == nullptr) return 0;
    std::lock_guard<std::mutex> lock(host->mu_);
    return host->now_ms_;
  }

  // GCRA, written here independently of the gateway's store/gcra.cc: the emission interval is
  // period/rate (in microseconds), the tolerance burst intervals.
  static int rate_limit(const char* key, std::uint32_t rate, std::uint32_t period_ms,
                        std::uint32_t burst, std::uint32_t cost, int dry_run,
                        std::uint32_t* retry_after_ms) {
    FakeHost* host = current_host();
    if (host == nullptr || key == nullptr) return -1;
    if (std::strlen(key) > 512) {
      host->violation("rate_limit: key longer than 512 bytes");
      return -1;
    }
    std::lock_guard<std::mutex> lock(host->mu_);
    host->rate_calls_.push_back(std::string(key) + " " + std::to_string(cost) +
                                (dry_run ? " dry" : ""));
    if (!host->counters_available_ || rate == 0 || period_ms == 0) return -1;
    const std::int64_t interval = std::max<std::int64_t>(1, std::int64_t{period_ms} * 1000 / rate);
    const std::int64_t capacity = burst == 0 ? rate : burst;
    const std::int64_t units = std::min<std::int64_t>(std::max<std::uint32_t>(cost, 1), capacity);
    const std::int64_t now = static_cast<std::int64_t>(host->now_ms_) * 1000;
    auto it = host->rate_tat_us_.find(key);
    const std::int64_t tat = it == host->rate_tat_us_.end() ? now : std::max(now, it->second);
    const std::int64_t next = tat + interval * units;
    if (next - interval * capacity > now) {
      if (retry_after_ms != nullptr)
        *retry_after_ms =
            static_cast<std::uint32_t>((next - interval * capacity - now + 999) / 1000);
      return 0;
    }
    if (!dry_run) host->rate_tat_us_[key] = next;
    if (retry_after_ms != nullptr) *retry_after_ms = 0;
    return 1;
  }

  static int kv_get(const char* key, char* buf, std::size_t buflen) {
    FakeHost* host = current_host();
    if (host == nullptr || key == nullptr) return -1;
    if (std::strlen(key) > 512) {
      host->violation("kv_get: key longer than 512 bytes");
      return -1;
    }
    std::lock_guard<std::mutex> lock(host->mu_);
    if (!host->counters_available_) return -1;
    auto it = host->records_.find(key);
    if (it == host->records_.end()) return 0;
    if (it->second.expires_ms != 0 && it->second.expires_ms <= host->now_ms_) {
      host->records_.erase(it);
      return 0;
    }
    if (buf != nullptr && buflen > 0) {
      const std::size_t n = std::min(buflen - 1, it->second.value.size());
      std::memcpy(buf, it->second.value.data(), n);
      buf[n] = '\0';
    }
    return 1;
  }

  static int kv_set(const char* key, const char* value, std::uint32_t ttl_ms, int only_if_absent) {
    FakeHost* host = current_host();
    if (host == nullptr || key == nullptr || value == nullptr) return -1;
    if (std::strlen(key) > 512 || std::strlen(value) > 65536) {
      host->violation("kv_set: key longer than 512 bytes or value longer than 64 KiB");
      return -1;
    }
    std::lock_guard<std::mutex> lock(host->mu_);
    if (!host->counters_available_) return -1;
    auto it = host->records_.find(key);
    const bool live = it != host->records_.end() &&
                      (it->second.expires_ms == 0 || it->second.expires_ms > host->now_ms_);
    if (only_if_absent && live) return 0;
    host->records_[key] = FakeHost::Record{value, ttl_ms == 0 ? 0 : host->now_ms_ + ttl_ms};
    return 1;
  }

  static int store_fail_mode() {
    FakeHost* host = current_host();
    if (host == nullptr) return MG_STORE_FAIL_TEMPFAIL;
    std::lock_guard<std::mutex> lock(host->mu_);
    return host->store_fail_mode_;
  }

  // ABI 1.3. Over the maximum size is not a violation: the gateway refuses it too (-1) and the
  // plugin applies its fail mode.
  static int body_replace(mg_session* s, const char* data, std::size_t len) {
    FakeSession& fs = session(s);
    if (fs.stage_ != MG_STAGE_EOM) return fs.refuse("body_replace", "allowed in EOM");
    if (data == nullptr && len > 0) return fs.malformed("body_replace", "NULL data, len > 0");
    const std::uint64_t kept =
        fs.body_replace_started_ && fs.replaced_body_ ? fs.replaced_body_->size() : 0;
    if (kept + len > fs.max_message_size_) return -1;
    if (!fs.body_replace_started_ || !fs.replaced_body_) fs.replaced_body_.emplace();
    fs.body_replace_started_ = true;
    fs.replaced_body_->append(data != nullptr ? data : "", len);
    return 0;
  }
  static int quarantine(mg_session* s, const char* reason) {
    FakeSession& fs = session(s);
    if (fs.stage_ != MG_STAGE_EOM) return fs.refuse("quarantine", "allowed in EOM");
    if (reason == nullptr || *reason == 0) return fs.malformed("quarantine", "empty reason");
    std::string line(reason);
    for (char& c : line)
      if (c == '\r' || c == '\n') c = ' ';
    fs.quarantine_reason_ = std::move(line);
    return 0;
  }
};

}  // namespace detail

inline FakeHost::FakeHost() {
  using C = detail::Callbacks;
  table_.struct_size = sizeof(mg_host);
  table_.abi_version = MG_ABI_VERSION;
  table_.log = &C::log;
  table_.set_reply = &C::set_reply;
  table_.get = &C::get;
  table_.mail_param = &C::mail_param;
  table_.rcpt_count = &C::rcpt_count;
  table_.rcpt_at = &C::rcpt_at;
  table_.header_count = &C::header_count;
  table_.header_at = &C::header_at;
  table_.body_read = &C::body_read;
  table_.message_size = &C::message_size;
  table_.add_symbol = &C::add_symbol;
  table_.score = &C::score;
  table_.symbol_count = &C::symbol_count;
  table_.symbol_at = &C::symbol_at;
  table_.header_add = &C::header_add;
  table_.header_insert = &C::header_insert;
  table_.header_remove = &C::header_remove;
  table_.header_change = &C::header_change;
  table_.set_sender = &C::set_sender;
  table_.rcpt_rewrite = &C::rcpt_rewrite;
  table_.rcpt_add = &C::rcpt_add;
  table_.rcpt_remove = &C::rcpt_remove;
  table_.set_data = &C::set_data;
  table_.get_data = &C::get_data;
  table_.dns_query = &C::dns_query;
  table_.dns_free = &C::dns_free;
  table_.policy_lookup = &C::policy_lookup;
  table_.counter_add = &C::counter_add;
  table_.header_raw_at = &C::header_raw_at;
  table_.auth_result_add = &C::auth_result_add;
  table_.auth_result_count = &C::auth_result_count;
  table_.auth_result_at = &C::auth_result_at;
  table_.now_ms = &C::now_ms;
  table_.rate_limit = &C::rate_limit;
  table_.kv_get = &C::kv_get;
  table_.kv_set = &C::kv_set;
  table_.store_fail_mode = &C::store_fail_mode;
  table_.body_replace = &C::body_replace;
  table_.quarantine = &C::quarantine;
  previous_ = detail::current_host();
  detail::current_host() = this;
}

inline FakeHost::~FakeHost() {
  if (detail::current_host() == this) detail::current_host() = previous_;
}

// A plugin instance: its descriptor and the state its create() returned, destroyed (and the
// .so closed) with this object. Errors throw std::runtime_error with the reason.
class LoadedPlugin {
 public:
  // A plugin linked into the test: pass its entry point (&mailgate_plugin_entry). A test
  // executable can link one plugin this way (each defines that symbol); load others with open().
  LoadedPlugin(FakeHost& host, mg_plugin_entry_fn entry, std::string_view settings_json = "{}")
      : host_(&host) {
    init(entry, settings_json);
  }
  // A built .so, loaded as the gateway does: dlopen(RTLD_NOW | RTLD_LOCAL), then dlsym of
  // MG_PLUGIN_ENTRY_SYMBOL. dlerror() is reported verbatim.
  static LoadedPlugin open(FakeHost& host, const std::string& path,
                           std::string_view settings_json = "{}") {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) throw std::runtime_error(dlerror());
    dlerror();
    void* symbol = dlsym(handle, MG_PLUGIN_ENTRY_SYMBOL);
    if (symbol == nullptr) {
      const char* error = dlerror();
      std::string message = path + ": no " MG_PLUGIN_ENTRY_SYMBOL "()";
      if (error != nullptr) message += std::string(": ") + error;
      dlclose(handle);
      throw std::runtime_error(message);
    }
    mg_plugin_entry_fn entry = nullptr;
    static_assert(sizeof(entry) == sizeof(symbol), "function and data pointers differ in size");
    std::memcpy(&entry, &symbol, sizeof(entry));
    LoadedPlugin plugin(host, handle);
    plugin.init(entry, settings_json);
    return plugin;
  }

  LoadedPlugin(LoadedPlugin&& other) noexcept
      : host_(other.host_),
        handle_(std::exchange(other.handle_, nullptr)),
        descriptor_(other.descriptor_),
        state_(std::exchange(other.state_, nullptr)),
        live_(std::exchange(other.live_, false)) {}
  LoadedPlugin& operator=(LoadedPlugin&&) = delete;
  LoadedPlugin(const LoadedPlugin&) = delete;
  LoadedPlugin& operator=(const LoadedPlugin&) = delete;
  ~LoadedPlugin() { close(); }

  // The plugin's descriptor, zero-extended to this SDK's mg_plugin when the plugin's is older.
  const mg_plugin& descriptor() const noexcept { return descriptor_; }
  void* state() const noexcept { return state_; }
  FakeHost& host() const noexcept { return *host_; }
  std::string name() const { return descriptor_.name != nullptr ? descriptor_.name : ""; }
  // Runs one of its callbacks in `stage` as the gateway would (FakeHost::call_tried).
  template <class Call>
  mg_action call(mg_stage stage, Call&& callback) const {
    return host_->call_tried(descriptor_.flags, stage, std::forward<Call>(callback));
  }

 private:
  LoadedPlugin(FakeHost& host, void* handle) : host_(&host), handle_(handle) {}

  void init(mg_plugin_entry_fn entry, std::string_view settings_json) {
    try {
      const mg_plugin* d = entry(MG_ABI_VERSION, host_->table());
      if (d == nullptr)
        throw std::runtime_error("the plugin's entry point returned NULL: it refuses host ABI " +
                                 std::to_string(MG_ABI_VERSION_MAJOR) + "." +
                                 std::to_string(MG_ABI_VERSION_MINOR));
      const std::string name = d->name != nullptr ? d->name : "(unnamed)";
      if (MG_ABI_MAJOR(d->abi_version) != MG_ABI_VERSION_MAJOR)
        throw std::runtime_error("plugin " + name + " was built for plugin ABI " +
                                 std::to_string(MG_ABI_MAJOR(d->abi_version)) + "." +
                                 std::to_string(MG_ABI_MINOR(d->abi_version)) + ", the host has " +
                                 std::to_string(MG_ABI_VERSION_MAJOR) + "." +
                                 std::to_string(MG_ABI_VERSION_MINOR));
      // As the gateway: every 1.0 member must be there, and the name must be usable.
      if (d->struct_size < offsetof(mg_plugin, on_close) + sizeof(d->on_close))
        throw std::runtime_error("plugin " + name + ": descriptor struct_size " +
                                 std::to_string(d->struct_size) + " is too small");
      if (name.size() > 64 ||
          name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos)
        throw std::runtime_error("plugin " + name + ": bad name (want [a-z0-9_-]{1,64})");
      std::memcpy(&descriptor_, d, std::min<std::size_t>(d->struct_size, sizeof(mg_plugin)));
      host_->set_nonblocking((descriptor_.flags & MG_PLUGIN_NONBLOCKING) != 0);
      host_->set_inline_stages(descriptor_.flags);
      if (descriptor_.create != nullptr) {
        char err[512] = "";
        const std::string settings(settings_json);
        state_ = descriptor_.create(host_->table(), settings.c_str(), err, sizeof(err));
        if (state_ == nullptr)
          throw std::runtime_error("plugin " + name +
                                   ": create() failed: " + (err[0] != '\0' ? err : "(no message)"));
      }
      live_ = true;
    } catch (...) {
      close();
      throw;
    }
  }

  void close() noexcept {
    if (live_ && descriptor_.destroy != nullptr) descriptor_.destroy(state_);
    live_ = false;
    state_ = nullptr;
    if (handle_ != nullptr) dlclose(handle_);
    handle_ = nullptr;
  }

  FakeHost* host_;
  void* handle_ = nullptr;
  mg_plugin descriptor_{};
  void* state_ = nullptr;
  bool live_ = false;
};

// --- driving stages: each sets the session's stage, then calls the plugin's callback (a stage
// without one answers MG_CONTINUE), as the gateway does for one plugin of the chain. ----------

inline mg_action run_connect(LoadedPlugin& p, FakeSession& s) {
  s.set_stage(MG_STAGE_CONNECT);
  const auto cb = p.descriptor().on_connect;
  return cb != nullptr ? p.call(MG_STAGE_CONNECT, [&] { return cb(p.state(), s.handle()); })
                       : MG_CONTINUE;
}

// Sets MG_ITEM_HELO.
inline mg_action run_helo(LoadedPlugin& p, FakeSession& s, std::string_view helo) {
  s.set_stage(MG_STAGE_HELO).set(MG_ITEM_HELO, helo);
  const std::string arg(helo);
  const auto cb = p.descriptor().on_helo;
  return cb != nullptr
             ? p.call(MG_STAGE_HELO, [&] { return cb(p.state(), s.handle(), arg.c_str()); })
             : MG_CONTINUE;
}

// Starts a transaction: sets MG_ITEM_SENDER, MG_ITEM_TX_ID and the envelope sender.
inline mg_action run_mail(LoadedPlugin& p, FakeSession& s, std::string_view sender) {
  s.set_stage(MG_STAGE_MAIL).set(MG_ITEM_SENDER, sender);
  s.set(MG_ITEM_TX_ID,
        s.item(MG_ITEM_SESSION_ID).value_or("") + "." + std::to_string(++s.transactions_));
  s.sender_ = std::string(sender);
  const std::string arg(sender);
  const auto cb = p.descriptor().on_mail;
  return cb != nullptr
             ? p.call(MG_STAGE_MAIL, [&] { return cb(p.state(), s.handle(), arg.c_str()); })
             : MG_CONTINUE;
}

// Sets MG_ITEM_CURRENT_RCPT for the call; when the plugin lets the recipient through (CONTINUE
// or ACCEPT) it joins the accepted recipients, as rewritten by rcpt_rewrite() if it was.
inline mg_action run_rcpt(LoadedPlugin& p, FakeSession& s, std::string_view recipient) {
  s.set_stage(MG_STAGE_RCPT).set(MG_ITEM_CURRENT_RCPT, recipient);
  s.current_rcpt_ = std::string(recipient);
  s.rcpt_dropped_ = false;
  const std::string as_received(recipient);
  const auto cb = p.descriptor().on_rcpt;
  const mg_action action =
      cb != nullptr
          ? p.call(MG_STAGE_RCPT, [&] { return cb(p.state(), s.handle(), as_received.c_str()); })
          : MG_CONTINUE;
  if ((action == MG_CONTINUE || action == MG_ACCEPT) && !s.rcpt_dropped_)
    s.recipients_.push_back(s.current_rcpt_);
  s.unset(MG_ITEM_CURRENT_RCPT);
  return action;
}

inline mg_action run_data(LoadedPlugin& p, FakeSession& s) {
  s.set_stage(MG_STAGE_DATA);
  const auto cb = p.descriptor().on_data;
  return cb != nullptr ? p.call(MG_STAGE_DATA, [&] { return cb(p.state(), s.handle()); })
                       : MG_CONTINUE;
}

// Adds the field to the received header, then calls on_header with it.
inline mg_action run_header(LoadedPlugin& p, FakeSession& s, std::string_view name,
                            std::string_view value) {
  s.set_stage(MG_STAGE_HEADER).add_header(name, value);
  const HeaderField field = s.received_headers_.back();
  const auto cb = p.descriptor().on_header;
  return cb != nullptr ? cb(p.state(), s.handle(), field.name.c_str(), field.value.c_str())
                       : MG_CONTINUE;
}

inline mg_action run_eoh(LoadedPlugin& p, FakeSession& s) {
  s.set_stage(MG_STAGE_EOH);
  const auto cb = p.descriptor().on_eoh;
  return cb != nullptr ? p.call(MG_STAGE_EOH, [&] { return cb(p.state(), s.handle()); })
                       : MG_CONTINUE;
}

// Appends the chunk to the body, then calls on_body with it.
inline mg_action run_body(LoadedPlugin& p, FakeSession& s, std::string_view chunk) {
  s.set_stage(MG_STAGE_BODY);
  s.body_.append(chunk);
  const auto cb = p.descriptor().on_body;
  return cb != nullptr ? cb(p.state(), s.handle(),
                            reinterpret_cast<const unsigned char*>(chunk.data()), chunk.size())
                       : MG_CONTINUE;
}

inline mg_action run_eom(LoadedPlugin& p, FakeSession& s) {
  s.set_stage(MG_STAGE_EOM);
  const auto cb = p.descriptor().on_eom;
  return cb != nullptr ? p.call(MG_STAGE_EOM, [&] { return cb(p.state(), s.handle()); })
                       : MG_CONTINUE;
}

// Calls on_reset, then ends the transaction (frees its data slot, forgets the envelope,
// message, reply, symbols and edits): inspect those before.
inline void run_reset(LoadedPlugin& p, FakeSession& s) {
  s.set_stage(MG_STAGE_RESET);
  const auto cb = p.descriptor().on_reset;
  if (cb != nullptr) cb(p.state(), s.handle());
  s.end_transaction();
}

// Calls on_close, then frees the session's data slots.
inline void run_close(LoadedPlugin& p, FakeSession& s) {
  s.set_stage(MG_STAGE_CLOSE);
  const auto cb = p.descriptor().on_close;
  if (cb != nullptr) cb(p.state(), s.handle());
  s.end_session();
}

// DATA, then every header field, EOH, the body in chunks of `chunk_size`, and EOM, stopping at
// the first TEMPFAIL, REJECT or DISCARD. `message` is "Name: value" lines, a blank line and the
// body, with CRLF or bare LF line ends (bare LF is turned into CRLF, as the gateway's canonical
// form has). A field's value starts after the colon and the spaces following it and keeps its
// folding. With no blank line the whole message is header.
inline mg_action run_message(LoadedPlugin& p, FakeSession& s, std::string_view message,
                             std::size_t chunk_size = 65536) {
  std::string text;
  text.reserve(message.size() + message.size() / 32);
  for (std::size_t i = 0; i < message.size(); ++i) {
    if (message[i] == '\n' && (i == 0 || message[i - 1] != '\r')) text += '\r';
    text += message[i];
  }
  const auto stop = [](mg_action a) { return a != MG_CONTINUE && a != MG_ACCEPT; };

  mg_action action = run_data(p, s);
  if (stop(action)) return action;

  std::size_t pos = 0;
  std::string name;
  std::string value;
  bool have_field = false;
  const auto flush = [&]() -> mg_action {
    if (!have_field) return MG_CONTINUE;
    have_field = false;
    return run_header(p, s, name, value);
  };
  while (pos < text.size()) {
    std::size_t eol = text.find("\r\n", pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 2 <= text.size() ? eol + 2 : text.size();
    if (line.empty()) break;  // the blank line: the body follows
    if (line[0] == ' ' || line[0] == '\t') {
      if (have_field) value.append("\r\n").append(line);
      continue;
    }
    if (stop(action = flush())) return action;
    const std::size_t colon = line.find(':');
    name.assign(line.substr(0, colon));
    std::size_t start = colon == std::string_view::npos ? line.size() : colon + 1;
    while (start < line.size() && (line[start] == ' ' || line[start] == '\t')) ++start;
    value.assign(line.substr(start));
    have_field = true;
  }
  if (stop(action = flush())) return action;
  if (stop(action = run_eoh(p, s))) return action;

  const std::string_view body =
      pos < text.size() ? std::string_view(text).substr(pos) : std::string_view();
  if (chunk_size == 0) chunk_size = 65536;
  for (std::size_t off = 0; off < body.size(); off += chunk_size)
    if (stop(action = run_body(p, s, body.substr(off, chunk_size)))) return action;
  return run_eom(p, s);
}

// "CONTINUE", "ACCEPT", ... for messages.
inline const char* action_name(mg_action action) {
  switch (action) {
    case MG_CONTINUE:
      return "CONTINUE";
    case MG_ACCEPT:
      return "ACCEPT";
    case MG_TEMPFAIL:
      return "TEMPFAIL";
    case MG_REJECT:
      return "REJECT";
    case MG_DISCARD:
      return "DISCARD";
    case MG_FAILED:
      return "FAILED";
    case MG_RETRY_BLOCKING:
      return "RETRY_BLOCKING";
  }
  return "(invalid action)";
}

}  // namespace mailgate::fake
