// fake_host_test.cc — the fake host (sdk/include/mailgate/fake_host.hpp): loading built .so
// plugins with dlopen() (a C++ one through MAILGATE_PLUGIN and the pure-C example), the stage
// rules it enforces, header edits applied in order, run_message(), DNS, counters and data
// slots. The .so paths come from sdk/CMakeLists.txt.
#include <gtest/gtest.h>

#include <mailgate/fake_host.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using mailgate::fake::EnvelopeEdit;
using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::HeaderField;
using mailgate::fake::LoadedPlugin;

// --- a C++ plugin built as a .so -----------------------------------------------------------------

TEST(FakeHost, LoadsACppPluginWithDlopen) {
  FakeHost host;
  LoadedPlugin plugin = LoadedPlugin::open(host, MAILGATE_SDK_SAMPLE_PLUGIN);
  EXPECT_EQ(plugin.name(), "sample");
  EXPECT_STREQ(plugin.descriptor().version, "1.2.3");
  EXPECT_EQ(plugin.descriptor().flags, 0u);
  EXPECT_EQ(plugin.descriptor().on_helo, nullptr);  // not overridden, not registered
  EXPECT_NE(plugin.descriptor().on_rcpt, nullptr);
  EXPECT_TRUE(host.logged("sample created"));
}

TEST(FakeHost, DrivesTheSamplePluginThroughAllStages) {
  FakeHost host;
  host.add_dns("203.0.113.9.in-addr.test", MG_DNS_PTR,
               std::vector<std::string>{"mail.example.org."});
  host.set_policy("routes", "info@example.com", "team@example.net");
  LoadedPlugin plugin = LoadedPlugin::open(host, MAILGATE_SDK_SAMPLE_PLUGIN);
  FakeSession s(host);
  s.set(MG_ITEM_CLIENT_ADDR, "203.0.113.9");

  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  ASSERT_TRUE(s.has_symbol("SAMPLE_PTR"));
  EXPECT_EQ(s.symbol("SAMPLE_PTR")->detail, "mail.example.org.");
  EXPECT_EQ(run_helo(plugin, s, "mail.example.org"), MG_CONTINUE);
  s.set_mail_param("SMTPUTF8");
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
  EXPECT_EQ(*s.item(MG_ITEM_TX_ID), *s.item(MG_ITEM_SESSION_ID) + ".1");
  EXPECT_EQ(run_rcpt(plugin, s, "info@example.com"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(plugin, s, "x@example.com"), MG_CONTINUE);
  EXPECT_EQ(s.recipients(), (std::vector<std::string>{"team@example.net", "x@example.com"}));
  ASSERT_EQ(s.envelope_edits().size(), 1u);
  EXPECT_EQ(s.envelope_edits()[0].kind, EnvelopeEdit::Kind::kRcptRewrite);
  EXPECT_EQ(s.envelope_edits()[0].previous, "info@example.com");
  EXPECT_EQ(run_message(plugin, s, "Subject: t\r\n\r\nbody\r\n"), MG_CONTINUE);
  EXPECT_EQ(s.header("X-Sample"), "2");
  EXPECT_DOUBLE_EQ(s.score(), 0.5);

  // The counter allows three recipients a minute.
  EXPECT_EQ(run_rcpt(plugin, s, "y@example.com"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(plugin, s, "z@example.com"), MG_TEMPFAIL);
  EXPECT_EQ(s.reply()->code, 451);
  host.advance_time_ms(60000);
  EXPECT_EQ(run_rcpt(plugin, s, "z@example.com"), MG_CONTINUE);

  run_reset(plugin, s);
  EXPECT_TRUE(s.recipients().empty());
  run_close(plugin, s);
  EXPECT_TRUE(host.violations().empty()) << host.violations().front();
}

TEST(FakeHost, PluginExceptionIsAFailureAcrossTheSoBoundary) {
  FakeHost host;
  LoadedPlugin plugin = LoadedPlugin::open(host, MAILGATE_SDK_SAMPLE_PLUGIN);
  FakeSession s(host);
  EXPECT_EQ(run_mail(plugin, s, "throw@example.test"), MG_FAILED);
  EXPECT_TRUE(s.logged("exception in on_mail: sample asked to throw"));
}

TEST(FakeHost, ReportsCreateFailureAndDlopenErrors) {
  FakeHost host;
  try {
    LoadedPlugin::open(host, MAILGATE_SDK_SAMPLE_PLUGIN, "bad");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "plugin sample: create() failed: settings are not JSON");
  }
  try {
    LoadedPlugin::open(host, "/nonexistent/plugin.so");
    FAIL();
  } catch (const std::runtime_error& e) {  // dlerror(), verbatim
    EXPECT_STREQ(
        e.what(),
        "/nonexistent/plugin.so: cannot open shared object file: No such file or directory");
  }
}

// Descriptors the gateway's loader refuses are refused here too.
mg_plugin g_odd_descriptor;
const mg_plugin* odd_entry(std::uint32_t, const mg_host*) { return &g_odd_descriptor; }

TEST(FakeHost, RefusesDescriptorsTheGatewayRefuses) {
  FakeHost host;
  const auto error_for = [&](std::uint32_t size, std::uint32_t abi, const char* name) {
    g_odd_descriptor = mg_plugin{};
    g_odd_descriptor.struct_size = size;
    g_odd_descriptor.abi_version = abi;
    g_odd_descriptor.name = name;
    try {
      LoadedPlugin plugin(host, &odd_entry);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("(loaded)");
  };
  EXPECT_EQ(error_for(sizeof(mg_plugin), MG_ABI_VERSION, "odd"), "(loaded)");  // no create: ok
  EXPECT_EQ(error_for(sizeof(mg_plugin), 0x00020001u, "odd"),
            "plugin odd was built for plugin ABI 2.1, the host has 1." +
                std::to_string(MG_ABI_VERSION_MINOR));
  EXPECT_EQ(error_for(64, MG_ABI_VERSION, "odd"),
            "plugin odd: descriptor struct_size 64 is too small");
  EXPECT_EQ(error_for(sizeof(mg_plugin), MG_ABI_VERSION, "Odd One"),
            "plugin Odd One: bad name (want [a-z0-9_-]{1,64})");
}

// --- the pure-C example plugin ------------------------------------------------------------------

TEST(FakeHost, LoadsThePureCExample) {
  FakeHost host;
  LoadedPlugin plugin = LoadedPlugin::open(host, MAILGATE_SDK_HELLO_C_PLUGIN);
  EXPECT_EQ(plugin.name(), "hello");
  EXPECT_EQ(plugin.descriptor().flags, MG_PLUGIN_NONBLOCKING);
  FakeSession s(host);
  s.set(MG_ITEM_CLIENT_ADDR, "192.0.2.55");
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_TRUE(s.logged("hello, 192.0.2.55"));
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_message(plugin, s, "Subject: x\n\nhi\n"), MG_CONTINUE);
  EXPECT_EQ(s.header("X-Hello"), "192.0.2.55");
  EXPECT_TRUE(s.has_symbol("HELLO"));
  EXPECT_TRUE(host.violations().empty());
}

// --- the fake's own rules, driven through the table as a C plugin would --------------------------

// A session whose table calls the tests make directly.
struct Direct {
  FakeHost host;
  FakeSession s{host};
  const mg_host* t = host.table();
  mg_session* h = s.handle();
};

TEST(FakeHost, EnforcesStageRules) {
  Direct d;
  d.s.set_stage(MG_STAGE_RCPT);
  EXPECT_EQ(d.t->header_add(d.h, "X-A", "1"), -1);
  EXPECT_EQ(d.t->header_count(d.h), 0u);  // headers are readable from EOH
  char buf[4];
  EXPECT_EQ(d.t->body_read(d.h, 0, buf, sizeof(buf)), -1);
  EXPECT_EQ(d.t->rcpt_rewrite(d.h, "new@example.com"), 0);
  d.s.set_stage(MG_STAGE_EOM);
  EXPECT_EQ(d.t->rcpt_rewrite(d.h, "new@example.com"), -1);
  EXPECT_EQ(d.t->header_add(d.h, "Bad:Name", "1"), -1);
  EXPECT_EQ(d.t->header_add(d.h, "X-Folded", "a\r\n b"), 0);
  EXPECT_EQ(d.t->header_add(d.h, "X-Bare", "a\nb"), -1);
  EXPECT_EQ(d.t->set_sender(d.h, ""), 0);  // the null sender
  EXPECT_EQ(d.t->set_sender(d.h, "<a@b>"), -1);
  d.t->add_symbol(d.h, "lower_case", 1, nullptr);
  EXPECT_EQ(d.t->symbol_count(d.h), 0u);
  d.s.set_stage(MG_STAGE_RESET);
  EXPECT_EQ(d.t->set_sender(d.h, "a@b"), -1);
  EXPECT_EQ(d.host.violations().size(), 8u);
}

TEST(FakeHost, AppliesHeaderEditsInOrder) {
  Direct d;
  d.s.add_header("Received", "r1").add_header("Subject", "s").add_header("received", "r2");
  d.s.set_stage(MG_STAGE_EOM);
  EXPECT_EQ(d.t->header_insert(d.h, 0, "X-Top", "t"), 0);
  EXPECT_EQ(d.t->header_change(d.h, "RECEIVED", 2, "r2'"), 0);
  EXPECT_EQ(d.t->header_remove(d.h, "Received", 1), 0);
  EXPECT_EQ(d.t->header_insert(d.h, 99, "X-End", "e"), 0);
  EXPECT_EQ(d.t->header_change(d.h, "Subject", 0, "bad"), -1);  // occurrences are 1-based
  const std::vector<HeaderField> got = d.s.headers();
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].name, "X-Top");
  EXPECT_EQ(got[1].name, "Subject");
  EXPECT_EQ(got[2].value, "r2'");
  EXPECT_EQ(got[3].name, "X-End");
  EXPECT_EQ(d.t->header_remove(d.h, "received", 0), 0);
  EXPECT_FALSE(d.s.header("Received"));
  EXPECT_EQ(d.s.received_headers().size(), 3u);

  // Plugins read the header with the edits made so far, as in the gateway.
  ASSERT_EQ(d.t->header_count(d.h), 3u);
  const char* name = nullptr;
  const char* value = nullptr;
  ASSERT_EQ(d.t->header_at(d.h, 0, &name, &value), 0);
  EXPECT_STREQ(name, "X-Top");
  EXPECT_EQ(d.t->header_at(d.h, 3, &name, &value), -1);
  // Changing a field that is not there fails without being a contract violation.
  EXPECT_EQ(d.t->header_change(d.h, "Received", 1, "x"), -1);
  EXPECT_EQ(d.host.violations().size(), 1u);  // only the occurrence 0 above
}

TEST(FakeHost, ClientReplyIsWhatTheGatewayWouldSend) {
  Direct d;
  EXPECT_EQ(d.s.client_reply(MG_REJECT)->code, 550);  // no set_reply(): the default
  EXPECT_EQ(d.s.client_reply(MG_REJECT)->text, "Rejected by policy");
  EXPECT_FALSE(d.s.client_reply(MG_CONTINUE));
  d.t->set_reply(d.h, 554, "5.7.1", "go\r\naway");
  EXPECT_EQ(d.s.reply()->text, "go  away");
  EXPECT_EQ(d.s.client_reply(MG_REJECT)->code, 554);
  const mailgate::fake::Reply wrong_class = *d.s.client_reply(MG_TEMPFAIL);
  EXPECT_EQ(wrong_class.code, 451);
  EXPECT_EQ(wrong_class.enhanced, "4.7.1");
  EXPECT_EQ(wrong_class.text, "go  away");
}

TEST(FakeHost, DnsIsScriptedCountedAndRefusedToNonBlockingPlugins) {
  Direct d;
  d.host.add_dns_status("slow.example", MG_DNS_A, MG_DNS_TEMPFAIL);
  mg_dns_result* r = d.t->dns_query(d.h, "slow.example", MG_DNS_A);
  EXPECT_EQ(r->status, MG_DNS_TEMPFAIL);
  EXPECT_EQ(r->count, 0u);
  EXPECT_EQ(r->struct_size, sizeof(mg_dns_result));
  d.t->dns_free(r);
  d.t->dns_free(r);  // twice: a violation, not a crash
  d.host.set_dns_default(MG_DNS_NODATA);
  r = d.t->dns_query(d.h, "other.example", MG_DNS_AAAA);
  EXPECT_EQ(r->status, MG_DNS_NODATA);
  d.host.set_nonblocking(true);
  mg_dns_result* refused = d.t->dns_query(d.h, "slow.example", MG_DNS_A);
  EXPECT_EQ(refused->status, MG_DNS_ERROR);
  d.t->dns_free(refused);
  EXPECT_EQ(d.host.dns_queries().size(), 2u);  // the refused one never reached the resolver
  const std::vector<std::string> v = d.host.violations();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_NE(v[0].find("freed twice"), std::string::npos);
  EXPECT_EQ(v[1], "1 DNS result(s) not freed");
  d.t->dns_free(r);
}

void count_free(void* p) { ++*static_cast<int*>(p); }

TEST(FakeHost, DataSlotsAreFreedWhenReplacedAndAtTheirScopesEnd) {
  int tx1 = 0, tx2 = 0, sess = 0;
  {
    Direct d;
    d.t->set_data(d.h, 0, &tx1, &count_free);
    d.t->set_data(d.h, 0, &tx2, &count_free);
    EXPECT_EQ(tx1, 1);
    d.t->set_data(d.h, 1, &sess, &count_free);
    EXPECT_EQ(d.t->get_data(d.h, 0), &tx2);
    EXPECT_EQ(d.t->get_data(d.h, 1), &sess);
    d.s.end_transaction();
    EXPECT_EQ(tx2, 1);
    EXPECT_EQ(d.t->get_data(d.h, 0), nullptr);
    EXPECT_EQ(sess, 0);
  }
  EXPECT_EQ(sess, 1);  // the session's slot goes with the session
}

TEST(FakeHost, PolicyAndCountersAreReachableWithoutASession) {
  FakeHost host;
  host.set_policy("local_domains", "example.com", "1");
  char buf[2];
  EXPECT_EQ(host.table()->policy_lookup("local_domains", "example.com", buf, sizeof(buf)), 1);
  EXPECT_STREQ(buf, "1");
  EXPECT_EQ(host.table()->policy_lookup("local_domains", "example.net", buf, sizeof(buf)), 0);
  std::int64_t v = 0;
  EXPECT_EQ(host.table()->counter_add("c", 2, 0, &v), 0);
  EXPECT_EQ(host.table()->counter_add("c", 3, 0, &v), 0);
  EXPECT_EQ(v, 5);
  host.advance_time_ms(1u << 30);
  EXPECT_EQ(host.counter("c"), 5);  // window 0: never expires
  host.table()->log(nullptr, MG_LOG_WARNING, "no session");
  ASSERT_EQ(host.logs().size(), 1u);
  EXPECT_TRUE(host.logs()[0].session_id.empty());
}

TEST(FakeHost, RunMessageSplitsFoldsAndChunks) {
  FakeHost host;
  LoadedPlugin plugin = LoadedPlugin::open(host, MAILGATE_SDK_HELLO_C_PLUGIN);
  FakeSession s(host);
  EXPECT_EQ(run_message(plugin, s,
                        "Subject:  folded\n\tcontinued\nX-Empty:\nFrom: a@example.org\n\n"
                        "0123456789",
                        4),
            MG_CONTINUE);
  const std::vector<HeaderField>& got = s.received_headers();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].value, "folded\r\n\tcontinued");
  EXPECT_EQ(got[1].value, "");
  EXPECT_EQ(s.body(), "0123456789");
  EXPECT_EQ(s.stage(), MG_STAGE_EOM);
}

}  // namespace
