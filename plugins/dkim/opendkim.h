// plugins/dkim/opendkim.h — includes libopendkim's <dkim.h> from C++: the header spells C99's
// _Bool, which C++ lacks; it is bool there (same size and ABI on the platforms we build for).
#ifndef MAILGATE_PLUGINS_DKIM_OPENDKIM_H
#define MAILGATE_PLUGINS_DKIM_OPENDKIM_H

#include <sys/types.h>

#ifdef __cplusplus
#define _Bool bool
#endif
#include <dkim.h>
#ifdef __cplusplus
#undef _Bool
#endif

#endif  // MAILGATE_PLUGINS_DKIM_OPENDKIM_H
