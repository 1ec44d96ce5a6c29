// plugins/milter/settings.cc — see settings.h.
#include "settings.h"

#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>

#include "common/settings.hpp"

namespace mailgate::milter_client {
namespace {

std::chrono::milliseconds milliseconds(const nlohmann::json& value, const std::string& where,
                                       const char* key) {
  if (!value.is_number_integer() || value.get<long long>() < 1 || value.get<long long>() > 600000)
    throw std::invalid_argument(where + ": \"" + key + "\" must be an integer from 1 to 600000");
  return std::chrono::milliseconds(value.get<long long>());
}

}  // namespace

const char* fail_mode_name(FailMode mode) {
  switch (mode) {
    case FailMode::kTempFail:
      return "tempfail";
    case FailMode::kContinue:
      return "continue";
    case FailMode::kReject:
      return "reject";
  }
  return "?";
}

std::vector<MilterConfig> parse_settings(std::string_view json) {
  const nlohmann::json settings = plugins::parse_settings_object(json);
  for (const auto& [key, value] : settings.items())
    if (key != "milters") throw std::invalid_argument("unknown setting \"" + key + "\"");
  if (!settings.contains("milters") || !settings["milters"].is_array() ||
      settings["milters"].empty())
    throw std::invalid_argument("setting \"milters\" must be a non-empty array of milters");
  std::vector<MilterConfig> out;
  std::set<std::string> names;
  std::size_t i = 0;
  for (const nlohmann::json& m : settings["milters"]) {
    const std::string at = "milters[" + std::to_string(i++) + "]";
    if (!m.is_object()) throw std::invalid_argument(at + " must be an object");
    MilterConfig config;
    std::string where = at;
    if (m.contains("name")) {
      if (!m["name"].is_string() || m["name"].get<std::string>().empty())
        throw std::invalid_argument(at + ": \"name\" must be a non-empty string");
      config.name = m["name"].get<std::string>();
      where = at + " (\"" + config.name + "\")";
    }
    for (const auto& [key, value] : m.items())
      if (key != "name" && key != "socket" && key != "timeout_ms" && key != "connect_timeout_ms" &&
          key != "fail_mode")
        throw std::invalid_argument(where + ": unknown key \"" + key + "\"");
    if (!m.contains("socket") || !m["socket"].is_string())
      throw std::invalid_argument(where +
                                  ": \"socket\" (inet:PORT@HOST or unix:/path) is required");
    if (std::string e = parse_endpoint(m["socket"].get<std::string>(), &config.endpoint);
        !e.empty())
      throw std::invalid_argument(where + ": " + e);
    if (config.name.empty()) config.name = config.endpoint.text;
    if (!names.insert(config.name).second)
      throw std::invalid_argument(where + ": a milter named \"" + config.name +
                                  "\" is listed twice");
    if (m.contains("timeout_ms"))
      config.timeout = milliseconds(m["timeout_ms"], where, "timeout_ms");
    if (m.contains("connect_timeout_ms"))
      config.connect_timeout = milliseconds(m["connect_timeout_ms"], where, "connect_timeout_ms");
    if (m.contains("fail_mode")) {
      const nlohmann::json& f = m["fail_mode"];
      const std::string mode = f.is_string() ? f.get<std::string>() : "";
      if (mode == "tempfail")
        config.fail_mode = FailMode::kTempFail;
      else if (mode == "continue" || mode == "accept" || mode == "open")
        config.fail_mode = FailMode::kContinue;
      else if (mode == "reject")
        config.fail_mode = FailMode::kReject;
      else
        throw std::invalid_argument(where +
                                    ": \"fail_mode\" must be \"tempfail\", \"continue\" or "
                                    "\"reject\"");
    }
    out.push_back(std::move(config));
  }
  return out;
}

}  // namespace mailgate::milter_client
