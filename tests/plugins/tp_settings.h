/* tp_settings.h — settings parsing shared by the C test plugins (tests/plugins, unit/milter
 * plugins): their settings are flat JSON objects of strings, so no JSON library is needed. */
#ifndef MAILGATE_TP_SETTINGS_H
#define MAILGATE_TP_SETTINGS_H

#include <stdio.h>
#include <string.h>

/* Copies the string value of "key" in the JSON object `settings` into out (empty if absent). */
static void setting(const char *settings, const char *key, char *out, size_t outlen) {
  char quoted[64];
  const char *p, *start, *end;
  out[0] = 0;
  snprintf(quoted, sizeof quoted, "\"%s\"", key);
  p = strstr(settings, quoted);
  if (p == NULL) return;
  start = strchr(p + strlen(quoted), '"');
  if (start == NULL) return;
  ++start;
  end = strchr(start, '"');
  if (end == NULL || (size_t)(end - start) >= outlen) return;
  memcpy(out, start, (size_t)(end - start));
  out[end - start] = 0;
}

#endif
