/*
 * slow.c — a test plugin that takes its time: at MAIL it sleeps "sleep_ms" milliseconds when
 * the sender starts with "sender_prefix", then answers CONTINUE. Used by
 * test_plugins_gateway.py to drive the gateway's plugin timeout and fail modes. Compiled by the
 * test itself, in C99 against the SDK headers alone (mailgate/plugin.h):
 *
 *   settings: {"sleep_ms": 2000, "sender_prefix": "slow"}   (both required, nothing else)
 *
 * It blocks, so it does not declare MG_PLUGIN_NONBLOCKING: it runs on the worker pool.
 */
#define _POSIX_C_SOURCE 200809L
#include <mailgate/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slow {
  const mg_host *host;
  long sleep_ms;
  char prefix[64];
};

/* The text right after "key": in a flat JSON object (tests only: no nesting, no escapes). */
static const char *value_of(const char *json, const char *key) {
  char quoted[80];
  const char *p;
  snprintf(quoted, sizeof quoted, "\"%s\"", key);
  p = strstr(json, quoted);
  if (p == NULL) return NULL;
  p += strlen(quoted);
  while (*p == ' ') ++p;
  if (*p != ':') return NULL;
  ++p;
  while (*p == ' ') ++p;
  return p;
}

static void *slow_create(const mg_host *host, const char *settings, char *err, size_t errlen) {
  const char *ms = value_of(settings, "sleep_ms");
  const char *prefix = value_of(settings, "sender_prefix");
  const char *end;
  struct slow *st;
  size_t n;
  if (ms == NULL || prefix == NULL || *prefix != '"') {
    snprintf(err, errlen, "slow: settings need \"sleep_ms\" (number) and \"sender_prefix\" (string)");
    return NULL;
  }
  end = strchr(prefix + 1, '"');
  n = end != NULL ? (size_t)(end - prefix - 1) : 0;
  if (end == NULL || n == 0 || n >= sizeof st->prefix) {
    snprintf(err, errlen, "slow: bad \"sender_prefix\"");
    return NULL;
  }
  st = calloc(1, sizeof *st);
  if (st == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  st->host = host;
  st->sleep_ms = strtol(ms, NULL, 10);
  memcpy(st->prefix, prefix + 1, n);
  return st;
}

static void slow_destroy(void *state) { free(state); }

static mg_action slow_mail(void *state, mg_session *s, const char *sender) {
  const struct slow *st = state;
  struct timespec ts;
  char line[128];
  if (strncmp(sender, st->prefix, strlen(st->prefix)) != 0) return MG_CONTINUE;
  snprintf(line, sizeof line, "sleeping %ld ms for <%s>", st->sleep_ms, sender);
  st->host->log(s, MG_LOG_INFO, line);
  ts.tv_sec = st->sleep_ms / 1000;
  ts.tv_nsec = (st->sleep_ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  return MG_CONTINUE;
}

static const mg_plugin slow_plugin = {
    sizeof(mg_plugin), MG_ABI_VERSION, "slow", "1.0", 0u, slow_create, slow_destroy,
    NULL,      /* connect */
    NULL,      /* helo */
    slow_mail, /* mail */
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};

MG_PLUGIN_EXPORT const mg_plugin *mailgate_plugin_entry(uint32_t host_abi_version,
                                                        const mg_host *host) {
  (void)host;
  return MG_ABI_MAJOR(host_abi_version) == MG_ABI_VERSION_MAJOR ? &slow_plugin : NULL;
}
