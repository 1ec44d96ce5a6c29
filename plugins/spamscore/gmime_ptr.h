// plugins/spamscore/gmime_ptr.h — RAII for the GLib/GMime handles the spamscore plugin uses:
// GObjects (messages, parsers, streams, filters, address lists) released with g_object_unref,
// GDateTime with g_date_time_unref, and g_malloc'd strings with g_free. Also gmime_ready(),
// which initialises GMime once per process.
// Must not: hand a pointer it owns to a GMime call that takes ownership (none of the calls the
// plugin makes do; GMime adds its own references where it keeps an object).
#pragma once

#include <gmime/gmime.h>

#include <memory>

namespace mailgate::spamscore {

struct GObjectUnref {
  void operator()(void* object) const noexcept {
    if (object != nullptr) g_object_unref(object);
  }
};
// A GObject of type T (GMimeMessage, GMimeParser, GMimeStream, GMimeFilter, ...).
template <class T>
using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

struct GDateTimeUnref {
  void operator()(GDateTime* t) const noexcept {
    if (t != nullptr) g_date_time_unref(t);
  }
};
using GDateTimePtr = std::unique_ptr<GDateTime, GDateTimeUnref>;

struct GFree {
  void operator()(void* p) const noexcept { g_free(p); }
};
using GCharPtr = std::unique_ptr<char, GFree>;

// Initialises GMime the first time it is called (thread-safe) and keeps libgmime loaded for
// the life of the process (a plugin reloaded with a new policy must not initialise it twice);
// GMime is never shut down, since other code in the process may use it too.
void gmime_ready();

}  // namespace mailgate::spamscore
