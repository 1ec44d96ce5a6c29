# obs/embed_assets.cmake — run with `cmake -P` at build time by obs.cmake.
# Reads every file in WWW_DIR and writes OUTPUT, a C++ file defining the table behind
# mailgate::obs::find_asset (assets.h). Each file becomes a raw string literal; a file that
# contains the delimiter fails the build.
if(NOT WWW_DIR OR NOT OUTPUT)
  message(FATAL_ERROR "embed_assets.cmake: set WWW_DIR and OUTPUT")
endif()
file(GLOB files RELATIVE ${WWW_DIR} ${WWW_DIR}/*)
list(SORT files)
set(delimiter "mgwww")
set(rows "")
foreach(f ${files})
  if(f MATCHES "\\.html$")
    set(type "text/html; charset=utf-8")
  elseif(f MATCHES "\\.js$")
    set(type "text/javascript; charset=utf-8")
  elseif(f MATCHES "\\.css$")
    set(type "text/css; charset=utf-8")
  else()
    message(FATAL_ERROR "embed_assets.cmake: '${f}': only .html, .js and .css are embedded")
  endif()
  file(READ ${WWW_DIR}/${f} text)
  string(FIND "${text}" ")${delimiter}\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "embed_assets.cmake: '${f}' contains the raw-string delimiter")
  endif()
  string(APPEND rows "    {\"/${f}\", \"${type}\", R\"${delimiter}(${text})${delimiter}\"},\n")
endforeach()
set(content "// Generated from gateway/obs/www/ by gateway/obs/embed_assets.cmake. Do not edit.
#include \"obs/assets.h\"

namespace mailgate::obs {
namespace {

const Asset kAssets[] = {
${rows}};

}  // namespace

const Asset* find_asset(std::string_view path) {
  if (path == \"/\") path = \"/index.html\";
  for (const Asset& a : kAssets)
    if (a.path == path) return &a;
  return nullptr;
}

}  // namespace mailgate::obs
")
if(EXISTS ${OUTPUT})
  file(READ ${OUTPUT} old)
  if(old STREQUAL content)
    return()
  endif()
endif()
file(WRITE ${OUTPUT} "${content}")
