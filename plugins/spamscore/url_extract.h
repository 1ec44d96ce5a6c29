// plugins/spamscore/url_extract.h — URLs in a text: http://, https:// and bare www. names, as
// mail clients make them clickable, ended at white space, quotes or angle brackets, without the
// punctuation that usually follows a link in a sentence.
// Owns: only the finding. Pure functions, any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mailgate::spamscore {

// Appends the URLs found in `text` to *out, skipping ones already there, until *out holds
// `max` URLs. Returns false when it stopped because of `max`.
bool extract_urls(std::string_view text, std::size_t max, std::vector<std::string>* out);

// Adds one URL (from an href) the same way: trimmed, only http(s)/www ones, no duplicates.
bool add_url(std::string_view url, std::size_t max, std::vector<std::string>* out);

}  // namespace mailgate::spamscore
