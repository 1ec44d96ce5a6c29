# policy/embed_migrations.cmake — run with `cmake -P` at build time by policy.cmake.
# Reads MIGRATIONS_DIR/NNNN_name.sql and writes OUTPUT, a C++ file defining
# mailgate::policy::detail::kEmbeddedMigrations (see migrations.cc). Refuses gaps or duplicates
# in the numbering, so a misnamed file fails the build rather than a database.

if(NOT MIGRATIONS_DIR OR NOT OUTPUT)
  message(FATAL_ERROR "embed_migrations.cmake: set MIGRATIONS_DIR and OUTPUT")
endif()
file(GLOB files RELATIVE ${MIGRATIONS_DIR} ${MIGRATIONS_DIR}/*.sql)
list(SORT files)
if(NOT files)
  message(FATAL_ERROR "embed_migrations.cmake: no migrations in ${MIGRATIONS_DIR}")
endif()

set(delimiter "mgsql")
set(body "")
set(expected 1)
foreach(f ${files})
  if(NOT f MATCHES "^([0-9][0-9][0-9][0-9])_[a-z0-9_]+\\.sql$")
    message(FATAL_ERROR "embed_migrations.cmake: migration '${f}' is not named NNNN_name.sql")
  endif()
  math(EXPR version "${CMAKE_MATCH_1}")  # strips the leading zeros
  if(NOT version EQUAL expected)
    message(FATAL_ERROR "embed_migrations.cmake: '${f}' should be number ${expected}")
  endif()
  math(EXPR expected "${expected} + 1")
  file(READ ${MIGRATIONS_DIR}/${f} sql)
  string(FIND "${sql}" ")${delimiter}\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "embed_migrations.cmake: '${f}' contains the raw-string delimiter")
  endif()
  string(APPEND body "    {${version}, \"${f}\", R\"${delimiter}(${sql})${delimiter}\"},\n")
endforeach()

set(content "// Generated from db/migrations/*.sql by gateway/policy/embed_migrations.cmake. Do not edit.
#include \"policy/migrations.h\"

namespace mailgate::policy::detail {

extern const Migration kEmbeddedMigrations[] = {
${body}};
extern const size_t kEmbeddedMigrationCount = sizeof(kEmbeddedMigrations) / sizeof(kEmbeddedMigrations[0]);

}  // namespace mailgate::policy::detail
")
# Rewrite only on change, so an unrelated re-run does not rebuild the library.
if(EXISTS ${OUTPUT})
  file(READ ${OUTPUT} old)
  if(old STREQUAL content)
    return()
  endif()
endif()
file(WRITE ${OUTPUT} "${content}")
