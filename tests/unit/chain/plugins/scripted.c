/* scripted.c — a test plugin whose behaviour per stage comes from its settings:
 *   {"script": "STAGE=ACTION[;STAGE=ACTION...]"}
 * ACTION is one of: continue, accept, reject[:CODE:ENH:TEXT], tempfail[:CODE:ENH:TEXT],
 * discard, invalid (returns 99), sleep:MS (then continue), symbol:NAME:SCORE,
 * header:NAME:VALUE (header_add), rewrite:ADDRESS (rcpt_rewrite), drop (rcpt_remove of the
 * recipient being checked; in RCPT only when it starts with "drop"), count (adds the value of
 * score() to a symbol SEEN_SCORE), data (stores/reads a data slot; rejects if the slot from
 * an earlier stage is missing), tid:NAME (a symbol NAME scored with the calling thread's id),
 * dns:NAME:QNAME (an A query for QNAME; MG_RETRY_BLOCKING when it gives MG_DNS_WOULDBLOCK, else
 * a symbol NAME scored with the thread id and a symbol DNS_STATUS with the query's status),
 * retry (returns MG_RETRY_BLOCKING whatever the call).
 * Built several times with different -DTP_NAME so a chain can hold several of them, and with
 * -DTP_NONBLOCKING, -DTP_INLINE_RCPT, -DTP_STORE_ONLY or -DTP_TRY_INLINE for the descriptor's
 * flags. */
#include <mailgate/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef TP_NAME
#define TP_NAME "scripted"
#endif

typedef struct state {
  char script[1024];
} state;

static const mg_host *g_host;

static void *create(const mg_host *host, const char *settings, char *err, size_t errlen) {
  const char *key = strstr(settings, "\"script\"");
  state *st;
  const char *start, *end;
  g_host = host;
  if (strstr(settings, "\"fail\"") != NULL) {
    snprintf(err, errlen, "refusing to start: settings say fail");
    return NULL;
  }
  st = calloc(1, sizeof *st);
  if (key == NULL) return st;
  start = strchr(key + 8, '"');
  if (start == NULL) return st;
  ++start;
  end = strchr(start, '"');
  if (end == NULL || (size_t)(end - start) >= sizeof st->script) return st;
  memcpy(st->script, start, (size_t)(end - start));
  return st;
}

static void destroy(void *p) { free(p); }

/* Finds "stage=" in the script and copies its action into out. */
static int action_for(const state *st, const char *stage, char *out, size_t outlen) {
  char key[32];
  const char *p, *end;
  size_t n;
  snprintf(key, sizeof key, "%s=", stage);
  for (p = st->script; (p = strstr(p, key)) != NULL; p += strlen(key)) {
    if (p == st->script || p[-1] == ';') break;
  }
  if (p == NULL) return 0;
  p += strlen(key);
  end = strchr(p, ';');
  n = end ? (size_t)(end - p) : strlen(p);
  if (n >= outlen) n = outlen - 1;
  memcpy(out, p, n);
  out[n] = 0;
  return 1;
}

static void free_marker(void *p) { free(p); }

static mg_action run(void *vst, mg_session *s, const char *stage) {
  const state *st = vst;
  char a[512];
  char *f1, *f2, *f3;
  if (!action_for(st, stage, a, sizeof a)) return MG_CONTINUE;
  f1 = strchr(a, ':');
  if (f1) *f1++ = 0;
  f2 = f1 ? strchr(f1, ':') : NULL;
  if (f2) *f2++ = 0;
  f3 = f2 ? strchr(f2, ':') : NULL;
  if (f3) *f3++ = 0;
  if (strcmp(a, "accept") == 0) return MG_ACCEPT;
  if (strcmp(a, "discard") == 0) return MG_DISCARD;
  if (strcmp(a, "invalid") == 0) return (mg_action)99;
  if (strcmp(a, "reject") == 0 || strcmp(a, "tempfail") == 0) {
    if (f1) g_host->set_reply(s, atoi(f1), f2, f3);
    return a[0] == 'r' ? MG_REJECT : MG_TEMPFAIL;
  }
  if (strcmp(a, "sleep") == 0 && f1) {
    struct timespec ts;
    long ms = atol(f1);
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
    return MG_CONTINUE;
  }
  if (strcmp(a, "symbol") == 0 && f1 && f2) {
    g_host->add_symbol(s, f1, atof(f2), "scripted");
    return MG_CONTINUE;
  }
  if (strcmp(a, "tid") == 0 && f1) {
    g_host->add_symbol(s, f1, (double)syscall(SYS_gettid), "tid");
    return MG_CONTINUE;
  }
  if (strcmp(a, "dns") == 0 && f1 && f2) {
    mg_dns_result *r = g_host->dns_query(s, f2, MG_DNS_A);
    mg_dns_status status = r != NULL ? r->status : MG_DNS_ERROR;
    if (r != NULL) g_host->dns_free(r);
    if (status == MG_DNS_WOULDBLOCK) return MG_RETRY_BLOCKING;
    g_host->add_symbol(s, f1, (double)syscall(SYS_gettid), "dns");
    g_host->add_symbol(s, "DNS_STATUS", (double)status, "dns");
    return MG_CONTINUE;
  }
  if (strcmp(a, "retry") == 0) return MG_RETRY_BLOCKING;
  if (strcmp(a, "count") == 0) {
    g_host->add_symbol(s, "SEEN_SCORE", g_host->score(s), NULL);
    return MG_CONTINUE;
  }
  if (strcmp(a, "header") == 0 && f1 && f2) {
    return g_host->header_add(s, f1, f2) == 0 ? MG_CONTINUE : MG_TEMPFAIL;
  }
  if (strcmp(a, "rewrite") == 0 && f1) {
    return g_host->rcpt_rewrite(s, f1) == 0 ? MG_CONTINUE : MG_TEMPFAIL;
  }
  if (strcmp(a, "drop") == 0) {
    const char *rcpt = g_host->get(s, MG_ITEM_CURRENT_RCPT);
    if (rcpt == NULL || strncmp(rcpt, "drop", 4) != 0) return MG_CONTINUE;
    return g_host->rcpt_remove(s, rcpt) == 0 ? MG_CONTINUE : MG_TEMPFAIL;
  }
  if (strcmp(a, "data") == 0) {
    if (strcmp(stage, "mail") == 0) {
      g_host->set_data(s, 0, strdup("marker"), free_marker);
      return MG_CONTINUE;
    }
    return g_host->get_data(s, 0) != NULL ? MG_CONTINUE : MG_REJECT;
  }
  return MG_CONTINUE;
}

static mg_action on_connect(void *st, mg_session *s) { return run(st, s, "connect"); }
static mg_action on_helo(void *st, mg_session *s, const char *h) { (void)h; return run(st, s, "helo"); }
static mg_action on_mail(void *st, mg_session *s, const char *a) { (void)a; return run(st, s, "mail"); }
static mg_action on_rcpt(void *st, mg_session *s, const char *a) { (void)a; return run(st, s, "rcpt"); }
static mg_action on_data(void *st, mg_session *s) { return run(st, s, "data"); }
static mg_action on_header(void *st, mg_session *s, const char *n, const char *v) {
  (void)n; (void)v;
  return run(st, s, "header");
}
static mg_action on_eoh(void *st, mg_session *s) { return run(st, s, "eoh"); }
static mg_action on_body(void *st, mg_session *s, const unsigned char *c, size_t n) {
  (void)c; (void)n;
  return run(st, s, "body");
}
static mg_action on_eom(void *st, mg_session *s) { return run(st, s, "eom"); }

#if defined(TP_NONBLOCKING)
#define TP_FLAGS MG_PLUGIN_NONBLOCKING
#elif defined(TP_INLINE_RCPT)
#define TP_FLAGS MG_PLUGIN_INLINE_STAGE(MG_STAGE_RCPT)
#elif defined(TP_STORE_ONLY)
#define TP_FLAGS MG_PLUGIN_BLOCKS_ONLY_IN_STORE
#elif defined(TP_TRY_INLINE)
#define TP_FLAGS MG_PLUGIN_TRY_INLINE
#else
#define TP_FLAGS 0
#endif

static const mg_plugin descriptor = {
    sizeof(mg_plugin), MG_ABI_VERSION, TP_NAME, "1.0", TP_FLAGS,
    create, destroy, on_connect, on_helo, on_mail, on_rcpt, on_data, on_header, on_eoh,
    on_body, on_eom, NULL, NULL};

MG_PLUGIN_EXPORT const mg_plugin *mailgate_plugin_entry(uint32_t host_abi, const mg_host *host) {
  (void)host;
  if (MG_ABI_MAJOR(host_abi) != MG_ABI_VERSION_MAJOR) return NULL;
  return &descriptor;
}
