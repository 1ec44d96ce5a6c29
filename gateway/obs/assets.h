// obs/assets.h — the status page's files (gateway/obs/www/), compiled into the binary by
// obs.cmake (embed_assets.cmake), so the page needs no file on disk and no network.
#pragma once

#include <string_view>

namespace mailgate::obs {

struct Asset {
  std::string_view path;          // "/status.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view body;
};

// The asset served at `path` ("/" is index.html), or null.
const Asset* find_asset(std::string_view path);

}  // namespace mailgate::obs
