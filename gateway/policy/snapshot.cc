// policy/snapshot.cc — reads, validates and indexes the policy tables. See snapshot.h.
#include "policy/snapshot.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "policy/dkim_key.h"
#include "policy/migrations.h"
#include "policy/sqlite.h"
#include "policy/validate.h"

namespace mailgate::policy {
namespace {

constexpr size_t kMaxProblems = 50;
constexpr std::string_view kStageNames[kAccessStageCount] = {
    "client", "helo", "sender", "sender_domain", "recipient", "recipient_domain"};

std::atomic<uint64_t> g_last_version{0};

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Reads one row's columns with type checks; every problem is recorded with the row's label.
class RowReader {
 public:
  RowReader(sqlite3_stmt* stmt, std::string label, std::vector<std::string>* problems)
      : stmt_(stmt), label_(std::move(label)), problems_(problems) {}

  void problem(std::string_view message) {
    problems_->push_back(fmt::format("{}: {}", label_, message));
    ok_ = false;
  }
  void problem(std::string_view column, const Problem& p) {
    if (p) problem(fmt::format("{} {}", column, *p));
  }
  bool ok() const { return ok_; }

  // Text column; nullopt for NULL (a problem unless nullable) or a BLOB (always a problem).
  std::optional<std::string> text(int col, std::string_view name, bool nullable = false) {
    int type = sqlite3_column_type(stmt_, col);
    if (type == SQLITE_NULL) {
      if (!nullable) problem(fmt::format("{} must not be NULL", name));
      return std::nullopt;
    }
    if (type == SQLITE_BLOB) {
      problem(fmt::format("{} must be text, not a blob", name));
      return std::nullopt;
    }
    return column_text(stmt_, col);
  }

  // Integer column; nullopt for NULL (a problem unless nullable) or a non-integer value.
  std::optional<int64_t> integer(int col, std::string_view name, bool nullable = false) {
    int type = sqlite3_column_type(stmt_, col);
    if (type == SQLITE_NULL) {
      if (!nullable) problem(fmt::format("{} must not be NULL", name));
      return std::nullopt;
    }
    if (type != SQLITE_INTEGER) {
      problem(fmt::format("{} must be an integer (got '{}')", name,
                          column_text(stmt_, col).value_or("")));
      return std::nullopt;
    }
    return static_cast<int64_t>(sqlite3_column_int64(stmt_, col));
  }

 private:
  sqlite3_stmt* stmt_;
  std::string label_;
  std::vector<std::string>* problems_;
  bool ok_ = true;
};

// Steps through `sql`, calling row(stmt) per row. A SQL error becomes a problem naming the table.
template <typename F>
void for_each_row(sqlite3* db, std::string_view table, std::string_view sql,
                  std::vector<std::string>* problems, F&& row) {
  auto stmt = prepare(db, sql);
  if (!stmt) {
    problems->push_back(fmt::format("{}: cannot read the table: {}", table, sqlite3_errmsg(db)));
    return;
  }
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) row(stmt->get());
  if (rc != SQLITE_DONE) {
    problems->push_back(fmt::format("{}: cannot read the table: {}", table, sqlite3_errmsg(db)));
  }
}

}  // namespace

// Builds a Snapshot's private state from the tables; a friend of Snapshot.
class SnapshotBuilder {
 public:
  SnapshotBuilder(sqlite3* db, std::vector<std::string>* problems)
      : db_(db), problems_(problems), snap_(new Snapshot()) {}

  std::unique_ptr<Snapshot> build(int schema_version, std::string source, uint64_t version) {
    snap_->schema_version_ = schema_version;
    snap_->source_ = std::move(source);
    snap_->version_ = version;
    read_plugins();
    read_local_domains();
    read_relay_networks();
    read_access();
    read_plugin_settings();
    snap_->ratelimits_.read(db_, problems_);
    snap_->dnsbl_zones_.read(db_, problems_);
    snap_->spam_rules_.read(db_, problems_);
    snap_->spam_thresholds_.read(db_, problems_);
    snap_->routes_.read(db_, problems_);
    read_dkim_keys();
    return std::move(snap_);
  }

  static void set_version(Snapshot& snap, uint64_t version) { snap.version_ = version; }

 private:
  void read_plugins() {
    for_each_row(db_, "plugins",
                 "SELECT id, position, name, path, enabled, profile, settings, fail_mode, "
                 "timeout_ms FROM plugins ORDER BY position, name, id",
                 problems_, [&](sqlite3_stmt* st) {
                   int64_t id = sqlite3_column_int64(st, 0);
                   auto raw_name = column_text(st, 2);
                   if (raw_name) plugin_rows_.insert(*raw_name);
                   RowReader r(st,
                               raw_name && !raw_name->empty()
                                   ? fmt::format("plugins row '{}'", *raw_name)
                                   : fmt::format("plugins row id {}", id),
                               problems_);
                   PluginEntry e;
                   e.id = id;
                   auto position = r.integer(1, "position");
                   auto name = r.text(2, "name");
                   auto path = r.text(3, "path");
                   auto enabled = r.integer(4, "enabled");
                   auto profile = r.text(5, "profile");
                   auto settings = r.text(6, "settings");
                   auto fail_mode = r.text(7, "fail_mode");
                   auto timeout = r.integer(8, "timeout_ms");
                   if (name) r.problem("name", check_plugin_name(*name));
                   if (path) r.problem("path", check_plugin_path(*path));
                   if (enabled && *enabled != 0 && *enabled != 1) {
                     r.problem(fmt::format("enabled must be 0 or 1 (got {})", *enabled));
                   }
                   if (profile) r.problem("profile", check_profile(*profile));
                   if (settings) r.problem("settings", check_settings_json(*settings));
                   if (fail_mode) r.problem("fail_mode", check_fail_mode(*fail_mode));
                   if (timeout) r.problem("timeout_ms", check_timeout_ms(*timeout));
                   if (!r.ok()) return;
                   e.position = *position;
                   e.name = std::move(*name);
                   e.path = std::move(*path);
                   e.enabled = *enabled == 1;
                   e.profile = std::move(*profile);
                   e.settings_json = std::move(*settings);
                   e.fail_mode = *fail_mode == "open" ? FailMode::kOpen : FailMode::kTempfail;
                   e.timeout = std::chrono::milliseconds(*timeout);
                   if (snap_->plugin(e.name)) {
                     r.problem(fmt::format("name '{}' is used by another row", e.name));
                     return;
                   }
                   snap_->plugins_.push_back(std::move(e));
                 });
  }

  void read_local_domains() {
    for_each_row(db_, "local_domains", "SELECT domain FROM local_domains ORDER BY domain",
                 problems_, [&](sqlite3_stmt* st) {
                   RowReader r(
                       st,
                       fmt::format("local_domains row '{}'", column_text(st, 0).value_or("NULL")),
                       problems_);
                   auto domain = r.text(0, "domain");
                   if (!domain) return;
                   if (auto p = check_domain(*domain)) return r.problem(*p);
                   if (!snap_->local_domains_.insert(to_lower(*domain)).second) {
                     r.problem("duplicates another row (domains are case-insensitive)");
                   }
                 });
  }

  void read_relay_networks() {
    for_each_row(db_, "relay_networks", "SELECT cidr FROM relay_networks ORDER BY cidr", problems_,
                 [&](sqlite3_stmt* st) {
                   RowReader r(
                       st,
                       fmt::format("relay_networks row '{}'", column_text(st, 0).value_or("NULL")),
                       problems_);
                   auto cidr = r.text(0, "cidr");
                   if (!cidr) return;
                   auto prefix = parse_prefix(*cidr);
                   if (!prefix) return r.problem(prefix.error());
                   auto index = static_cast<uint32_t>(snap_->relay_network_text_.size());
                   if (auto existing = snap_->relay_networks_.insert(*prefix, index)) {
                     return r.problem(
                         fmt::format("is the same network as row '{}'", relay_texts_[*existing]));
                   }
                   snap_->relay_network_text_.push_back(prefix->to_string());
                   relay_texts_.push_back(*cidr);
                 });
  }

  void read_access() {
    for_each_row(
        db_, "access",
        "SELECT id, stage, pattern, action, code, enhanced, text FROM access ORDER BY id",
        problems_, [&](sqlite3_stmt* st) {
          AccessRule rule;
          rule.id = sqlite3_column_int64(st, 0);
          RowReader r(st, fmt::format("access row {}", rule.id), problems_);
          auto stage = r.text(1, "stage");
          auto pattern = r.text(2, "pattern");
          auto action = r.text(3, "action");
          auto code = r.integer(4, "code", /*nullable=*/true);
          auto enhanced = r.text(5, "enhanced", true);
          auto text = r.text(6, "text", true);
          if (!r.ok()) return;
          r.problem("stage", check_access_stage(*stage));
          r.problem("action", check_access_action(*action));
          if (!r.ok()) return;
          if (auto p = check_access_pattern(*stage, *pattern)) return r.problem(*p);
          if (auto p = check_access_reply(*action, code, enhanced, text)) return r.problem(*p);

          rule.stage = *parse_access_stage(*stage);
          rule.pattern = std::move(*pattern);
          rule.action = *action == "allow"  ? AccessAction::kAllow
                        : *action == "deny" ? AccessAction::kDeny
                                            : AccessAction::kTempfail;
          if (code) rule.code = static_cast<int>(*code);
          rule.enhanced = std::move(enhanced);
          rule.text = std::move(text);

          auto index = static_cast<uint32_t>(snap_->access_rules_.size());
          std::optional<uint32_t> existing;
          if (rule.stage == AccessStage::kClient) {
            existing = snap_->client_rules_.insert(*parse_prefix(rule.pattern), index);
          } else {
            auto& rules = snap_->name_rules_[static_cast<size_t>(rule.stage)];
            bool suffix = rule.pattern.starts_with('.') && rule.stage != AccessStage::kSender &&
                          rule.stage != AccessStage::kRecipient;
            auto& map = suffix ? rules.suffix : rules.exact;
            auto [it, inserted] = map.emplace(to_lower(rule.pattern), index);
            if (!inserted) existing = it->second;
          }
          if (existing) {
            const AccessRule& other = snap_->access_rules_[*existing];
            return r.problem(fmt::format("pattern '{}' duplicates row {} ('{}') for stage {}",
                                         rule.pattern, other.id, other.pattern, *stage));
          }
          snap_->access_rules_.push_back(std::move(rule));
        });
  }

  void read_plugin_settings() {
    for_each_row(
        db_, "plugin_settings",
        "SELECT plugin, domain, settings FROM plugin_settings ORDER BY plugin, domain", problems_,
        [&](sqlite3_stmt* st) {
          RowReader r(
              st,
              fmt::format("plugin_settings row '{}/{}'", column_text(st, 0).value_or("NULL"),
                          column_text(st, 1).value_or("NULL")),
              problems_);
          auto plugin = r.text(0, "plugin");
          auto domain = r.text(1, "domain");
          auto settings = r.text(2, "settings");
          if (!r.ok()) return;
          if (!snap_->plugin(*plugin)) {
            // A plugin whose own row was refused has its problem reported already.
            if (plugin_rows_.count(*plugin)) return;
            return r.problem(
                fmt::format("unknown plugin '{}' (not in the plugins table)", *plugin));
          }
          if (auto p = check_settings_domain(*domain))
            return r.problem(fmt::format("domain {}", *p));
          r.problem("settings", check_settings_json(*settings));
          if (!r.ok()) return;
          std::string key = fmt::format("{}/{}", *plugin, to_lower(*domain));
          if (!snap_->plugin_settings_.emplace(std::move(key), std::move(*settings)).second) {
            r.problem("duplicates another row (domains are case-insensitive)");
          }
        });
  }

  // dkim_keys: every row checked (disabled ones too, so a key can be enabled safely); the
  // enabled ones also become the ready-made JSON answer of lookup("dkim_keys", domain).
  void read_dkim_keys() {
    std::map<std::string, nlohmann::json> by_domain;  // lower-case domain -> array
    std::set<std::string> seen;                       // "domain/selector", lower-case
    for_each_row(
        db_, "dkim_keys",
        "SELECT domain, selector, algorithm, private_key, enabled, created FROM dkim_keys "
        "ORDER BY lower(domain), created DESC, lower(selector)",
        problems_, [&](sqlite3_stmt* st) {
          RowReader r(st,
                      fmt::format("dkim_keys row '{}/{}'", column_text(st, 0).value_or("NULL"),
                                  column_text(st, 1).value_or("NULL")),
                      problems_);
          auto domain = r.text(0, "domain");
          auto selector = r.text(1, "selector");
          auto algorithm = r.text(2, "algorithm");
          auto pem = r.text(3, "private_key");
          auto enabled = r.integer(4, "enabled");
          auto created = r.integer(5, "created");
          if (!r.ok()) return;
          if (auto p = check_domain(*domain)) r.problem(fmt::format("domain {}", *p));
          if (auto p = check_dkim_selector(*selector)) r.problem(fmt::format("selector {}", *p));
          r.problem("algorithm", check_dkim_algorithm(*algorithm));
          if (*enabled != 0 && *enabled != 1)
            r.problem(fmt::format("enabled must be 0 or 1 (got {})", *enabled));
          if (*created < 0)
            r.problem(fmt::format("created must not be negative (got {})", *created));
          if (!r.ok()) return;
          r.problem("private_key", check_dkim_private_key(*algorithm, *pem));
          if (!r.ok()) return;
          DkimKey key{to_lower(*domain), to_lower(*selector), std::move(*algorithm),
                      std::move(*pem), *enabled == 1, *created};
          if (!seen.insert(key.domain + "/" + key.selector).second)
            return r.problem("duplicates another row (domain and selector are case-insensitive)");
          if (key.enabled) {
            by_domain[key.domain].push_back({{"selector", key.selector},
                                             {"algorithm", key.algorithm},
                                             {"private_key", key.private_key}});
          }
          snap_->dkim_keys_.push_back(std::move(key));
        });
    for (auto& [domain, keys] : by_domain) snap_->dkim_keys_json_.emplace(domain, keys.dump());
  }

  sqlite3* db_;
  std::vector<std::string>* problems_;
  std::unique_ptr<Snapshot> snap_;
  std::vector<std::string> relay_texts_;  // relay rows as written, for duplicate messages
  std::set<std::string> plugin_rows_;     // every plugins.name read, valid or not
};

std::string resolve_plugin_path(std::string_view path, std::string_view plugin_dir) {
  if (path.starts_with('/') || plugin_dir.empty()) return std::string(path);
  if (plugin_dir.ends_with('/')) return fmt::format("{}{}", plugin_dir, path);
  return fmt::format("{}/{}", plugin_dir, path);
}

std::optional<AccessStage> parse_access_stage(std::string_view text) {
  for (size_t i = 0; i < kAccessStageCount; ++i) {
    if (kStageNames[i] == text) return static_cast<AccessStage>(i);
  }
  return std::nullopt;
}

std::string_view to_string(AccessStage stage) { return kStageNames[static_cast<size_t>(stage)]; }

std::string_view to_string(AccessAction action) {
  switch (action) {
    case AccessAction::kAllow:
      return "allow";
    case AccessAction::kDeny:
      return "deny";
    case AccessAction::kTempfail:
      return "tempfail";
  }
  return "?";
}

int AccessRule::reply_code() const {
  if (action == AccessAction::kAllow) return 0;
  return code.value_or(action == AccessAction::kDeny ? 554 : 450);
}

std::string_view AccessRule::reply_enhanced() const {
  if (action == AccessAction::kAllow) return "";
  if (enhanced) return *enhanced;
  return action == AccessAction::kDeny ? "5.7.1" : "4.7.1";
}

std::string_view AccessRule::reply_text() const {
  if (action == AccessAction::kAllow) return "";
  if (text) return *text;
  return action == AccessAction::kDeny ? "Access denied" : "Try again later";
}

std::string AccessRule::summary() const {
  if (action == AccessAction::kAllow) return "allow";
  return fmt::format("{} {} {} {}", to_string(action), reply_code(), reply_enhanced(),
                     reply_text());
}

size_t CaseInsensitiveHash::operator()(std::string_view s) const {
  uint64_t h = 14695981039346656037ull;  // FNV-1a
  for (char c : s) {
    h ^= static_cast<unsigned char>(lower(c));
    h *= 1099511628211ull;
  }
  return static_cast<size_t>(h);
}

bool CaseInsensitiveEqual::operator()(std::string_view a, std::string_view b) const {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::vector<const PluginEntry*> Snapshot::plugins_for(std::string_view profile) const {
  std::vector<const PluginEntry*> out;
  for (const PluginEntry& e : plugins_) {
    if (e.enabled && (e.profile == "*" || e.profile == profile)) out.push_back(&e);
  }
  return out;
}

const PluginEntry* Snapshot::plugin(std::string_view name) const {
  for (const PluginEntry& e : plugins_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

bool Snapshot::is_local_domain(std::string_view domain) const {
  return local_domains_.find(domain) != local_domains_.end();
}

bool Snapshot::is_relay_network(const asio::ip::address& address) const {
  return relay_networks_.lookup(address).has_value();
}

const std::string* Snapshot::relay_network_for(const asio::ip::address& address) const {
  auto m = relay_networks_.lookup(address);
  return m ? &relay_network_text_[m->value] : nullptr;
}

const AccessRule* Snapshot::match_client(const asio::ip::address& address) const {
  auto m = client_rules_.lookup(address);
  return m ? &access_rules_[m->value] : nullptr;
}

const AccessRule* Snapshot::match_name(const NameRules& rules, std::string_view value) const {
  if (auto it = rules.exact.find(value); it != rules.exact.end()) return &access_rules_[it->second];
  if (rules.suffix.empty()) return nullptr;
  // Leftmost dot first: the longest suffix. A leading dot is skipped so ".a.b" never matches
  // itself as a suffix of "" (values are names, not patterns).
  for (size_t dot = value.find('.', 1); dot != std::string_view::npos;
       dot = value.find('.', dot + 1)) {
    if (auto it = rules.suffix.find(value.substr(dot)); it != rules.suffix.end()) {
      return &access_rules_[it->second];
    }
  }
  return nullptr;
}

const AccessRule* Snapshot::match_access(AccessStage stage, std::string_view value) const {
  if (stage == AccessStage::kClient) {
    auto address = parse_address(value);
    return address ? match_client(*address) : nullptr;
  }
  const NameRules& rules = name_rules_[static_cast<size_t>(stage)];
  if (stage == AccessStage::kSender || stage == AccessStage::kRecipient) {
    auto it = rules.exact.find(value);
    return it == rules.exact.end() ? nullptr : &access_rules_[it->second];
  }
  return match_name(rules, value);
}

const AccessRule* Snapshot::match_access(std::string_view stage, std::string_view value) const {
  auto s = parse_access_stage(stage);
  return s ? match_access(*s, value) : nullptr;
}

const std::string* Snapshot::plugin_settings(std::string_view plugin,
                                             std::string_view domain) const {
  std::string key = fmt::format("{}/{}", plugin, to_lower(domain));
  if (auto it = plugin_settings_.find(key); it != plugin_settings_.end()) return &it->second;
  key = fmt::format("{}/*", plugin);
  if (auto it = plugin_settings_.find(key); it != plugin_settings_.end()) return &it->second;
  return nullptr;
}

bool Snapshot::lookup(std::string_view table, std::string_view key, std::string* out) const {
  if (table == "local_domains") {
    if (!is_local_domain(key)) return false;
    out->assign(1, '1');  // not `= "1"`: GCC 12 -Wrestrict false positive (bug 105329)
    return true;
  }
  if (table == "relay_networks") {
    auto address = parse_address(key);
    const std::string* cidr = address ? relay_network_for(*address) : nullptr;
    if (!cidr) return false;
    *out = *cidr;
    return true;
  }
  if (table == "plugin_settings") {
    size_t slash = key.find('/');
    if (slash == std::string_view::npos) return false;
    const std::string* s = plugin_settings(key.substr(0, slash), key.substr(slash + 1));
    if (!s) return false;
    *out = *s;
    return true;
  }
  if (table == "dkim_keys") {
    auto it = dkim_keys_json_.find(to_lower(key));
    if (it == dkim_keys_json_.end()) return false;
    *out = it->second;
    return true;
  }
  if (table.starts_with("ratelimit")) return ratelimits_.lookup(table, key, out);
  if (table == "dnsbl_zones") return dnsbl_zones_.lookup(table, key, out);
  if (table == "spam_rules") return spam_rules_.lookup(table, key, out);
  if (table == "spam_thresholds") return spam_thresholds_.lookup(table, key, out);
  if (table == "routes") return routes_.lookup(table, key, out);
  if (table.starts_with("access:")) {
    const AccessRule* rule = match_access(table.substr(7), key);
    if (!rule) return false;
    *out = rule->summary();
    return true;
  }
  return false;
}

Expected<SnapshotPtr, std::vector<std::string>> read_snapshot(sqlite3* db, std::string source,
                                                              bool assign_version) {
  std::vector<std::string> problems;
  auto schema = query_int(db, "PRAGMA user_version");
  if (!schema) return unexpected(std::vector<std::string>{schema.error()});
  if (*schema != latest_schema_version()) {
    return unexpected(std::vector<std::string>{fmt::format(
        "policy database has schema version {}, expected {}", *schema, latest_schema_version())});
  }
  // A read transaction, unless the caller already holds one (mailgatectl's edit in progress).
  std::optional<Transaction> txn;
  if (sqlite3_get_autocommit(db)) {
    auto t = Transaction::begin(db, Transaction::Kind::kDeferred);
    if (!t) return unexpected(std::vector<std::string>{t.error()});
    txn.emplace(std::move(*t));
  }
  std::unique_ptr<Snapshot> snap =
      SnapshotBuilder(db, &problems).build(static_cast<int>(*schema), std::move(source), 0);
  if (txn) txn->rollback();  // read-only: nothing to commit
  if (!problems.empty()) {
    if (problems.size() > kMaxProblems) {
      size_t more = problems.size() - kMaxProblems;
      problems.resize(kMaxProblems);
      problems.push_back(fmt::format("... and {} more problems", more));
    }
    return unexpected(std::move(problems));
  }
  if (assign_version) SnapshotBuilder::set_version(*snap, ++g_last_version);
  return SnapshotPtr(std::move(snap));
}

Expected<SnapshotPtr, std::string> load_snapshot(const std::string& path) {
  auto db = open_db(path, OpenMode::kReadWrite);
  if (!db) return unexpected(db.error());
  if (auto m = migrate(db->get()); !m) return unexpected(fmt::format("{}: {}", path, m.error()));
  auto snap = read_snapshot(db->get(), path);
  if (!snap) return unexpected(join_problems(snap.error()));
  return std::move(*snap);
}

std::string join_problems(const std::vector<std::string>& problems) {
  return fmt::format("{}", fmt::join(problems, "; "));
}

}  // namespace mailgate::policy
