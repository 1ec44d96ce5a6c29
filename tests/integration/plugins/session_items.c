/*
 * session_items.c — a test plugin that shows what the gateway tells plugins about the
 * connection: at EOM it adds one header field
 *
 *   X-Session-Items: profile=submission; protocol=ESMTPSA; tls_version=TLSv1.3;
 *     tls_cipher=TLS_AES_256_GCM_SHA384; auth_user=alice
 *
 * (items the gateway leaves unset show as "-"). Used by test_tls.py and test_submission.py,
 * compiled by the test itself in C99 against the SDK headers alone. No settings.
 */
#include <mailgate/plugin.h>

#include <stdio.h>
#include <stdlib.h>

static void *items_create(const mg_host *host, const char *settings, char *err, size_t errlen) {
  (void)settings;
  (void)err;
  (void)errlen;
  return (void *)host;
}

static void items_destroy(void *state) { (void)state; }

static const char *or_dash(const char *v) { return v != NULL && *v != '\0' ? v : "-"; }

static mg_action items_eom(void *state, mg_session *s) {
  const mg_host *host = state;
  char value[512];
  snprintf(value, sizeof value,
           "profile=%s; protocol=%s; tls_version=%s; tls_cipher=%s; auth_user=%s",
           or_dash(host->get(s, MG_ITEM_PROFILE)), or_dash(host->get(s, MG_ITEM_PROTOCOL)),
           or_dash(host->get(s, MG_ITEM_TLS_VERSION)), or_dash(host->get(s, MG_ITEM_TLS_CIPHER)),
           or_dash(host->get(s, MG_ITEM_AUTH_USER)));
  host->header_add(s, "X-Session-Items", value);
  return MG_CONTINUE;
}

static const mg_plugin items_plugin = {
    sizeof(mg_plugin), MG_ABI_VERSION, "session_items", "1.0", 0u, items_create, items_destroy,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, items_eom, NULL, NULL};

MG_PLUGIN_EXPORT const mg_plugin *mailgate_plugin_entry(uint32_t host_abi_version,
                                                        const mg_host *host) {
  (void)host;
  return MG_ABI_MAJOR(host_abi_version) == MG_ABI_VERSION_MAJOR ? &items_plugin : NULL;
}
