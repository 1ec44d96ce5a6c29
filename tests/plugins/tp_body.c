/* tp_body.c — a test plugin for the ABI 1.3 message edits, from its settings (both keys
 * optional; values without '"'):
 *   {"body_file":"PATH", "quarantine":"REASON"}
 * create() reads PATH whole; at EOM the plugin gives it to body_replace() in chunks of 7
 * octets (the first call replaces, the later ones append) and quarantines with REASON.
 * A refused call answers MG_FAILED, so the plugin's fail mode shows in the tests.
 * Built as tp_body.so (tests/CMakeLists.txt) for tests/integration/test_body_edits.py and
 * test_milter_mode.py. */
#include <mailgate/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tp_settings.h"

typedef struct state {
  char *body; /* NULL when no body_file */
  size_t body_len;
  char quarantine[256];
} state;

static const mg_host *g_host;

static void destroy(void *p) {
  state *st = p;
  if (st == NULL) return;
  free(st->body);
  free(st);
}

static void *create(const mg_host *host, const char *settings, char *err, size_t errlen) {
  state *st = calloc(1, sizeof *st);
  char path[1024];
  FILE *f;
  long size;
  g_host = host;
  if (!MG_HOST_HAS(host, quarantine)) {
    snprintf(err, errlen, "tp_body: the host has no ABI 1.3 body services");
    free(st);
    return NULL;
  }
  setting(settings, "quarantine", st->quarantine, sizeof st->quarantine);
  setting(settings, "body_file", path, sizeof path);
  if (path[0] == 0) return st;
  f = fopen(path, "rb");
  if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
      fseek(f, 0, SEEK_SET) != 0) {
    snprintf(err, errlen, "tp_body: cannot read body_file %s", path);
    if (f != NULL) fclose(f);
    free(st);
    return NULL;
  }
  st->body = malloc((size_t)size + 1);
  st->body_len = fread(st->body, 1, (size_t)size, f);
  fclose(f);
  return st;
}

static mg_action on_eom(void *vst, mg_session *s) {
  const state *st = vst;
  size_t at = 0;
  if (st->body != NULL) {
    if (st->body_len == 0 && g_host->body_replace(s, "", 0) != 0) return MG_FAILED;
    while (at < st->body_len) {
      size_t n = st->body_len - at < 7 ? st->body_len - at : 7;
      if (g_host->body_replace(s, st->body + at, n) != 0) return MG_FAILED;
      at += n;
    }
  }
  if (st->quarantine[0] && g_host->quarantine(s, st->quarantine) != 0) return MG_FAILED;
  return MG_CONTINUE;
}

static const mg_plugin descriptor = {
    sizeof(mg_plugin), MG_ABI_VERSION, "body", "1.0", 0, create, destroy,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, on_eom, NULL, NULL};

MG_PLUGIN_EXPORT const mg_plugin *mailgate_plugin_entry(uint32_t host_abi, const mg_host *host) {
  (void)host;
  if (MG_ABI_MAJOR(host_abi) != MG_ABI_VERSION_MAJOR) return NULL;
  return &descriptor;
}
