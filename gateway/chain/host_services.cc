// chain/host_services.cc — see host_services.h. Each mg_host function is a static function
// here; the table at the bottom lists them in the ABI's order.
#include "chain/host_services.h"

#include <cstring>
#include <memory>

#include "chain/call_context.h"
#include "log/log.h"
#include "spool/spool.h"
#include "store/clock.h"
#include "store/memory_store.h"
#include "store/store.h"

namespace mailgate::chain {
namespace {

HostEnvironment g_env;
std::unique_ptr<store::MemoryStore> g_default_counters;
thread_local const char* t_plugin_name = nullptr;

CallContext* ctx(mg_session* s) { return CallContext::from(s); }

// One line of text: CR and LF (and other controls) replaced, length bounded.
std::string one_line(const char* text, size_t max = 1000) {
  std::string out;
  if (text == nullptr) return out;
  for (const char* p = text; *p != 0 && out.size() < max; ++p) {
    unsigned char c = static_cast<unsigned char>(*p);
    out.push_back(c < 0x20 || c == 0x7f ? ' ' : *p);
  }
  return out;
}

bool edits_allowed(const CallContext* c) { return !c->abandoned.load(); }

bool valid_header_name(const char* name) {
  if (name == nullptr || *name == 0) return false;
  for (const char* p = name; *p != 0; ++p) {
    unsigned char c = static_cast<unsigned char>(*p);
    if (c <= 32 || c >= 127 || c == ':') return false;
  }
  return std::strlen(name) <= 200;
}

// Header values may be folded (CRLF followed by space or tab) but must not contain a bare CR,
// a bare LF, or a CRLF not followed by white space (that would end the header).
bool valid_header_value(const char* value) {
  if (value == nullptr) return false;
  size_t n = std::strlen(value);
  if (n > 64 * 1024) return false;
  for (size_t i = 0; i < n; ++i) {
    char c = value[i];
    if (c == 0) return false;
    if (c == '\r') {
      if (i + 2 >= n || value[i + 1] != '\n' || (value[i + 2] != ' ' && value[i + 2] != '\t'))
        return false;
      ++i;
    } else if (c == '\n') {
      return false;
    }
  }
  return true;
}

bool header_stage(mg_stage s) { return s == MG_STAGE_EOH || s == MG_STAGE_EOM; }

bool valid_address(const char* a) {
  if (a == nullptr) return false;
  size_t n = std::strlen(a);
  if (n > 254) return false;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(a[i]);
    if (c <= 32 || c == 127 || c == '<' || c == '>') return false;
  }
  return true;
}

// --- services ---

void h_log(mg_session* s, mg_log_level level, const char* message) {
  log::Level l = level == MG_LOG_DEBUG     ? log::Level::kDebug
                 : level == MG_LOG_INFO    ? log::Level::kInfo
                 : level == MG_LOG_WARNING ? log::Level::kWarning
                                           : log::Level::kError;
  if (!log::enabled(l)) return;
  std::string text = one_line(message, 4000);
  if (s == nullptr) {
    log::emit(l, "plugin {}: {}", t_plugin_name ? t_plugin_name : "?", text);
    return;
  }
  CallContext* c = ctx(s);
  std::string tx_id;
  {
    std::lock_guard lock(c->tx->mu);
    const auto& id = c->tx->items[MG_ITEM_TX_ID] ? c->tx->items[MG_ITEM_TX_ID]
                                                  : c->tx->items[MG_ITEM_SESSION_ID];
    if (id) tx_id = *id;
  }
  log::emit(l, "{}: plugin {}: {}", tx_id, c->plugin_name, text);
}

void h_set_reply(mg_session* s, int code, const char* enhanced, const char* text) {
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  c->reply_code = code;
  c->reply_enhanced = one_line(enhanced, 16);
  c->reply_text = one_line(text, 400);
}

const char* h_get(mg_session* s, mg_item item) {
  if (item < 0 || item >= MG_ITEM_COUNT) return nullptr;
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  const auto& v = c->tx->items[item];
  return v ? c->keep(*v) : nullptr;
}

const char* h_mail_param(mg_session* s, const char* keyword) {
  if (keyword == nullptr) return nullptr;
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  for (const auto& [k, v] : c->tx->mail_params) {
    if (strcasecmp(k.c_str(), keyword) == 0) return c->keep(v);
  }
  return nullptr;
}

size_t h_rcpt_count(mg_session* s) {
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  return c->tx->recipients.size();
}

const char* h_rcpt_at(mg_session* s, size_t index) {
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  if (index >= c->tx->recipients.size()) return nullptr;
  return c->keep(c->tx->recipients[index]);
}

size_t h_header_count(mg_session* s) {
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  return c->tx->headers.size();
}

int h_header_at(mg_session* s, size_t index, const char** name, const char** value) {
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  if (index >= c->tx->headers.size()) return -1;
  if (name != nullptr) *name = c->keep(c->tx->headers[index].name);
  if (value != nullptr) *value = c->keep(c->tx->headers[index].value);
  return 0;
}

int h_header_raw_at(mg_session* s, size_t index, const char** raw, size_t* len) {
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  if (index >= c->tx->headers.size()) return -1;
  const HeaderField& f = c->tx->headers[index];
  // A field a plugin added or changed is relayed as "name: value" CRLF (Session::message_prefix).
  const char* text = f.raw.empty() ? c->keep(f.name + ": " + f.value + "\r\n") : c->keep(f.raw);
  if (raw != nullptr) *raw = text;
  if (len != nullptr) *len = std::strlen(text);
  return 0;
}

int64_t h_body_read(mg_session* s, uint64_t offset, void* buf, size_t len) {
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  const spool::Spool* spool = c->tx->spool;
  if (spool == nullptr || buf == nullptr) return -1;
  uint64_t start = c->tx->body_offset + offset;
  if (start >= spool->size() || len == 0) return 0;
  spool::Spool::Reader reader(*spool, start);
  std::string chunk;
  if (!reader.next(chunk, len)) return spool->error() ? -1 : 0;
  std::memcpy(buf, chunk.data(), chunk.size());
  return static_cast<int64_t>(chunk.size());
}

uint64_t h_message_size(mg_session* s) {
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  return c->tx->spool != nullptr ? c->tx->spool->size() : 0;
}

void h_add_symbol(mg_session* s, const char* name, double score, const char* detail) {
  CallContext* c = ctx(s);
  if (!edits_allowed(c) || name == nullptr || *name == 0 || std::strlen(name) > 64) return;
  for (const char* p = name; *p != 0; ++p) {
    char ch = *p;
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_')) return;
  }
  if (!(score == score)) return;  // NaN
  std::lock_guard lock(c->tx->mu);
  c->tx->add_symbol(name, score, one_line(detail, 400), c->plugin_name);
}

double h_score(mg_session* s) {
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  return c->tx->score();
}

size_t h_symbol_count(mg_session* s) {
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  return c->tx->symbols.size();
}

int h_symbol_at(mg_session* s, size_t index, const char** name, double* score,
                const char** detail) {
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  if (index >= c->tx->symbols.size()) return -1;
  const Symbol& sym = c->tx->symbols[index];
  if (name != nullptr) *name = c->keep(sym.name);
  if (score != nullptr) *score = sym.score;
  if (detail != nullptr) *detail = c->keep(sym.detail);
  return 0;
}

int h_header_add(mg_session* s, const char* name, const char* value) {
  CallContext* c = ctx(s);
  if (!edits_allowed(c) || !header_stage(c->stage) || !valid_header_name(name) ||
      !valid_header_value(value))
    return -1;
  std::lock_guard lock(c->tx->mu);
  c->tx->headers.push_back(HeaderField{name, value, {}});
  c->tx->headers_edited = true;
  return 0;
}

int h_header_insert(mg_session* s, size_t index, const char* name, const char* value) {
  CallContext* c = ctx(s);
  if (!edits_allowed(c) || !header_stage(c->stage) || !valid_header_name(name) ||
      !valid_header_value(value))
    return -1;
  std::lock_guard lock(c->tx->mu);
  auto& h = c->tx->headers;
  if (index > h.size()) index = h.size();
  h.insert(h.begin() + static_cast<std::ptrdiff_t>(index),
           HeaderField{name, value, {}});
  c->tx->headers_edited = true;
  return 0;
}

int h_header_remove(mg_session* s, const char* name, size_t occurrence) {
  CallContext* c = ctx(s);
  if (!edits_allowed(c) || !header_stage(c->stage) || !valid_header_name(name)) return -1;
  std::lock_guard lock(c->tx->mu);
  auto& h = c->tx->headers;
  size_t seen = 0;
  bool removed = false;
  for (auto it = h.begin(); it != h.end();) {
    if (strcasecmp(it->name.c_str(), name) == 0 && (occurrence == 0 || ++seen == occurrence)) {
      it = h.erase(it);
      removed = true;
      if (occurrence != 0) break;
    } else {
      ++it;
    }
  }
  if (removed) c->tx->headers_edited = true;
  return 0;
}

int h_header_change(mg_session* s, const char* name, size_t occurrence, const char* value) {
  CallContext* c = ctx(s);
  if (!edits_allowed(c) || !header_stage(c->stage) || !valid_header_name(name) ||
      !valid_header_value(value) || occurrence == 0)
    return -1;
  std::lock_guard lock(c->tx->mu);
  size_t seen = 0;
  for (HeaderField& f : c->tx->headers) {
    if (strcasecmp(f.name.c_str(), name) == 0 && ++seen == occurrence) {
      f.value = value;
      f.raw.clear();
      c->tx->headers_edited = true;
      return 0;
    }
  }
  return -1;
}

int h_set_sender(mg_session* s, const char* address) {
  CallContext* c = ctx(s);
  if (!edits_allowed(c) || c->stage < MG_STAGE_MAIL || c->stage > MG_STAGE_EOM ||
      !valid_address(address))
    return -1;
  std::lock_guard lock(c->tx->mu);
  c->tx->new_sender = address;
  return 0;
}

int h_rcpt_rewrite(mg_session* s, const char* address) {
  CallContext* c = ctx(s);
  if (!edits_allowed(c) || c->stage != MG_STAGE_RCPT || !valid_address(address) ||
      *address == 0)
    return -1;
  std::lock_guard lock(c->tx->mu);
  c->tx->rewritten_rcpt = address;
  c->tx->items[MG_ITEM_CURRENT_RCPT] = address;
  return 0;
}

int h_rcpt_add(mg_session* s, const char* address) {
  CallContext* c = ctx(s);
  if (!edits_allowed(c) || c->stage < MG_STAGE_RCPT || c->stage > MG_STAGE_EOM ||
      !valid_address(address) || *address == 0)
    return -1;
  std::lock_guard lock(c->tx->mu);
  c->tx->added_rcpts.emplace_back(address);
  return 0;
}

int h_rcpt_remove(mg_session* s, const char* address) {
  CallContext* c = ctx(s);
  if (!edits_allowed(c) || c->stage < MG_STAGE_RCPT || c->stage > MG_STAGE_EOM ||
      !valid_address(address))
    return -1;
  std::lock_guard lock(c->tx->mu);
  // In RCPT, removing the recipient being checked drops it: accepted, never forwarded.
  const auto& current = c->tx->items[MG_ITEM_CURRENT_RCPT];
  if (c->stage == MG_STAGE_RCPT && current && strcasecmp(current->c_str(), address) == 0) {
    c->tx->drop_current_rcpt = true;
    return 0;
  }
  c->tx->removed_rcpts.emplace_back(address);
  return 0;
}

void h_set_data(mg_session* s, int session_scope, void* data, void (*free_fn)(void*)) {
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  auto& slots = session_scope ? c->tx->session_slots : c->tx->tx_slots;
  if (c->plugin_index >= slots.size()) return;
  slots[c->plugin_index].reset();
  slots[c->plugin_index] = Slot{data, free_fn};
}

void* h_get_data(mg_session* s, int session_scope) {
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  auto& slots = session_scope ? c->tx->session_slots : c->tx->tx_slots;
  return c->plugin_index < slots.size() ? slots[c->plugin_index].data : nullptr;
}

// The result handed to plugins: the public struct first, the storage behind it after.
struct DnsResultBox {
  mg_dns_result result{};
  std::vector<std::string> texts;
  std::vector<mg_dns_record> records;
};

mg_dns_result* h_dns_query(mg_session* s, const char* name, mg_dns_type type) {
  auto box = std::make_unique<DnsResultBox>();
  box->result.struct_size = sizeof(mg_dns_result);
  box->result.status = MG_DNS_ERROR;
  CallContext* c = s != nullptr ? ctx(s) : nullptr;
  bool allowed = c == nullptr || !c->nonblocking;
  if (allowed && g_env.dns && name != nullptr && std::strlen(name) <= 255) {
    std::optional<DnsAnswer> cached;
    if (c != nullptr && c->cache_only) {
      if (g_env.dns_cached) cached = g_env.dns_cached(name, type);
      if (!cached) {
        box->result.status = MG_DNS_WOULDBLOCK;
        return &box.release()->result;
      }
    }
    DnsAnswer a = cached ? std::move(*cached) : g_env.dns(name, type);
    box->result.status = a.status;
    box->result.secure = a.secure ? 1 : 0;
    box->texts.reserve(a.records.size());
    for (const auto& r : a.records) box->texts.push_back(r.text);
    for (size_t i = 0; i < a.records.size(); ++i)
      box->records.push_back(
          mg_dns_record{box->texts[i].c_str(), a.records[i].preference, a.records[i].ttl});
  } else if (!allowed) {
    h_log(s, MG_LOG_WARNING, "dns_query called by a non-blocking plugin: refused");
  }
  box->result.count = box->records.size();
  box->result.records = box->records.empty() ? nullptr : box->records.data();
  return &box.release()->result;
}

void h_dns_free(mg_dns_result* result) {
  // `result` is the first member of a DnsResultBox (standard layout not required: we only
  // ever hand out &box->result, and offsetof(result) is 0).
  delete reinterpret_cast<DnsResultBox*>(result);
}

int h_policy_lookup(const char* table, const char* key, char* buf, size_t buflen) {
  if (table == nullptr || key == nullptr || !g_env.policy) return 0;
  std::string value;
  if (!g_env.policy(table, key, &value)) return 0;
  if (buf != nullptr && buflen > 0) {
    size_t n = std::min(value.size(), buflen - 1);
    std::memcpy(buf, value.data(), n);
    buf[n] = 0;
  }
  return 1;
}

store::Store* current_store() {
  return g_env.counters != nullptr ? g_env.counters : g_default_counters.get();
}

const store::Clock& current_clock() {
  return g_env.clock != nullptr ? *g_env.clock : store::SystemClock::instance();
}

constexpr size_t kMaxStoreKey = 512;
constexpr size_t kMaxStoreValue = 64 * 1024;

bool usable_key(const char* key) {
  return key != nullptr && key[0] != 0 && std::strlen(key) <= kMaxStoreKey;
}

int h_counter_add(const char* key, int64_t delta, uint32_t window_ms, int64_t* value) {
  if (!usable_key(key) || value == nullptr) return -1;
  store::Store* s = current_store();
  if (s == nullptr) return -1;
  std::optional<int64_t> sum = s->counter_add(key, delta, window_ms);
  if (!sum) return -1;
  *value = *sum;
  return 0;
}

// --- 1.2 ------------------------------------------------------------------------------------

uint64_t h_now_ms() { return static_cast<uint64_t>(current_clock().now_ms()); }

int h_rate_limit(const char* key, uint32_t rate, uint32_t period_ms, uint32_t burst,
                 uint32_t cost, int dry_run, uint32_t* retry_after_ms) {
  if (!usable_key(key) || rate == 0 || period_ms == 0) return -1;
  store::Store* s = current_store();
  if (s == nullptr) return -1;
  auto d = s->rate(key, store::RateSpec{rate, period_ms, burst}, cost, dry_run != 0);
  if (!d) return -1;
  if (retry_after_ms != nullptr) *retry_after_ms = d->allowed ? 0 : d->retry_after_ms;
  return d->allowed ? 1 : 0;
}

int h_kv_get(const char* key, char* buf, size_t buflen) {
  if (!usable_key(key)) return -1;
  store::Store* s = current_store();
  if (s == nullptr) return -1;
  auto r = s->get(key);
  if (!r) return -1;
  if (!r->has_value()) return 0;
  if (buf != nullptr && buflen > 0) {
    size_t n = std::min((*r)->size(), buflen - 1);
    std::memcpy(buf, (*r)->data(), n);
    buf[n] = 0;
  }
  return 1;
}

int h_kv_set(const char* key, const char* value, uint32_t ttl_ms, int only_if_absent) {
  if (!usable_key(key) || value == nullptr || std::strlen(value) > kMaxStoreValue) return -1;
  store::Store* s = current_store();
  if (s == nullptr) return -1;
  switch (s->set(key, value, ttl_ms, only_if_absent != 0)) {
    case store::SetResult::kStored:
      return 1;
    case store::SetResult::kExists:
      return 0;
    case store::SetResult::kUnavailable:
      return -1;
  }
  return -1;
}

int h_store_fail_mode() {
  return g_env.store_fail_open ? MG_STORE_FAIL_OPEN : MG_STORE_FAIL_TEMPFAIL;
}

// --- 1.3: body replacement and quarantine (EOM only) ---

int h_body_replace(mg_session* s, const char* data, size_t len) {
  CallContext* c = ctx(s);
  if (!edits_allowed(c) || c->stage != MG_STAGE_EOM || (data == nullptr && len > 0)) return -1;
  std::lock_guard lock(c->tx->mu);
  TxContext& tx = *c->tx;
  const bool append = c->body_replace_started && tx.new_body.has_value();
  const uint64_t kept = append ? tx.new_body->size() : 0;
  if (tx.max_message_size != 0 && kept + len > tx.max_message_size) {
    const char* id = tx.items[MG_ITEM_SESSION_ID] ? tx.items[MG_ITEM_SESSION_ID]->c_str() : "-";
    MG_LOG_WARNING("{}: plugin {}: body_replace refused: the replacement body would be {} "
                   "octets, over --max_message_size={}",
                   id, c->plugin_name, kept + len, tx.max_message_size);
    return -1;
  }
  if (!append) tx.new_body.emplace();
  c->body_replace_started = true;
  if (len > 0) tx.new_body->append(data, len);
  return 0;
}

int h_quarantine(mg_session* s, const char* reason) {
  CallContext* c = ctx(s);
  if (!edits_allowed(c) || c->stage != MG_STAGE_EOM || reason == nullptr || *reason == 0)
    return -1;
  std::string line = one_line(reason, 200);
  std::lock_guard lock(c->tx->mu);
  c->tx->quarantine_reason = std::move(line);
  return 0;
}

// An RFC 8601 method or result keyword as plugins give it: [a-z0-9_.-]+, at most 64.
bool auth_keyword(const char* text) {
  if (text == nullptr || *text == 0 || std::strlen(text) > 64) return false;
  for (const char* p = text; *p != 0; ++p) {
    char ch = *p;
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
          ch == '-'))
      return false;
  }
  return true;
}

// Free text of a result (reason, properties): no line breaks and no ';', which ends a resinfo
// in the Authentication-Results field.
bool auth_text(const char* text) {
  if (text == nullptr) return true;
  if (std::strlen(text) > 1000) return false;
  return std::strpbrk(text, "\r\n;") == nullptr;
}

int h_auth_result_add(mg_session* s, const char* method, const char* result, const char* reason,
                      const char* properties) {
  CallContext* c = ctx(s);
  if (!edits_allowed(c) || !auth_keyword(method) || !auth_keyword(result) || !auth_text(reason) ||
      !auth_text(properties))
    return -1;
  std::lock_guard lock(c->tx->mu);
  AuthResult r{method, result, reason != nullptr ? reason : "",
               properties != nullptr ? properties : ""};
  // Before MAIL there is no transaction yet: the result belongs to the session.
  bool session_scope = c->stage == MG_STAGE_CONNECT || c->stage == MG_STAGE_HELO;
  (session_scope ? c->tx->session_auth_results : c->tx->auth_results).push_back(std::move(r));
  return 0;
}

size_t h_auth_result_count(mg_session* s) {
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  return c->tx->session_auth_results.size() + c->tx->auth_results.size();
}

int h_auth_result_at(mg_session* s, size_t index, const char** method, const char** result,
                     const char** reason, const char** properties) {
  CallContext* c = ctx(s);
  std::lock_guard lock(c->tx->mu);
  const size_t session_count = c->tx->session_auth_results.size();
  if (index >= session_count + c->tx->auth_results.size()) return -1;
  const AuthResult& r = index < session_count ? c->tx->session_auth_results[index]
                                              : c->tx->auth_results[index - session_count];
  if (method != nullptr) *method = c->keep(r.method);
  if (result != nullptr) *result = c->keep(r.result);
  if (reason != nullptr) *reason = r.reason.empty() ? nullptr : c->keep(r.reason);
  if (properties != nullptr) *properties = r.properties.empty() ? nullptr : c->keep(r.properties);
  return 0;
}

const mg_host kHost = {
    sizeof(mg_host), MG_ABI_VERSION,
    h_log,           h_set_reply,
    h_get,           h_mail_param,
    h_rcpt_count,    h_rcpt_at,
    h_header_count,  h_header_at,
    h_body_read,     h_message_size,
    h_add_symbol,    h_score,
    h_symbol_count,  h_symbol_at,
    h_header_add,    h_header_insert,
    h_header_remove, h_header_change,
    h_set_sender,    h_rcpt_rewrite,
    h_rcpt_add,      h_rcpt_remove,
    h_set_data,      h_get_data,
    h_dns_query,     h_dns_free,
    h_policy_lookup, h_counter_add,
    // 1.1
    h_header_raw_at, h_auth_result_add,
    h_auth_result_count, h_auth_result_at,
    // 1.2
    h_now_ms, h_rate_limit, h_kv_get, h_kv_set, h_store_fail_mode,
    // 1.3
    h_body_replace, h_quarantine,
};

}  // namespace

void set_host_environment(HostEnvironment env) {
  g_env = std::move(env);
  // A fresh default store, on the (possibly new) clock.
  if (g_env.counters == nullptr)
    g_default_counters = std::make_unique<store::MemoryStore>(current_clock());
}

const mg_host* host_table() {
  if (g_env.counters == nullptr && !g_default_counters)
    g_default_counters = std::make_unique<store::MemoryStore>(current_clock());
  return &kHost;
}

ScopedPluginName::ScopedPluginName(const char* name) : previous_(t_plugin_name) {
  t_plugin_name = name;
}
ScopedPluginName::~ScopedPluginName() { t_plugin_name = previous_; }

bool store_may_block() {
  const store::Store* s = current_store();
  return s != nullptr && s->may_block();
}

}  // namespace mailgate::chain
