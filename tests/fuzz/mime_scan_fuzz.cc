// mime_scan_fuzz.cc — the spamscore plugin's MIME walk (GMime parsing, transfer decoding,
// charset conversion, HTML stripping, URL extraction) on arbitrary messages. Properties: no
// crash or sanitizer report; the bounds hold whatever the input (at most max_parts texts, at
// most max_urls URLs, all distinct and non-empty, a too_* flag set whenever a bound cut the
// walk); a message refused as too complex is not parsed; the walk is a pure function of its
// input (a second scan gives the same result); and tighter limits never find more.
// The first input byte picks the tight limits' values, so the fuzzer explores them too.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "mime_scan.h"

namespace {

using mailgate::spamscore::ScanLimits;
using mailgate::spamscore::ScannedMessage;
using mailgate::spamscore::scan_message;

void check_bounds(const ScannedMessage& m, const ScanLimits& limits) {
  FUZZ_CHECK(m.texts.size() <= limits.max_parts);
  FUZZ_CHECK(m.urls.size() <= limits.max_urls);
  FUZZ_CHECK(!(m.too_complex && m.parsed));
  const std::set<std::string> distinct(m.urls.begin(), m.urls.end());
  FUZZ_CHECK(distinct.size() == m.urls.size());
  for (const std::string& url : m.urls) FUZZ_CHECK(!url.empty());
}

bool same(const ScannedMessage& a, const ScannedMessage& b) {
  return a.parsed == b.parsed && a.too_complex == b.too_complex && a.too_deep == b.too_deep &&
         a.too_many_parts == b.too_many_parts && a.too_many_urls == b.too_many_urls &&
         a.subject == b.subject && a.texts == b.texts && a.urls == b.urls;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t knob = data[0];
  const std::string_view message(reinterpret_cast<const char*>(data + 1), size - 1);

  const ScanLimits defaults;
  const ScannedMessage full = scan_message(message, defaults);
  check_bounds(full, defaults);
  FUZZ_CHECK(same(full, scan_message(message, defaults)));

  ScanLimits tight;
  tight.max_depth = 1 + (knob & 0x3);
  tight.max_parts = 1 + ((knob >> 2) & 0x3);
  tight.max_urls = 1 + ((knob >> 4) & 0x7);
  const ScannedMessage small = scan_message(message, tight);
  check_bounds(small, tight);
  FUZZ_CHECK(small.texts.size() <= full.texts.size() || full.too_complex);
  FUZZ_CHECK(small.urls.size() <= full.urls.size() || full.too_complex || full.too_many_parts ||
             full.too_deep);
  return 0;
}
