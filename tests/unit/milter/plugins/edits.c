/* edits.c — a test plugin that makes the end-of-message edits milter mode must hand to the
 * MTA, from its settings (every key optional; values without '"'):
 *   {"sender":"ADDR", "add":"ADDR", "remove":"ADDR", "subject_prefix":"TEXT",
 *    "remove_header":"NAME"}
 * At EOM: set_sender(sender), rcpt_add(add), rcpt_remove(remove), the first Subject changed
 * to prefix + " " + its value (header_change), every field named remove_header removed.
 * Built as tp_edits.so (tests/CMakeLists.txt) for tests/integration/test_milter_mode.py. */
#include <mailgate/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tp_settings.h"

typedef struct state {
  char sender[256], add[256], remove[256], subject_prefix[256], remove_header[128];
} state;

static const mg_host *g_host;

static void *create(const mg_host *host, const char *settings, char *err, size_t errlen) {
  state *st = calloc(1, sizeof *st);
  (void)err;
  (void)errlen;
  g_host = host;
  setting(settings, "sender", st->sender, sizeof st->sender);
  setting(settings, "add", st->add, sizeof st->add);
  setting(settings, "remove", st->remove, sizeof st->remove);
  setting(settings, "subject_prefix", st->subject_prefix, sizeof st->subject_prefix);
  setting(settings, "remove_header", st->remove_header, sizeof st->remove_header);
  return st;
}

static void destroy(void *p) { free(p); }

static mg_action on_eom(void *vst, mg_session *s) {
  const state *st = vst;
  size_t i, n;
  if (st->sender[0] && g_host->set_sender(s, st->sender) != 0) return MG_FAILED;
  if (st->add[0] && g_host->rcpt_add(s, st->add) != 0) return MG_FAILED;
  if (st->remove[0] && g_host->rcpt_remove(s, st->remove) != 0) return MG_FAILED;
  if (st->subject_prefix[0]) {
    n = g_host->header_count(s);
    for (i = 0; i < n; ++i) {
      const char *name, *value;
      char buf[1024];
      if (g_host->header_at(s, i, &name, &value) != 0) break;
      if (strcasecmp(name, "Subject") != 0) continue;
      snprintf(buf, sizeof buf, "%s %s", st->subject_prefix, value);
      if (g_host->header_change(s, "Subject", 1, buf) != 0) return MG_FAILED;
      break;
    }
  }
  if (st->remove_header[0] && g_host->header_remove(s, st->remove_header, 0) != 0)
    return MG_FAILED;
  return MG_CONTINUE;
}

static const mg_plugin descriptor = {
    sizeof(mg_plugin), MG_ABI_VERSION, "edits", "1.0", 0, create, destroy,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, on_eom, NULL, NULL};

MG_PLUGIN_EXPORT const mg_plugin *mailgate_plugin_entry(uint32_t host_abi, const mg_host *host) {
  (void)host;
  if (MG_ABI_MAJOR(host_abi) != MG_ABI_VERSION_MAJOR) return NULL;
  return &descriptor;
}
