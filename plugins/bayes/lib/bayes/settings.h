// plugins/bayes/lib/bayes/settings.h — the bayes plugin's settings: their names, defaults and
// checks. Owns: parse_settings() (JSON object → Settings; an unknown key or a bad value throws
// std::invalid_argument naming the key, which becomes create()'s error).
// Shared by the plugin and mailgatectl (which reads the plugin row for its defaults).
// Threading: pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bayes/classifier.h"

namespace mailgate::bayes {

struct Settings {
  enum class Backend { kSqlite, kStore };
  Backend backend = Backend::kSqlite;
  std::string db = "/var/lib/mailgate/bayes.db";  // the SQLite file (backend "sqlite")
  int busy_timeout_ms = 2000;                     // SQLite lock wait
  std::string key_prefix = "bayes";               // counter keys (backend "store")
  Params params;                                  // cut-offs and classifier constants
  double spam_score = 3.0;                   // BAYES_SPAM at certainty; half of it at spam_cutoff
  double ham_score = -1.5;                   // BAYES_HAM at certainty; half of it at ham_cutoff
  double unsure_score = 0.0;                 // BAYES_UNSURE
  std::int64_t min_spam = 200;               // learned spam needed before classifying
  std::int64_t min_ham = 200;                // learned ham needed before classifying
  std::size_t max_body_bytes = 1024 * 1024;  // raw body read
  std::size_t max_text_bytes = 256 * 1024;   // decoded text tokenized
  int detail_clues = 3;                      // strongest tokens named in the detail
  bool autolearn = false;
  double autolearn_spam_probability = 0.999;  // learn as spam at or above
  double autolearn_ham_probability = 0.001;   // learn as ham at or below
  double autolearn_spam_min_score = 0.0;      // ...when the other plugins' score is at least
  double autolearn_ham_max_score = 0.0;       // ...when the other plugins' score is at most
};

Settings parse_settings(std::string_view json);

}  // namespace mailgate::bayes
