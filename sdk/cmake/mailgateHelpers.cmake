# mailgateHelpers.cmake — mailgate_add_plugin(), included by mailgateConfig.cmake and by the
# in-tree build (sdk/CMakeLists.txt), so built-in and third-party plugins build the same way.
#
#   mailgate_add_plugin(<name> [SOURCES] <source>...)
#
# Creates a MODULE library <name>.so (no "lib" prefix: the policy database names the file)
# linked to mailgate::sdk, with:
#   - hidden visibility for everything but MG_PLUGIN_EXPORT (the entry point), so two
#     plugins' internals never collide inside the gateway;
#   - -Wl,--no-undefined: a plugin references nothing from the host binary directly (every
#     host service comes through the mg_host table), so an undefined symbol is a bug or a
#     missing library, and it fails at link time rather than at dlopen() time in production;
#   - a linker version script exporting mailgate_plugin_entry alone: C++ template
#     instantiations from the standard headers (default visibility even under
#     -fvisibility=hidden) stay private, and no STB_GNU_UNIQUE symbol keeps dlclose() from
#     unloading the plugin when the gateway replaces its chain;
#   - -Wl,--exclude-libs,ALL: symbols of static libraries linked in stay private too;
#   - C++17 at least for C++ sources (plugin.hpp needs it).
# Add libraries, definitions and options with the usual target_* commands afterwards.
include_guard(GLOBAL)

function(mailgate_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 _mg "" "" "SOURCES")
  set(_sources ${_mg_SOURCES} ${_mg_UNPARSED_ARGUMENTS})
  if(NOT _sources)
    message(FATAL_ERROR "mailgate_add_plugin(${name}): no source files given")
  endif()
  if(NOT TARGET mailgate::sdk)
    message(FATAL_ERROR "mailgate_add_plugin(${name}): mailgate::sdk is not defined; "
      "call find_package(mailgate) first")
  endif()

  add_library(${name} MODULE ${_sources})
  target_link_libraries(${name} PRIVATE mailgate::sdk)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  get_property(_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(CXX IN_LIST _languages)
    target_compile_features(${name} PRIVATE cxx_std_17)
  endif()
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux" OR CMAKE_SYSTEM_NAME MATCHES "BSD")
    # One script per build tree; configure_file() rewrites it only when its text changes.
    set(_map "${CMAKE_BINARY_DIR}/mailgate_plugin_exports.map")
    file(WRITE "${_map}.in" "{\n  global: mailgate_plugin_entry;\n  local: *;\n};\n")
    configure_file("${_map}.in" "${_map}" COPYONLY)
    target_link_options(${name} PRIVATE
      LINKER:--no-undefined LINKER:--exclude-libs,ALL "LINKER:--version-script=${_map}")
    set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS "${_map}")
  endif()
endfunction()
