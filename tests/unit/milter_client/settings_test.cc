// Tests of plugins/milter/settings.h: the settings JSON and the errors that name the key.
#include "milter/settings.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace mailgate::milter_client {
namespace {

std::string error_of(const std::string& json) {
  try {
    parse_settings(json);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(MilterSettings, ParsesMilters) {
  const auto milters = parse_settings(
      R"({"milters":[{"name":"opendkim","socket":"inet:8891@127.0.0.1","timeout_ms":5000,
          "connect_timeout_ms":250,"fail_mode":"continue"},
         {"socket":"unix:/run/clamav/clamav-milter.ctl"},
         {"name":"v6","socket":"inet6:9000@[::1]","fail_mode":"reject"}]})");
  ASSERT_EQ(milters.size(), 3u);
  EXPECT_EQ(milters[0].name, "opendkim");
  EXPECT_EQ(milters[0].endpoint.kind, Endpoint::Kind::kInet);
  EXPECT_EQ(milters[0].endpoint.port, 8891);
  EXPECT_EQ(milters[0].endpoint.host, "127.0.0.1");
  EXPECT_EQ(milters[0].timeout.count(), 5000);
  EXPECT_EQ(milters[0].connect_timeout.count(), 250);
  EXPECT_EQ(milters[0].fail_mode, FailMode::kContinue);
  EXPECT_EQ(milters[1].name, "unix:/run/clamav/clamav-milter.ctl");
  EXPECT_EQ(milters[1].endpoint.path, "/run/clamav/clamav-milter.ctl");
  EXPECT_EQ(milters[1].fail_mode, FailMode::kTempFail);
  EXPECT_EQ(milters[1].timeout.count(), 3000);
  EXPECT_EQ(milters[2].endpoint.kind, Endpoint::Kind::kInet6);
  EXPECT_EQ(milters[2].endpoint.host, "::1");
  EXPECT_EQ(milters[2].fail_mode, FailMode::kReject);
}

TEST(MilterSettings, ErrorsNameTheKey) {
  EXPECT_EQ(error_of("{}"), "setting \"milters\" must be a non-empty array of milters");
  EXPECT_EQ(error_of(R"({"milters":[], "x":1})"), "unknown setting \"x\"");
  EXPECT_EQ(error_of(R"({"milters":[{"name":"a"}]})"),
            "milters[0] (\"a\"): \"socket\" (inet:PORT@HOST or unix:/path) is required");
  EXPECT_EQ(error_of(R"({"milters":[{"socket":"inet:8891"}]})"),
            "milters[0]: socket \"inet:8891\" must be inet:PORT@HOST");
  EXPECT_EQ(error_of(R"({"milters":[{"socket":"tcp:1@h"}]})"),
            "milters[0]: socket \"tcp:1@h\": unknown type \"tcp\" (inet, inet6, unix)");
  EXPECT_EQ(error_of(R"({"milters":[{"socket":"inet:70000@h"}]})"),
            "milters[0]: socket \"inet:70000@h\": port over 65535");
  EXPECT_EQ(error_of(R"({"milters":[{"socket":"unix:relative"}]})"),
            "milters[0]: socket \"unix:relative\": the unix socket path must be absolute");
  EXPECT_EQ(error_of(R"({"milters":[{"socket":"inet:1@h","fail_mode":"maybe"}]})"),
            "milters[0]: \"fail_mode\" must be \"tempfail\", \"continue\" or \"reject\"");
  EXPECT_EQ(error_of(R"({"milters":[{"socket":"inet:1@h","timeout_ms":0}]})"),
            "milters[0]: \"timeout_ms\" must be an integer from 1 to 600000");
  EXPECT_EQ(error_of(R"({"milters":[{"socket":"inet:1@h","tiemout_ms":5}]})"),
            "milters[0]: unknown key \"tiemout_ms\"");
  EXPECT_EQ(error_of(R"({"milters":[{"name":"a","socket":"inet:1@h"},
                                    {"name":"a","socket":"inet:2@h"}]})"),
            "milters[1] (\"a\"): a milter named \"a\" is listed twice");
}

}  // namespace
}  // namespace mailgate::milter_client
