/*
 * hello.c — the smallest useful mailgate plugin, in C99 against the C ABI alone.
 *
 * It logs each connection, and adds the header "X-Hello: <client address>" and the score
 * symbol HELLO (0.0) to each message. It never blocks, so it declares MG_PLUGIN_NONBLOCKING
 * and runs inline on the gateway's I/O threads.
 *
 * Build against the installed SDK:
 *   gcc -std=c99 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden \
 *       $(pkg-config --cflags mailgate) -o hello.so hello.c
 */
#include <mailgate/plugin.h>

#include <stdio.h>
#include <stdlib.h>

/* The plugin's state: shared by every session, so read-only after create(). */
struct hello {
  const mg_host *host;
};

static void *hello_create(const mg_host *host, const char *settings_json, char *err,
                          size_t errlen) {
  struct hello *h;
  (void)settings_json; /* no settings */
  h = malloc(sizeof(*h));
  if (h == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  h->host = host;
  return h;
}

static void hello_destroy(void *state) { free(state); }

static mg_action hello_connect(void *state, mg_session *s) {
  const struct hello *h = state;
  const char *addr = h->host->get(s, MG_ITEM_CLIENT_ADDR);
  char line[128];
  snprintf(line, sizeof(line), "hello, %s", addr != NULL ? addr : "unknown client");
  h->host->log(s, MG_LOG_INFO, line);
  return MG_CONTINUE;
}

static mg_action hello_eom(void *state, mg_session *s) {
  const struct hello *h = state;
  const char *addr = h->host->get(s, MG_ITEM_CLIENT_ADDR);
  if (h->host->header_add(s, "X-Hello", addr != NULL ? addr : "unknown") != 0)
    h->host->log(s, MG_LOG_WARNING, "could not add X-Hello");
  h->host->add_symbol(s, "HELLO", 0.0, "said hello");
  return MG_CONTINUE;
}

static const mg_plugin hello_plugin = {
    .struct_size = sizeof(mg_plugin),
    .abi_version = MG_ABI_VERSION,
    .name = "hello",
    .version = "1.0",
    .flags = MG_PLUGIN_NONBLOCKING,
    .create = hello_create,
    .destroy = hello_destroy,
    .on_connect = hello_connect,
    .on_eom = hello_eom,
    /* every other stage: NULL, the gateway skips it */
};

MG_PLUGIN_EXPORT const mg_plugin *mailgate_plugin_entry(uint32_t host_abi_version,
                                                        const mg_host *host) {
  (void)host;
  if (MG_ABI_MAJOR(host_abi_version) != MG_ABI_VERSION_MAJOR) return NULL; /* wrong major */
  return &hello_plugin;
}
