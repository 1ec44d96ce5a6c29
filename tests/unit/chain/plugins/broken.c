/* broken.c — plugins that are wrong in one way each, for loader error tests:
 *   -DBROKEN_ABI: built for ABI major 2; -DBROKEN_NULL: the entry returns NULL;
 *   -DBROKEN_NO_ENTRY: exports no entry symbol. */
#include <mailgate/plugin.h>
#include <stddef.h>

#ifndef BROKEN_NO_ENTRY
static const mg_plugin descriptor = {sizeof(mg_plugin),
#ifdef BROKEN_ABI
                                     (2u << 16) | 3u,
#else
                                     MG_ABI_VERSION,
#endif
                                     "broken", "0", 0, NULL, NULL, NULL, NULL, NULL, NULL,
                                     NULL, NULL, NULL, NULL, NULL, NULL, NULL};

MG_PLUGIN_EXPORT const mg_plugin *mailgate_plugin_entry(uint32_t host_abi, const mg_host *host) {
  (void)host_abi;
  (void)host;
#ifdef BROKEN_NULL
  (void)descriptor;
  return NULL;
#else
  return &descriptor;
#endif
}
#else
MG_PLUGIN_EXPORT int not_the_entry(void) { return 0; }
#endif
