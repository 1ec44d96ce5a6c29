# policy/policy.cmake — build wiring of the policy module, included from gateway/CMakeLists.txt
# after mailgate_core is defined (the module's .cc files are already in it by the glob).
# Owns: embedding db/migrations/*.sql into the library, and the module's link dependencies
# (SQLite, nlohmann-json, RE2). Touches no other module's settings.

find_package(nlohmann_json 3.10 REQUIRED GLOBAL)

# Each db/migrations/NNNN_name.sql becomes a raw string literal in migrations_sql.cc, generated
# at build time; adding a migration file re-runs the configure step (CONFIGURE_DEPENDS).
file(GLOB MAILGATE_POLICY_MIGRATIONS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/db/migrations/*.sql)
set(MAILGATE_POLICY_MIGRATIONS_CC ${CMAKE_CURRENT_BINARY_DIR}/policy/migrations_sql.cc)
add_custom_command(
  OUTPUT ${MAILGATE_POLICY_MIGRATIONS_CC}
  COMMAND ${CMAKE_COMMAND}
    -DMIGRATIONS_DIR=${PROJECT_SOURCE_DIR}/db/migrations
    -DOUTPUT=${MAILGATE_POLICY_MIGRATIONS_CC}
    -P ${CMAKE_CURRENT_LIST_DIR}/embed_migrations.cmake
  DEPENDS ${MAILGATE_POLICY_MIGRATIONS} ${CMAKE_CURRENT_LIST_DIR}/embed_migrations.cmake
  COMMENT "Embedding policy database migrations"
  VERBATIM)
target_sources(mailgate_core PRIVATE ${MAILGATE_POLICY_MIGRATIONS_CC})
target_link_libraries(mailgate_core PUBLIC SQLite::SQLite3 nlohmann_json::nlohmann_json)
# spam_rules.cc compiles every rule's pattern with RE2, as the spamscore plugin does.
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)
target_link_libraries(mailgate_core PUBLIC PkgConfig::RE2)
