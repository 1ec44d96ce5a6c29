// authres_test.cc — unit tests of the built-in `authres` plugin (plugins/authres/) with the
// SDK's fake host, plus the field syntax of authres_format.hpp: the authserv-id of existing
// fields (comments, quoting, version, case), quoting of reasons and property values, folding.
#include <gtest/gtest.h>

#include <mailgate/fake_host.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "authres_format.hpp"

#ifndef MAILGATE_AUTHRES_PLUGIN
#error "MAILGATE_AUTHRES_PLUGIN (the built authres.so) comes from plugins/authres/CMakeLists.txt"
#endif

namespace {

using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::LoadedPlugin;
namespace ar = mailgate::authres;

LoadedPlugin load(FakeHost& host, std::string_view settings = "{}") {
  return LoadedPlugin::open(host, MAILGATE_AUTHRES_PLUGIN, settings);
}

std::vector<std::string> fields(const FakeSession& s, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& f : s.headers())
    if (f.name == name) out.push_back(f.value);
  return out;
}

TEST(AuthResFormat, AuthservIdOfExistingFields) {
  EXPECT_EQ(ar::authserv_id_of("mx.example.net; spf=pass smtp.mailfrom=a@b"), "mx.example.net");
  EXPECT_EQ(ar::authserv_id_of("  (comment (nested)) MX.Example.NET 1; none"), "MX.Example.NET");
  EXPECT_EQ(ar::authserv_id_of("\r\n\tmx.example.net;\r\n\tdkim=pass"), "mx.example.net");
  EXPECT_EQ(ar::authserv_id_of("\"mx.exa\\\"mple\"; none"), "mx.exa\"mple");
  EXPECT_EQ(ar::authserv_id_of("mx.example.net(comment); none"), "mx.example.net");
  EXPECT_EQ(ar::authserv_id_of(""), "");
}

TEST(AuthResFormat, FieldIsFoldedOneResultPerLineWithQuotingWhereNeeded) {
  EXPECT_EQ(ar::format_field("mx.example.net", {}), "mx.example.net; none");
  const std::vector<ar::Result> results = {
      {"spf", "pass", "", "smtp.mailfrom=alice@example.org"},
      {"dkim", "fail", "body hash \"mismatch\"",
       "header.d=example.org header.s=sel1 header.b=ab/c+d=="},
      {"dmarc", "pass", "", "header.from=example.org"}};
  EXPECT_EQ(ar::format_field("mx.example.net", results),
            "mx.example.net;\r\n"
            "\tspf=pass smtp.mailfrom=alice@example.org;\r\n"
            "\tdkim=fail reason=\"body hash \\\"mismatch\\\"\" header.d=example.org "
            "header.s=sel1 header.b=\"ab/c+d==\";\r\n"
            "\tdmarc=pass header.from=example.org");
  EXPECT_TRUE(ar::is_property_value("alice@example.org"));
  EXPECT_TRUE(ar::is_property_value("@example.org"));
  EXPECT_TRUE(ar::is_property_value("rsa-sha256"));
  EXPECT_FALSE(ar::is_property_value("a/b"));
  EXPECT_FALSE(ar::is_property_value(""));
  EXPECT_FALSE(ar::is_authserv_id("mx example"));
  EXPECT_FALSE(ar::is_authserv_id("mx;example"));
}

TEST(AuthResPlugin, WritesTheRecordedResultsAtTheTop) {
  FakeHost host;
  LoadedPlugin plugin = load(host, R"({"authserv_id": "mx.example.net"})");
  FakeSession s(host);
  s.add_raw_header("From: alice@example.org\r\n").add_raw_header("Subject: hi\r\n");
  s.add_auth_result("spf", "pass", "", "smtp.mailfrom=alice@example.org");
  s.add_auth_result("dkim", "pass", "", "header.d=example.org header.s=sel1");
  s.add_auth_result("dmarc", "pass", "", "header.from=example.org");
  ASSERT_EQ(run_eom(plugin, s), MG_CONTINUE);
  ASSERT_FALSE(s.headers().empty());
  EXPECT_EQ(s.headers()[0].name, "Authentication-Results");
  EXPECT_EQ(s.headers()[0].value,
            "mx.example.net;\r\n\tspf=pass smtp.mailfrom=alice@example.org;\r\n"
            "\tdkim=pass header.d=example.org header.s=sel1;\r\n"
            "\tdmarc=pass header.from=example.org");
  EXPECT_TRUE(host.violations().empty());
}

TEST(AuthResPlugin, NoResultsSaysNoneAndTheHostNameIsTheDefaultId) {
  FakeHost host;
  LoadedPlugin plugin = load(host);
  FakeSession s(host);
  s.set(MG_ITEM_HOSTNAME, "gw.example.net");
  s.add_raw_header("Subject: hi\r\n");
  ASSERT_EQ(run_eom(plugin, s), MG_CONTINUE);
  EXPECT_EQ(fields(s, "Authentication-Results"), std::vector<std::string>{"gw.example.net; none"});
}

TEST(AuthResPlugin, RemovesForgedFieldsClaimingOurIdOnly) {
  FakeHost host;
  LoadedPlugin plugin = load(host, R"({"authserv_id": "mx.example.net"})");
  FakeSession s(host);
  s.add_raw_header("Authentication-Results: mx.example.net; dkim=pass header.d=bank.example\r\n");
  s.add_raw_header("From: alice@example.org\r\n");
  s.add_raw_header("authentication-results: (forged)\r\n MX.EXAMPLE.NET 1; spf=pass\r\n");
  s.add_raw_header("Authentication-Results: upstream.example.org; spf=fail\r\n");
  s.add_raw_header("Authentication-Results: mx.example.net.evil.example; spf=pass\r\n");
  s.add_auth_result("spf", "fail", "", "smtp.mailfrom=alice@example.org");
  ASSERT_EQ(run_eom(plugin, s), MG_CONTINUE);
  std::vector<std::string> values;
  for (const auto& f : s.headers())
    if (f.name == "Authentication-Results" || f.name == "authentication-results")
      values.push_back(f.value);
  ASSERT_EQ(values.size(), 3u);
  EXPECT_EQ(values[0], "mx.example.net;\r\n\tspf=fail smtp.mailfrom=alice@example.org");
  EXPECT_EQ(values[1], "upstream.example.org; spf=fail");
  EXPECT_EQ(values[2], "mx.example.net.evil.example; spf=pass");
  EXPECT_TRUE(s.logged("removed 2 Authentication-Results field(s) claiming mx.example.net"));
  EXPECT_TRUE(host.violations().empty());
}

TEST(AuthResPlugin, RemoveAllTrustsNoUpstream) {
  FakeHost host;
  LoadedPlugin plugin = load(host, R"({"authserv_id": "mx.example.net", "remove": "all"})");
  FakeSession s(host);
  s.add_raw_header("Authentication-Results: upstream.example.org; spf=pass\r\n");
  s.add_raw_header("Subject: hi\r\n");
  ASSERT_EQ(run_eom(plugin, s), MG_CONTINUE);
  EXPECT_EQ(fields(s, "Authentication-Results"), std::vector<std::string>{"mx.example.net; none"});
}

TEST(AuthResPlugin, AuthenticatedSessionsGetAnAuthResultFirst) {
  FakeHost host;
  LoadedPlugin plugin = load(host, R"({"authserv_id": "mx.example.net"})");
  FakeSession s(host);
  s.set(MG_ITEM_AUTH_USER, "alice");
  s.add_auth_result("spf", "none", "", "smtp.mailfrom=alice@example.org");
  ASSERT_EQ(run_eom(plugin, s), MG_CONTINUE);
  EXPECT_EQ(fields(s, "Authentication-Results"),
            std::vector<std::string>{"mx.example.net;\r\n\tauth=pass smtp.auth=alice;\r\n"
                                     "\tspf=none smtp.mailfrom=alice@example.org"});
}

TEST(AuthResPlugin, BadSettingsNameTheKey) {
  FakeHost host;
  const auto error = [&host](std::string_view settings) {
    try {
      load(host, settings);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error(R"({"authserv_id": "mx example"})").find("authserv_id"), std::string::npos);
  EXPECT_NE(error(R"({"remove": "some"})").find("remove"), std::string::npos);
  EXPECT_NE(error(R"({"colour": 1})").find("colour"), std::string::npos);
}

}  // namespace
