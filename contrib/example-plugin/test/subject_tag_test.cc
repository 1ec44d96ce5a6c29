// subject_tag_test.cc — unit tests of the example plugin with the SDK's fake host: no gateway,
// no network. Most tests call the plugin's entry point directly (its source is linked into this
// test); the last ones load the built .so files with dlopen(), exactly as the gateway does.
#include <gtest/gtest.h>

#include <mailgate/fake_host.hpp>
#include <stdexcept>
#include <string>

using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::LoadedPlugin;

namespace {

constexpr const char* kSettings =
    R"({"score": 2.5, "reject_prefix": "noreply-", "subject_tag": "[external]"})";

TEST(SubjectTag, RejectsRecipientsWithTheConfiguredPrefix) {
  FakeHost host;
  LoadedPlugin plugin(host, &mailgate_plugin_entry, kSettings);
  FakeSession s(host);

  ASSERT_EQ(run_mail(plugin, s, "sender@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(plugin, s, "NoReply-billing@example.com"), MG_REJECT);
  ASSERT_TRUE(s.reply());
  EXPECT_EQ(s.reply()->code, 550);
  EXPECT_EQ(s.reply()->enhanced, "5.7.1");
  EXPECT_TRUE(s.logged("refusing <NoReply-billing@example.com>"));

  EXPECT_EQ(run_rcpt(plugin, s, "alice@noreply-domain.example"), MG_CONTINUE);  // domain: fine
  EXPECT_EQ(s.recipients(), std::vector<std::string>{"alice@noreply-domain.example"});
}

TEST(SubjectTag, TagsTheMessageAtEndOfData) {
  FakeHost host;
  LoadedPlugin plugin(host, &mailgate_plugin_entry, kSettings);
  FakeSession s(host);

  ASSERT_EQ(run_mail(plugin, s, "sender@example.org"), MG_CONTINUE);
  ASSERT_EQ(run_rcpt(plugin, s, "bob@example.com"), MG_CONTINUE);
  EXPECT_EQ(run_message(plugin, s, "From: sender@example.org\nSubject: Lunch?\n\nAt noon.\n"),
            MG_CONTINUE);

  EXPECT_EQ(s.header("X-Example-Plugin"), "seen");
  EXPECT_EQ(s.header("Subject"), "[external] Lunch?");
  ASSERT_TRUE(s.has_symbol("EXAMPLE_SEEN"));
  EXPECT_DOUBLE_EQ(s.symbol("EXAMPLE_SEEN")->score, 2.5);
  EXPECT_DOUBLE_EQ(s.score(), 2.5);
  EXPECT_TRUE(host.violations().empty());
}

TEST(SubjectTag, AddsASubjectWhenThereIsNoneAndNeverTagsTwice) {
  FakeHost host;
  LoadedPlugin plugin(host, &mailgate_plugin_entry, kSettings);
  FakeSession s(host);
  run_mail(plugin, s, "sender@example.org");
  EXPECT_EQ(run_message(plugin, s, "From: sender@example.org\n\nno subject\n"), MG_CONTINUE);
  EXPECT_EQ(s.header("Subject"), "[external]");

  run_reset(plugin, s);
  run_mail(plugin, s, "sender@example.org");
  EXPECT_EQ(run_message(plugin, s, "Subject: [EXTERNAL] again\n\nx\n"), MG_CONTINUE);
  EXPECT_EQ(s.header("Subject"), "[EXTERNAL] again");
  EXPECT_TRUE(s.header_edits().size() == 1);  // only X-Example-Plugin
}

TEST(SubjectTag, DefaultsWithEmptySettings) {
  FakeHost host;
  LoadedPlugin plugin(host, &mailgate_plugin_entry);  // "{}"
  EXPECT_EQ(plugin.name(), "subject_tag");
  EXPECT_EQ(plugin.descriptor().flags, MG_PLUGIN_NONBLOCKING);
  EXPECT_EQ(plugin.descriptor().on_connect, nullptr);  // stages it does not override are not called
  FakeSession s(host);
  EXPECT_EQ(run_rcpt(plugin, s, "noreply-x@example.com"), MG_CONTINUE);
  EXPECT_EQ(run_message(plugin, s, "Subject: hi\n\n"), MG_CONTINUE);
  EXPECT_EQ(s.header("Subject"), "hi");
  EXPECT_DOUBLE_EQ(s.symbol("EXAMPLE_SEEN")->score, 0.1);
}

TEST(SubjectTag, RefusesBadSettingsWithAClearMessage) {
  FakeHost host;
  const auto error_for = [&](const char* settings) -> std::string {
    try {
      LoadedPlugin plugin(host, &mailgate_plugin_entry, settings);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "(loaded)";
  };
  EXPECT_EQ(error_for(R"({"score": "high"})"),
            "plugin subject_tag: create() failed: \"score\" must be a number");
  EXPECT_EQ(error_for(R"({"scroe": 1})"),
            "plugin subject_tag: create() failed: unknown setting \"scroe\"");
  EXPECT_EQ(error_for("[1]"),
            "plugin subject_tag: create() failed: settings must be a JSON object");
  EXPECT_NE(error_for("{oops").find("parse error"), std::string::npos);
}

TEST(SubjectTag, RefusesAHostOfAnotherMajorVersion) {
  FakeHost host;
  EXPECT_EQ(mailgate_plugin_entry((MG_ABI_VERSION_MAJOR + 1u) << 16, host.table()), nullptr);
  EXPECT_TRUE(host.logged("cannot run on a host with ABI 2.0"));
  EXPECT_NE(mailgate_plugin_entry(MG_ABI_VERSION, host.table()), nullptr);
}

// The built .so, loaded as the gateway loads it.
TEST(SubjectTag, BuiltSharedObjectLoadsAndActs) {
  FakeHost host;
  LoadedPlugin plugin = LoadedPlugin::open(host, SUBJECT_TAG_SO, kSettings);
  FakeSession s(host);
  EXPECT_EQ(run_rcpt(plugin, s, "noreply-x@example.com"), MG_REJECT);
  EXPECT_EQ(run_message(plugin, s, "Subject: hi\n\n"), MG_CONTINUE);
  EXPECT_EQ(s.header("Subject"), "[external] hi");
}

TEST(SubjectTag, PureCHelloLoadsToo) {
  FakeHost host;
  LoadedPlugin plugin = LoadedPlugin::open(host, HELLO_SO);
  FakeSession s(host);
  s.set(MG_ITEM_CLIENT_ADDR, "192.0.2.7");
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_TRUE(s.logged("hello, 192.0.2.7"));
  EXPECT_EQ(run_message(plugin, s, "Subject: hi\n\n"), MG_CONTINUE);
  EXPECT_EQ(s.header("X-Hello"), "192.0.2.7");
}

}  // namespace
