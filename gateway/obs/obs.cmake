# obs/obs.cmake — build wiring of the observability module, included from
# gateway/CMakeLists.txt after mailgate_core is defined (its .cc files are already in it).
# Owns: embedding gateway/obs/www/* (the status page) into the library, and the version string
# the metrics report. Touches no other module's settings.
file(GLOB MAILGATE_OBS_WWW CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/www/*)
set(MAILGATE_OBS_ASSETS_CC ${CMAKE_CURRENT_BINARY_DIR}/obs/assets_www.cc)
add_custom_command(
  OUTPUT ${MAILGATE_OBS_ASSETS_CC}
  COMMAND ${CMAKE_COMMAND} -DWWW_DIR=${CMAKE_CURRENT_LIST_DIR}/www
    -DOUTPUT=${MAILGATE_OBS_ASSETS_CC} -P ${CMAKE_CURRENT_LIST_DIR}/embed_assets.cmake
  DEPENDS ${MAILGATE_OBS_WWW} ${CMAKE_CURRENT_LIST_DIR}/embed_assets.cmake
  COMMENT "Embedding the status page (gateway/obs/www)"
  VERBATIM)
target_sources(mailgate_core PRIVATE ${MAILGATE_OBS_ASSETS_CC})
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/prometheus.cc
  ${CMAKE_CURRENT_LIST_DIR}/status_json.cc
  PROPERTIES COMPILE_DEFINITIONS MAILGATE_VERSION="${PROJECT_VERSION}")
