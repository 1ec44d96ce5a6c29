// plugins/bayes/lib/bayes/settings.cc — parse_settings(). See settings.h and README.md.
#include "bayes/settings.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/settings.hpp"

namespace mailgate::bayes {
namespace {

using nlohmann::json;

double number(const json& v, const std::string& key, double lo, double hi) {
  if (!v.is_number()) throw std::invalid_argument("setting \"" + key + "\" must be a number");
  const double d = v.get<double>();
  if (!(d >= lo && d <= hi))
    throw std::invalid_argument("setting \"" + key + "\" must be between " + std::to_string(lo) +
                                " and " + std::to_string(hi));
  return d;
}

std::int64_t integer(const json& v, const std::string& key, std::int64_t lo, std::int64_t hi) {
  if (!v.is_number_integer())
    throw std::invalid_argument("setting \"" + key + "\" must be an integer");
  const std::int64_t n = v.get<std::int64_t>();
  if (n < lo || n > hi)
    throw std::invalid_argument("setting \"" + key + "\" must be between " + std::to_string(lo) +
                                " and " + std::to_string(hi));
  return n;
}

std::string text(const json& v, const std::string& key) {
  if (!v.is_string() || v.get<std::string>().empty())
    throw std::invalid_argument("setting \"" + key + "\" must be a non-empty string");
  return v.get<std::string>();
}

}  // namespace

Settings parse_settings(std::string_view text_json) {
  const json settings = plugins::parse_settings_object(text_json);
  Settings s;
  for (const auto& [key, v] : settings.items()) {
    if (key == "backend") {
      const std::string b = text(v, key);
      if (b == "sqlite") {
        s.backend = Settings::Backend::kSqlite;
      } else if (b == "store") {
        s.backend = Settings::Backend::kStore;
      } else {
        throw std::invalid_argument("setting \"backend\" must be \"sqlite\" or \"store\"");
      }
    } else if (key == "db") {
      s.db = text(v, key);
    } else if (key == "busy_timeout_ms") {
      s.busy_timeout_ms = static_cast<int>(integer(v, key, 0, 600000));
    } else if (key == "key_prefix") {
      s.key_prefix = text(v, key);
      if (s.key_prefix.size() > 64)
        throw std::invalid_argument("setting \"key_prefix\" must be at most 64 bytes");
    } else if (key == "spam_cutoff") {
      s.params.spam_cutoff = number(v, key, 0.5, 1.0);
    } else if (key == "ham_cutoff") {
      s.params.ham_cutoff = number(v, key, 0.0, 0.5);
    } else if (key == "spam_score") {
      s.spam_score = number(v, key, -1000, 1000);
    } else if (key == "ham_score") {
      s.ham_score = number(v, key, -1000, 1000);
    } else if (key == "unsure_score") {
      s.unsure_score = number(v, key, -1000, 1000);
    } else if (key == "min_spam") {
      s.min_spam = integer(v, key, 0, 1LL << 40);
    } else if (key == "min_ham") {
      s.min_ham = integer(v, key, 0, 1LL << 40);
    } else if (key == "max_body_bytes") {
      s.max_body_bytes = static_cast<std::size_t>(integer(v, key, 1024, 64LL << 20));
    } else if (key == "max_text_bytes") {
      s.max_text_bytes = static_cast<std::size_t>(integer(v, key, 1024, 64LL << 20));
    } else if (key == "detail_clues") {
      s.detail_clues = static_cast<int>(integer(v, key, 0, 20));
    } else if (key == "max_discriminators") {
      s.params.max_discriminators = static_cast<std::size_t>(integer(v, key, 1, 10000));
    } else if (key == "min_strength") {
      s.params.min_strength = number(v, key, 0.0, 0.5);
    } else if (key == "autolearn") {
      s.autolearn = plugins::setting_bool(v, key);
    } else if (key == "autolearn_spam_probability") {
      s.autolearn_spam_probability = number(v, key, 0.5, 1.0);
    } else if (key == "autolearn_ham_probability") {
      s.autolearn_ham_probability = number(v, key, 0.0, 0.5);
    } else if (key == "autolearn_spam_min_score") {
      s.autolearn_spam_min_score = number(v, key, -1000, 1000);
    } else if (key == "autolearn_ham_max_score") {
      s.autolearn_ham_max_score = number(v, key, -1000, 1000);
    } else {
      throw std::invalid_argument("unknown setting \"" + key + "\"");
    }
  }
  if (s.params.ham_cutoff >= s.params.spam_cutoff)
    throw std::invalid_argument("setting \"ham_cutoff\" must be below \"spam_cutoff\"");
  if (s.autolearn_spam_probability < s.params.spam_cutoff)
    throw std::invalid_argument(
        "setting \"autolearn_spam_probability\" must not be below \"spam_cutoff\"");
  if (s.autolearn_ham_probability > s.params.ham_cutoff)
    throw std::invalid_argument(
        "setting \"autolearn_ham_probability\" must not be above \"ham_cutoff\"");
  return s;
}

}  // namespace mailgate::bayes
