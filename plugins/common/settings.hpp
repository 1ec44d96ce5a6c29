// plugins/common/settings.hpp — reading a built-in plugin's settings JSON the same strict way
// in every plugin: a JSON object, typed values, errors that name the key (they become
// create()'s message, so `mailgatectl policy plugin add` and the gateway's log show them).
// Header-only; built into each plugin .so (plugins share no library with each other).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mailgate::plugins {

// Parses `text` as a JSON object; throws std::invalid_argument otherwise.
inline nlohmann::json parse_settings_object(std::string_view text) {
  nlohmann::json settings;
  try {
    settings = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("settings are not valid JSON: ") + e.what());
  }
  if (!settings.is_object()) throw std::invalid_argument("settings must be a JSON object");
  return settings;
}

// The value of setting `key` as a boolean; throws std::invalid_argument naming the key.
inline bool setting_bool(const nlohmann::json& value, const std::string& key) {
  if (!value.is_boolean())
    throw std::invalid_argument("setting \"" + key + "\" must be true or false");
  return value.get<bool>();
}

}  // namespace mailgate::plugins
