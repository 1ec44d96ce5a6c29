// abi_layout_test.cc — pins the plugin ABI of sdk/include/mailgate/plugin.h (version 1.4).
//
// Every public struct's size, every member's offset and type, every enum value and the version
// macros are fixed here by static_asserts, so an accidental ABI change fails the build instead
// of breaking plugins already compiled. The layout numbers are for x86_64 LP64 (the platform
// mailgate ships on); other platforms check only what is platform-independent.
//
// Changing this file is changing the ABI. Within major 1 the only allowed edits are new
// members appended at the end of mg_host or mg_plugin (bump MG_ABI_VERSION_MINOR, add their
// asserts below, raise the struct sizes) and new enum values after the existing ones.
// Anything else needs a new major version.
#include <gtest/gtest.h>
#include <mailgate/plugin.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace {

// --- versions and the entry symbol ---------------------------------------------------------------
static_assert(MG_ABI_VERSION_MAJOR == 1);
static_assert(MG_ABI_VERSION_MINOR == 5);
static_assert(MG_ABI_VERSION == 0x00010005u);
static_assert(MG_ABI_MAJOR(0x00020003u) == 2 && MG_ABI_MINOR(0x00020003u) == 3);
static_assert(std::is_same_v<decltype(MG_ABI_VERSION), std::uint32_t>);
static_assert(MG_PLUGIN_NONBLOCKING == 0x1u);
// ABI 1.4 threading hints: flag bits, no layout change.
static_assert(MG_PLUGIN_BLOCKS_ONLY_IN_STORE == 0x2u);
static_assert(MG_PLUGIN_TRY_INLINE == 0x4u);  // ABI 1.5
static_assert(MG_PLUGIN_INLINE_STAGE(MG_STAGE_CONNECT) == 0x100u);
static_assert(MG_PLUGIN_INLINE_STAGE(MG_STAGE_RCPT) == (0x100u << 3));
static_assert(MG_PLUGIN_INLINE_STAGE(MG_STAGE_CLOSE) == (0x100u << 10));
static_assert(std::is_same_v<mg_plugin_entry_fn, const mg_plugin *(*)(uint32_t, const mg_host *)>);
static_assert(std::is_same_v<decltype(&mailgate_plugin_entry), mg_plugin_entry_fn>);

constexpr bool same(const char *a, const char *b) {
  for (; *a != '\0' && *a == *b; ++a, ++b) {
  }
  return *a == *b;
}
static_assert(same(MG_PLUGIN_ENTRY_SYMBOL, "mailgate_plugin_entry"));

// --- enums: values are part of the ABI -----------------------------------------------------
static_assert(sizeof(mg_stage) == 4 && sizeof(mg_action) == 4 && sizeof(mg_log_level) == 4 &&
              sizeof(mg_dns_type) == 4 && sizeof(mg_dns_status) == 4 && sizeof(mg_item) == 4);

static_assert(MG_STAGE_CONNECT == 0);
static_assert(MG_STAGE_HELO == 1);
static_assert(MG_STAGE_MAIL == 2);
static_assert(MG_STAGE_RCPT == 3);
static_assert(MG_STAGE_DATA == 4);
static_assert(MG_STAGE_HEADER == 5);
static_assert(MG_STAGE_EOH == 6);
static_assert(MG_STAGE_BODY == 7);
static_assert(MG_STAGE_EOM == 8);
static_assert(MG_STAGE_RESET == 9);
static_assert(MG_STAGE_CLOSE == 10);
// The COUNT sentinels grow when a minor version appends a stage or an item.
static_assert(MG_STAGE_COUNT >= 11);
static_assert(MG_CONTINUE == 0);
static_assert(MG_ACCEPT == 1);
static_assert(MG_TEMPFAIL == 2);
static_assert(MG_REJECT == 3);
static_assert(MG_DISCARD == 4);
static_assert(MG_RETRY_BLOCKING == 5);  // ABI 1.5
static_assert(MG_FAILED == -1);
static_assert(MG_LOG_DEBUG == 0);
static_assert(MG_LOG_INFO == 1);
static_assert(MG_LOG_WARNING == 2);
static_assert(MG_LOG_ERROR == 3);
static_assert(MG_DNS_A == 1);
static_assert(MG_DNS_PTR == 12);
static_assert(MG_DNS_MX == 15);
static_assert(MG_DNS_TXT == 16);
static_assert(MG_DNS_AAAA == 28);
static_assert(MG_DNS_OK == 0);
static_assert(MG_DNS_NXDOMAIN == 1);
static_assert(MG_DNS_NODATA == 2);
static_assert(MG_DNS_TEMPFAIL == 3);
static_assert(MG_DNS_ERROR == 4);
static_assert(MG_DNS_WOULDBLOCK == 5);  // ABI 1.5
static_assert(MG_ITEM_SESSION_ID == 0);
static_assert(MG_ITEM_CLIENT_ADDR == 1);
static_assert(MG_ITEM_CLIENT_PORT == 2);
static_assert(MG_ITEM_CLIENT_NAME == 3);
static_assert(MG_ITEM_LOCAL_ADDR == 4);
static_assert(MG_ITEM_PROFILE == 5);
static_assert(MG_ITEM_HELO == 6);
static_assert(MG_ITEM_PROTOCOL == 7);
static_assert(MG_ITEM_TLS_VERSION == 8);
static_assert(MG_ITEM_TLS_CIPHER == 9);
static_assert(MG_ITEM_AUTH_USER == 10);
static_assert(MG_ITEM_SENDER == 11);
static_assert(MG_ITEM_TX_ID == 12);
static_assert(MG_ITEM_HOSTNAME == 13);
static_assert(MG_ITEM_CURRENT_RCPT == 14);
static_assert(MG_ITEM_COUNT >= 15);

// --- member types: a changed parameter breaks callers as surely as a moved member ----------------
#define MG_PIN_TYPE(T, m, ...) \
  static_assert(std::is_same_v<decltype(T::m), __VA_ARGS__>, #T "::" #m)
MG_PIN_TYPE(mg_dns_record, text, const char *);
MG_PIN_TYPE(mg_dns_record, preference, uint16_t);
MG_PIN_TYPE(mg_dns_record, ttl, uint32_t);
MG_PIN_TYPE(mg_dns_result, struct_size, uint32_t);
MG_PIN_TYPE(mg_dns_result, status, mg_dns_status);
MG_PIN_TYPE(mg_dns_result, secure, int);
MG_PIN_TYPE(mg_dns_result, count, size_t);
MG_PIN_TYPE(mg_dns_result, records, const mg_dns_record *);
MG_PIN_TYPE(mg_host, struct_size, uint32_t);
MG_PIN_TYPE(mg_host, abi_version, uint32_t);
MG_PIN_TYPE(mg_host, log, void (*)(mg_session *, mg_log_level, const char *));
MG_PIN_TYPE(mg_host, set_reply, void (*)(mg_session *, int, const char *, const char *));
MG_PIN_TYPE(mg_host, get, const char *(*)(mg_session *, mg_item));
MG_PIN_TYPE(mg_host, mail_param, const char *(*)(mg_session *, const char *));
MG_PIN_TYPE(mg_host, rcpt_count, size_t (*)(mg_session *));
MG_PIN_TYPE(mg_host, rcpt_at, const char *(*)(mg_session *, size_t));
MG_PIN_TYPE(mg_host, header_count, size_t (*)(mg_session *));
MG_PIN_TYPE(mg_host, header_at, int (*)(mg_session *, size_t, const char **, const char **));
MG_PIN_TYPE(mg_host, body_read, int64_t (*)(mg_session *, uint64_t, void *, size_t));
MG_PIN_TYPE(mg_host, message_size, uint64_t (*)(mg_session *));
MG_PIN_TYPE(mg_host, add_symbol, void (*)(mg_session *, const char *, double, const char *));
MG_PIN_TYPE(mg_host, score, double (*)(mg_session *));
MG_PIN_TYPE(mg_host, symbol_count, size_t (*)(mg_session *));
MG_PIN_TYPE(mg_host, symbol_at,
            int (*)(mg_session *, size_t, const char **, double *, const char **));
MG_PIN_TYPE(mg_host, header_add, int (*)(mg_session *, const char *, const char *));
MG_PIN_TYPE(mg_host, header_insert, int (*)(mg_session *, size_t, const char *, const char *));
MG_PIN_TYPE(mg_host, header_remove, int (*)(mg_session *, const char *, size_t));
MG_PIN_TYPE(mg_host, header_change, int (*)(mg_session *, const char *, size_t, const char *));
MG_PIN_TYPE(mg_host, set_sender, int (*)(mg_session *, const char *));
MG_PIN_TYPE(mg_host, rcpt_rewrite, int (*)(mg_session *, const char *));
MG_PIN_TYPE(mg_host, rcpt_add, int (*)(mg_session *, const char *));
MG_PIN_TYPE(mg_host, rcpt_remove, int (*)(mg_session *, const char *));
MG_PIN_TYPE(mg_host, set_data, void (*)(mg_session *, int, void *, void (*)(void *)));
MG_PIN_TYPE(mg_host, get_data, void *(*)(mg_session *, int));
MG_PIN_TYPE(mg_host, dns_query, mg_dns_result *(*)(mg_session *, const char *, mg_dns_type));
MG_PIN_TYPE(mg_host, dns_free, void (*)(mg_dns_result *));
MG_PIN_TYPE(mg_host, policy_lookup, int (*)(const char *, const char *, char *, size_t));
MG_PIN_TYPE(mg_host, counter_add, int (*)(const char *, int64_t, uint32_t, int64_t *));
// 1.1
MG_PIN_TYPE(mg_host, header_raw_at, int (*)(mg_session *, size_t, const char **, size_t *));
MG_PIN_TYPE(mg_host, auth_result_add,
            int (*)(mg_session *, const char *, const char *, const char *, const char *));
MG_PIN_TYPE(mg_host, auth_result_count, size_t (*)(mg_session *));
MG_PIN_TYPE(mg_host, auth_result_at, int (*)(mg_session *, size_t, const char **, const char **,
                                             const char **, const char **));
// 1.2
MG_PIN_TYPE(mg_host, now_ms, uint64_t (*)(void));
MG_PIN_TYPE(mg_host, rate_limit,
            int (*)(const char *, uint32_t, uint32_t, uint32_t, uint32_t, int, uint32_t *));
MG_PIN_TYPE(mg_host, kv_get, int (*)(const char *, char *, size_t));
MG_PIN_TYPE(mg_host, kv_set, int (*)(const char *, const char *, uint32_t, int));
MG_PIN_TYPE(mg_host, store_fail_mode, int (*)(void));
// 1.3
MG_PIN_TYPE(mg_host, body_replace, int (*)(mg_session *, const char *, size_t));
MG_PIN_TYPE(mg_host, quarantine, int (*)(mg_session *, const char *));
MG_PIN_TYPE(mg_plugin, struct_size, uint32_t);
MG_PIN_TYPE(mg_plugin, abi_version, uint32_t);
MG_PIN_TYPE(mg_plugin, name, const char *);
MG_PIN_TYPE(mg_plugin, version, const char *);
MG_PIN_TYPE(mg_plugin, flags, uint32_t);
MG_PIN_TYPE(mg_plugin, create, void *(*)(const mg_host *, const char *, char *, size_t));
MG_PIN_TYPE(mg_plugin, destroy, void (*)(void *));
MG_PIN_TYPE(mg_plugin, on_connect, mg_action (*)(void *, mg_session *));
MG_PIN_TYPE(mg_plugin, on_helo, mg_action (*)(void *, mg_session *, const char *));
MG_PIN_TYPE(mg_plugin, on_mail, mg_action (*)(void *, mg_session *, const char *));
MG_PIN_TYPE(mg_plugin, on_rcpt, mg_action (*)(void *, mg_session *, const char *));
MG_PIN_TYPE(mg_plugin, on_data, mg_action (*)(void *, mg_session *));
MG_PIN_TYPE(mg_plugin, on_header, mg_action (*)(void *, mg_session *, const char *, const char *));
MG_PIN_TYPE(mg_plugin, on_eoh, mg_action (*)(void *, mg_session *));
MG_PIN_TYPE(mg_plugin, on_body, mg_action (*)(void *, mg_session *, const unsigned char *, size_t));
MG_PIN_TYPE(mg_plugin, on_eom, mg_action (*)(void *, mg_session *));
MG_PIN_TYPE(mg_plugin, on_reset, void (*)(void *, mg_session *));
MG_PIN_TYPE(mg_plugin, on_close, void (*)(void *, mg_session *));
#undef MG_PIN_TYPE

// --- layout on x86_64 LP64 -------------------------------------------------------------------
#if defined(__x86_64__) && defined(__LP64__)
static_assert(sizeof(mg_dns_record) == 16 && alignof(mg_dns_record) == 8);
static_assert(offsetof(mg_dns_record, text) == 0);
static_assert(offsetof(mg_dns_record, preference) == 8);
static_assert(offsetof(mg_dns_record, ttl) == 12);

static_assert(sizeof(mg_dns_result) == 32 && alignof(mg_dns_result) == 8);
static_assert(offsetof(mg_dns_result, struct_size) == 0);
static_assert(offsetof(mg_dns_result, status) == 4);
static_assert(offsetof(mg_dns_result, secure) == 8);
static_assert(offsetof(mg_dns_result, count) == 16);
static_assert(offsetof(mg_dns_result, records) == 24);

static_assert(sizeof(mg_host) == 320 && alignof(mg_host) == 8);
static_assert(offsetof(mg_host, struct_size) == 0);
static_assert(offsetof(mg_host, abi_version) == 4);
static_assert(offsetof(mg_host, log) == 8);
static_assert(offsetof(mg_host, set_reply) == 16);
static_assert(offsetof(mg_host, get) == 24);
static_assert(offsetof(mg_host, mail_param) == 32);
static_assert(offsetof(mg_host, rcpt_count) == 40);
static_assert(offsetof(mg_host, rcpt_at) == 48);
static_assert(offsetof(mg_host, header_count) == 56);
static_assert(offsetof(mg_host, header_at) == 64);
static_assert(offsetof(mg_host, body_read) == 72);
static_assert(offsetof(mg_host, message_size) == 80);
static_assert(offsetof(mg_host, add_symbol) == 88);
static_assert(offsetof(mg_host, score) == 96);
static_assert(offsetof(mg_host, symbol_count) == 104);
static_assert(offsetof(mg_host, symbol_at) == 112);
static_assert(offsetof(mg_host, header_add) == 120);
static_assert(offsetof(mg_host, header_insert) == 128);
static_assert(offsetof(mg_host, header_remove) == 136);
static_assert(offsetof(mg_host, header_change) == 144);
static_assert(offsetof(mg_host, set_sender) == 152);
static_assert(offsetof(mg_host, rcpt_rewrite) == 160);
static_assert(offsetof(mg_host, rcpt_add) == 168);
static_assert(offsetof(mg_host, rcpt_remove) == 176);
static_assert(offsetof(mg_host, set_data) == 184);
static_assert(offsetof(mg_host, get_data) == 192);
static_assert(offsetof(mg_host, dns_query) == 200);
static_assert(offsetof(mg_host, dns_free) == 208);
static_assert(offsetof(mg_host, policy_lookup) == 216);
static_assert(offsetof(mg_host, counter_add) == 224);
static_assert(offsetof(mg_host, header_raw_at) == 232);
static_assert(offsetof(mg_host, auth_result_add) == 240);
static_assert(offsetof(mg_host, auth_result_count) == 248);
static_assert(offsetof(mg_host, auth_result_at) == 256);
static_assert(offsetof(mg_host, now_ms) == 264);
static_assert(offsetof(mg_host, rate_limit) == 272);
static_assert(offsetof(mg_host, kv_get) == 280);
static_assert(offsetof(mg_host, kv_set) == 288);
static_assert(offsetof(mg_host, store_fail_mode) == 296);
static_assert(offsetof(mg_host, body_replace) == 304);
static_assert(offsetof(mg_host, quarantine) == 312);
static_assert(MG_STORE_FAIL_OPEN == 0 && MG_STORE_FAIL_TEMPFAIL == 1);

static_assert(sizeof(mg_plugin) == 136 && alignof(mg_plugin) == 8);
static_assert(offsetof(mg_plugin, struct_size) == 0);
static_assert(offsetof(mg_plugin, abi_version) == 4);
static_assert(offsetof(mg_plugin, name) == 8);
static_assert(offsetof(mg_plugin, version) == 16);
static_assert(offsetof(mg_plugin, flags) == 24);
static_assert(offsetof(mg_plugin, create) == 32);
static_assert(offsetof(mg_plugin, destroy) == 40);
static_assert(offsetof(mg_plugin, on_connect) == 48);
static_assert(offsetof(mg_plugin, on_helo) == 56);
static_assert(offsetof(mg_plugin, on_mail) == 64);
static_assert(offsetof(mg_plugin, on_rcpt) == 72);
static_assert(offsetof(mg_plugin, on_data) == 80);
static_assert(offsetof(mg_plugin, on_header) == 88);
static_assert(offsetof(mg_plugin, on_eoh) == 96);
static_assert(offsetof(mg_plugin, on_body) == 104);
static_assert(offsetof(mg_plugin, on_eom) == 112);
static_assert(offsetof(mg_plugin, on_reset) == 120);
static_assert(offsetof(mg_plugin, on_close) == 128);
#endif

// MG_HOST_HAS is how a plugin built for a later minor checks a host: every 1.0 member is there
// in a 1.0-sized table, and nothing past the table's own size is.
TEST(AbiLayout, HostHasChecksTheTablesOwnSize) {
  mg_host host{};
  host.struct_size = sizeof(mg_host);
  EXPECT_TRUE(MG_HOST_HAS(&host, log));
  EXPECT_TRUE(MG_HOST_HAS(&host, counter_add));
  host.struct_size = offsetof(mg_host, dns_query);  // a hypothetical older, shorter table
  EXPECT_TRUE(MG_HOST_HAS(&host, get_data));
  EXPECT_FALSE(MG_HOST_HAS(&host, dns_query));
  EXPECT_FALSE(MG_HOST_HAS(&host, counter_add));
  host.struct_size = offsetof(mg_host, counter_add) + sizeof(host.counter_add);  // a 1.0 host
  EXPECT_TRUE(MG_HOST_HAS(&host, counter_add));
  EXPECT_FALSE(MG_HOST_HAS(&host, header_raw_at));
  EXPECT_FALSE(MG_HOST_HAS(&host, auth_result_at));
  host.struct_size = offsetof(mg_host, auth_result_at) + sizeof(host.auth_result_at);  // 1.1
  EXPECT_TRUE(MG_HOST_HAS(&host, auth_result_at));
  EXPECT_FALSE(MG_HOST_HAS(&host, now_ms));
  EXPECT_FALSE(MG_HOST_HAS(&host, store_fail_mode));
  host.struct_size = offsetof(mg_host, store_fail_mode) + sizeof(host.store_fail_mode);  // 1.2
  EXPECT_TRUE(MG_HOST_HAS(&host, kv_set));
  EXPECT_FALSE(MG_HOST_HAS(&host, body_replace));
  EXPECT_FALSE(MG_HOST_HAS(&host, quarantine));
  host.struct_size = sizeof(mg_host);
  EXPECT_TRUE(MG_HOST_HAS(&host, quarantine));
}

TEST(AbiLayout, VersionMacrosSplitMajorAndMinor) {
  EXPECT_EQ(MG_ABI_MAJOR(MG_ABI_VERSION), 1u);
  EXPECT_EQ(MG_ABI_MINOR(MG_ABI_VERSION), static_cast<std::uint32_t>(MG_ABI_VERSION_MINOR));
  EXPECT_EQ(MG_ABI_MAJOR(0xFFFF0001u), 0xFFFFu);
  EXPECT_EQ(MG_ABI_MINOR(0xFFFF0001u), 1u);
}

}  // namespace
