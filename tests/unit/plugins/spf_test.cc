// spf_test.cc — unit tests of the built-in `spf` plugin (plugins/spf/) with the SDK's fake
// host: the built spf.so is loaded with dlopen() as the gateway loads it, and every DNS answer
// libspf2 sees comes from the fake host's scripted zone (so these tests also prove the plugin
// asks only the host's resolver). Covers each result, the RFC 7208 section 4.6.4 limits, the
// null sender and HELO identities, actions and their per-domain overrides, the relay-network
// and authenticated skips, Received-SPF, settings errors, and RFC 7208 Appendix A's examples
// (written here as a test zone).
#include <gtest/gtest.h>

#include <mailgate/fake_host.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifndef MAILGATE_SPF_PLUGIN
#error "MAILGATE_SPF_PLUGIN (the built spf.so) comes from plugins/spf/CMakeLists.txt"
#endif

namespace {

using mailgate::fake::DnsAnswer;
using mailgate::fake::DnsRecord;
using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::LoadedPlugin;

LoadedPlugin load(FakeHost& host, std::string_view settings = R"({"receiver": "mx.test"})") {
  return LoadedPlugin::open(host, MAILGATE_SPF_PLUGIN, settings);
}

std::string create_error(std::string_view settings) {
  FakeHost host;
  try {
    load(host, settings);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

void txt(FakeHost& host, std::string_view name, const std::string& record) {
  host.add_dns(name, MG_DNS_TXT, std::vector<std::string>{record});
}
void a(FakeHost& host, std::string_view name, const std::vector<std::string>& addresses) {
  host.add_dns(name, MG_DNS_A, addresses);
}
void mx(FakeHost& host, std::string_view name, const std::vector<std::string>& names) {
  DnsAnswer answer;
  std::uint16_t pref = 10;
  for (const std::string& n : names) answer.records.push_back(DnsRecord{n, pref, 300});
  host.add_dns(name, MG_DNS_MX, std::move(answer));
}
void ptr(FakeHost& host, std::string_view reverse, const std::vector<std::string>& names) {
  host.add_dns(reverse, MG_DNS_PTR, names);
}

// The MAIL FROM result's symbol name ("SPF_PASS", ...), or "" when none was added.
std::string spf_symbol(const FakeSession& s) {
  for (const auto& sym : s.symbols())
    if (sym.name.rfind("SPF_", 0) == 0 && sym.name.rfind("SPF_HELO_", 0) != 0) return sym.name;
  return "";
}
std::string helo_symbol(const FakeSession& s) {
  for (const auto& sym : s.symbols())
    if (sym.name.rfind("SPF_HELO_", 0) == 0) return sym.name;
  return "";
}

// The RFC 7208 Appendix A zone (A.1 "Simple Examples" and the reverse zone), example.com's
// record being what each test sets.
void appendix_a_zone(FakeHost& host) {
  mx(host, "example.com", {"mx.example.com", "mx2.example.com"});
  a(host, "mx.example.com", {"192.0.2.129"});
  a(host, "mx2.example.com", {"192.0.2.130"});
  a(host, "amy.example.com", {"192.0.2.65"});
  a(host, "bob.example.com", {"192.0.2.66"});
  a(host, "mail-a.example.com", {"192.0.2.129"});
  a(host, "mail-b.example.com", {"192.0.2.130"});
  a(host, "example.com", {"192.0.2.10", "192.0.2.11"});
  host.add_dns_status("example.org", MG_DNS_A, MG_DNS_NODATA);
  mx(host, "example.org", {"mail-c.example.org"});
  a(host, "mail-c.example.org", {"192.0.2.140"});
  ptr(host, "10.2.0.192.in-addr.arpa", {"example.com"});
  ptr(host, "11.2.0.192.in-addr.arpa", {"example.com"});
  ptr(host, "65.2.0.192.in-addr.arpa", {"amy.example.com"});
  ptr(host, "66.2.0.192.in-addr.arpa", {"bob.example.com"});
  ptr(host, "129.2.0.192.in-addr.arpa", {"mail-a.example.com"});
  ptr(host, "130.2.0.192.in-addr.arpa", {"mail-b.example.com"});
  ptr(host, "140.2.0.192.in-addr.arpa", {"mail-c.example.org"});
  ptr(host, "4.0.0.10.in-addr.arpa", {"bob.example.com"});
}

// Runs HELO and MAIL FROM for one client and returns the MAIL FROM symbol.
class SpfTest : public ::testing::Test {
 protected:
  std::string check(const std::string& ip, const std::string& sender,
                    const std::string& helo = "client.example.net",
                    std::string_view settings = R"({"receiver": "mx.test"})") {
    LoadedPlugin p = load(host, settings);
    FakeSession s(host);
    s.set(MG_ITEM_CLIENT_ADDR, ip);
    run_helo(p, s, helo);
    EXPECT_EQ(run_mail(p, s, sender), MG_CONTINUE);
    return spf_symbol(s);
  }

  FakeHost host;
};

// --- the descriptor and the settings ------------------------------------------------------

TEST_F(SpfTest, DescriptorIsBlockingWithMailRcptEom) {
  LoadedPlugin p = load(host);
  const mg_plugin& d = p.descriptor();
  EXPECT_EQ(p.name(), "spf");
  EXPECT_EQ(d.flags & MG_PLUGIN_NONBLOCKING, 0u);
  EXPECT_NE(d.on_mail, nullptr);
  EXPECT_NE(d.on_rcpt, nullptr);
  EXPECT_NE(d.on_eom, nullptr);
  EXPECT_EQ(d.on_body, nullptr);
  EXPECT_EQ(d.on_header, nullptr);
}

// MAIL is tried on the I/O thread first (MG_PLUGIN_TRY_INLINE): with an answer not cached it
// gives up without a trace and runs again where it may block; once the answers are cached the
// try decides. Either way the symbols, log lines and results come once.
TEST_F(SpfTest, MailIsTriedWithCachedDnsAndLeavesNoTraceWhenItCannot) {
  EXPECT_NE(load(host).descriptor().flags & MG_PLUGIN_TRY_INLINE, 0u);
  txt(host, "client.example.net", "v=spf1 a -all");
  a(host, "client.example.net", {"192.0.2.1"});
  txt(host, "pass.test", "v=spf1 include:inc.test -all");
  txt(host, "inc.test", "v=spf1 ip4:192.0.2.1 -all");
  // The HELO identity's answers get cached first, so the first round's try gets past HELO and
  // stops at MAIL FROM: the HELO result it had must not be written twice.
  EXPECT_EQ(check("192.0.2.1", "a@other.test"), "SPF_NONE");
  const std::size_t before = host.inline_retries();
  for (int round = 0; round < 2; ++round) {
    LoadedPlugin p = load(host);
    FakeSession s(host);
    s.set(MG_ITEM_CLIENT_ADDR, "192.0.2.1");
    run_helo(p, s, "client.example.net");
    host.clear_logs();
    EXPECT_EQ(run_mail(p, s, "a@pass.test"), MG_CONTINUE);
    // The first round's try met an uncached answer; the second's found them all cached.
    EXPECT_EQ(host.inline_retries(), before + 1) << "round " << round;
    EXPECT_EQ(s.symbols().size(), 2u);  // SPF_HELO_PASS and SPF_PASS, once each
    EXPECT_EQ(spf_symbol(s), "SPF_PASS");
    EXPECT_EQ(helo_symbol(s), "SPF_HELO_PASS");
    size_t lines = 0;
    for (const auto& line : host.logs()) lines += line.message.rfind("spf: identity=", 0) == 0;
    EXPECT_EQ(lines, 2u);
  }
  EXPECT_GT(host.dns_would_block(), 0u);
  EXPECT_TRUE(host.violations().empty());
}

TEST(SpfSettings, AcceptsTheDocumentedKeys) {
  EXPECT_EQ(create_error("{}"), "");
  EXPECT_EQ(create_error(R"({"fail": "reject", "softfail": "tempfail", "temperror": "accept",
      "permerror": "reject", "skip_relay_networks": false, "skip_authenticated": true,
      "helo_check": false, "scores": {"fail": 7, "pass": -1.5},
      "domains": {"example.com": {"fail": "accept"}}, "receiver": "mx.example.net"})"),
            "");
}

TEST(SpfSettings, RefusesUnknownKeysWrongValuesAndBadJson) {
  EXPECT_NE(create_error(R"({"fial": "reject"})").find("unknown setting \"fial\""),
            std::string::npos);
  EXPECT_NE(create_error(R"({"fail": "bounce"})")
                .find("setting \"fail\" must be \"reject\", \"tempfail\" or \"accept\""),
            std::string::npos);
  EXPECT_NE(create_error(R"({"helo_check": 1})").find("\"helo_check\" must be true or false"),
            std::string::npos);
  EXPECT_NE(create_error(R"({"scores": {"fial": 1}})").find("unknown result \"fial\""),
            std::string::npos);
  EXPECT_NE(create_error(R"({"scores": {"fail": "high"}})").find("must be a number"),
            std::string::npos);
  EXPECT_NE(create_error(R"({"domains": {"example.com": {"bad": "reject"}}})")
                .find("unknown result \"bad\""),
            std::string::npos);
  EXPECT_NE(create_error(R"({"domains": ["example.com"]})").find("\"domains\" must be"),
            std::string::npos);
  EXPECT_NE(create_error(R"({"receiver": "a b"})").find("\"receiver\""), std::string::npos);
  EXPECT_NE(create_error("[1]").find("settings must be a JSON object"), std::string::npos);
  EXPECT_NE(create_error("{").find("settings are not valid JSON"), std::string::npos);
}

// --- each result ----------------------------------------------------------------------------

TEST_F(SpfTest, EachResult) {
  txt(host, "pass.test", "v=spf1 ip4:192.0.2.1 -all");
  txt(host, "fail.test", "v=spf1 -all");
  txt(host, "softfail.test", "v=spf1 ~all");
  txt(host, "neutral.test", "v=spf1 ?all");
  txt(host, "other.test", "v=spf1 include:nothing.test -all");  // include of no record
  host.add_dns_status("temp.test", MG_DNS_TXT, MG_DNS_TEMPFAIL);
  txt(host, "syntax.test", "v=spf1 ip4:300.1.1.1 -all");
  EXPECT_EQ(check("192.0.2.1", "a@pass.test"), "SPF_PASS");
  EXPECT_EQ(check("192.0.2.1", "a@fail.test"), "SPF_FAIL");
  EXPECT_EQ(check("192.0.2.1", "a@softfail.test"), "SPF_SOFTFAIL");
  EXPECT_EQ(check("192.0.2.1", "a@neutral.test"), "SPF_NEUTRAL");
  EXPECT_EQ(check("192.0.2.1", "a@norecord.test"), "SPF_NONE");
  EXPECT_EQ(check("192.0.2.1", "a@temp.test"), "SPF_TEMPERROR");
  EXPECT_EQ(check("192.0.2.1", "a@syntax.test"), "SPF_PERMERROR");
  EXPECT_EQ(check("192.0.2.1", "a@other.test"), "SPF_PERMERROR");
  EXPECT_TRUE(host.violations().empty());
}

TEST_F(SpfTest, ScoresComeFromSettingsWithDefaults) {
  txt(host, "fail.test", "v=spf1 -all");
  txt(host, "pass.test", "v=spf1 +all");
  {
    LoadedPlugin p = load(host);
    FakeSession s(host);
    run_helo(p, s, "h.example.net");
    run_mail(p, s, "x@fail.test");
    ASSERT_TRUE(s.symbol("SPF_FAIL").has_value());
    EXPECT_DOUBLE_EQ(s.symbol("SPF_FAIL")->score, 5.0);
    ASSERT_TRUE(s.symbol("SPF_FAIL")->detail.has_value());
    EXPECT_NE(s.symbol("SPF_FAIL")->detail->find("x@fail.test"), std::string::npos);
  }
  {
    LoadedPlugin p = load(host, R"({"scores": {"pass": -2}})");
    FakeSession s(host);
    run_helo(p, s, "h.example.net");
    run_mail(p, s, "x@pass.test");
    ASSERT_TRUE(s.symbol("SPF_PASS").has_value());
    EXPECT_DOUBLE_EQ(s.symbol("SPF_PASS")->score, -2.0);
  }
}

TEST_F(SpfTest, UsesOnlyTheHostsResolverAndFreesEveryAnswer) {
  txt(host, "example.com", "v=spf1 a mx -all");
  a(host, "example.com", {"192.0.2.10"});
  EXPECT_EQ(check("192.0.2.10", "a@example.com"), "SPF_PASS");
  const auto queries = host.dns_queries();
  ASSERT_FALSE(queries.empty());
  EXPECT_EQ(queries.front().first, "client.example.net");  // the HELO identity first
  bool saw_txt = false;
  for (const auto& q : queries)
    if (q.first == "example.com" && q.second == MG_DNS_TXT) saw_txt = true;
  EXPECT_TRUE(saw_txt);
  EXPECT_EQ(host.dns_results_outstanding(), 0u);
}

// --- RFC 7208 section 4.6.4 processing limits ------------------------------------------------

std::string includes(int n) {
  std::string record = "v=spf1";
  for (int i = 1; i <= n; ++i) record += " include:i" + std::to_string(i) + ".example.com";
  return record + " -all";
}

TEST_F(SpfTest, TenIncludesAreFineElevenArePermerror) {
  for (int i = 1; i <= 11; ++i)
    txt(host, "i" + std::to_string(i) + ".example.com", "v=spf1 ip4:198.51.100.1 -all");
  txt(host, "ten.example.com", includes(10));
  txt(host, "eleven.example.com", includes(11));
  EXPECT_EQ(check("192.0.2.1", "a@ten.example.com"), "SPF_FAIL");
  EXPECT_EQ(check("192.0.2.1", "a@eleven.example.com"), "SPF_PERMERROR");
  EXPECT_TRUE(host.logged("more than 10 DNS-querying terms"));
}

TEST_F(SpfTest, TermsAreCountedAcrossIncludesAndRedirect) {
  // 1 include + 5 a in it + redirect + 4 a = 11 terms.
  txt(host, "inc.example.com",
      "v=spf1 a:n1.example.com a:n2.example.com a:n3.example.com "
      "a:n4.example.com a:n5.example.com");
  txt(host, "red.example.com",
      "v=spf1 a:n6.example.com a:n7.example.com a:n8.example.com "
      "a:n9.example.com -all");
  for (int i = 1; i <= 9; ++i) a(host, "n" + std::to_string(i) + ".example.com", {"198.51.100.9"});
  txt(host, "top.example.com", "v=spf1 include:inc.example.com redirect=red.example.com");
  EXPECT_EQ(check("192.0.2.1", "a@top.example.com"), "SPF_PERMERROR");
}

TEST_F(SpfTest, TwoVoidLookupsAreFineThreeArePermerror) {
  txt(host, "two.example.com", "v=spf1 a:v1.example.com a:v2.example.com -all");
  txt(host, "three.example.com", "v=spf1 a:v1.example.com mx:v2.example.com a:v3.example.com -all");
  host.add_dns_status("v2.example.com", MG_DNS_MX, MG_DNS_NODATA);
  EXPECT_EQ(check("192.0.2.1", "a@two.example.com"), "SPF_FAIL");
  EXPECT_EQ(check("192.0.2.1", "a@three.example.com"), "SPF_PERMERROR");
  EXPECT_TRUE(host.logged("more than 2 void DNS lookups"));
}

TEST_F(SpfTest, TenMxNamesAreFineElevenArePermerror) {
  std::vector<std::string> ten, eleven;
  for (int i = 1; i <= 11; ++i) {
    const std::string name = "m" + std::to_string(i) + ".example.com";
    a(host, name, {"198.51.100." + std::to_string(i)});
    if (i <= 10) ten.push_back(name);
    eleven.push_back(name);
  }
  mx(host, "ten.example.com", ten);
  mx(host, "eleven.example.com", eleven);
  txt(host, "ten.example.com", "v=spf1 mx -all");
  txt(host, "eleven.example.com", "v=spf1 mx -all");
  // The addresses of the 10 MX names are part of the one "mx" term: no term limit.
  EXPECT_EQ(check("198.51.100.10", "a@ten.example.com"), "SPF_PASS");
  EXPECT_EQ(check("192.0.2.1", "a@ten.example.com"), "SPF_FAIL");
  EXPECT_EQ(check("198.51.100.1", "a@eleven.example.com"), "SPF_PERMERROR");
  EXPECT_TRUE(host.logged("more than 10 MX names"));
}

TEST_F(SpfTest, LimitsAreCountedPerEvaluationAcrossThreads) {
  for (int i = 1; i <= 10; ++i)
    txt(host, "i" + std::to_string(i) + ".example.com", "v=spf1 ip4:198.51.100.1 -all");
  txt(host, "ten.example.com", includes(10));
  LoadedPlugin p = load(host);
  std::vector<std::thread> threads;
  std::vector<std::string> results(8);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        FakeSession s(host);
        run_helo(p, s, "h.example.net");
        run_mail(p, s, "a@ten.example.com");
        results[t] += spf_symbol(s) + ";";
        run_reset(p, s);
      }
    });
  for (auto& th : threads) th.join();
  for (const std::string& r : results)
    EXPECT_EQ(r, "SPF_FAIL;SPF_FAIL;SPF_FAIL;SPF_FAIL;SPF_FAIL;");
}

TEST_F(SpfTest, PtrNamesBeyondTheFirstTenAreIgnored) {
  std::vector<std::string> names;
  for (int i = 1; i <= 11; ++i) {
    const std::string name = "p" + std::to_string(i) + ".ptr.example.com";
    a(host, name, {i == 11 ? "192.0.2.77" : "198.51.100.77"});
    names.push_back(name);
  }
  ptr(host, "77.2.0.192.in-addr.arpa", names);
  txt(host, "ptr.example.com", "v=spf1 ptr -all");
  EXPECT_EQ(check("192.0.2.77", "a@ptr.example.com"), "SPF_FAIL");
  for (const auto& q : host.dns_queries()) EXPECT_NE(q.first, "p11.ptr.example.com");
  std::swap(names.front(), names.back());  // the valid name among the first ten
  ptr(host, "77.2.0.192.in-addr.arpa", names);
  EXPECT_EQ(check("192.0.2.77", "a@ptr.example.com"), "SPF_PASS");
}

TEST_F(SpfTest, DnsFailureEndsTheEvaluationWithTemperror) {
  txt(host, "t.example.com", "v=spf1 a:t1.example.com a:t2.example.com -all");
  host.add_dns_status("t1.example.com", MG_DNS_A, MG_DNS_TEMPFAIL);
  a(host, "t2.example.com", {"192.0.2.1"});
  EXPECT_EQ(check("192.0.2.1", "a@t.example.com"), "SPF_TEMPERROR");
  for (const auto& q : host.dns_queries()) EXPECT_NE(q.first, "t2.example.com");
  host.add_dns_status("e.example.com", MG_DNS_TXT, MG_DNS_ERROR);
  EXPECT_EQ(check("192.0.2.1", "a@e.example.com"), "SPF_TEMPERROR");
}

TEST_F(SpfTest, Ipv6ClientsUseAaaaAndIp6) {
  txt(host, "v6.example.com", "v=spf1 ip6:2001:db8:1::/48 a -all");
  host.add_dns("v6.example.com", MG_DNS_AAAA, std::vector<std::string>{"2001:db8:2::25"});
  EXPECT_EQ(check("2001:db8:1::5", "a@v6.example.com"), "SPF_PASS");
  EXPECT_EQ(check("2001:db8:2::25", "a@v6.example.com"), "SPF_PASS");
  EXPECT_EQ(check("2001:db8:3::1", "a@v6.example.com"), "SPF_FAIL");
  bool asked_aaaa = false;
  for (const auto& q : host.dns_queries())
    if (q.first == "v6.example.com" && q.second == MG_DNS_AAAA) asked_aaaa = true;
  EXPECT_TRUE(asked_aaaa);
}

// --- identities -------------------------------------------------------------------------------

TEST_F(SpfTest, NullSenderChecksPostmasterAtHelo) {
  txt(host, "mail.example.net", "v=spf1 a -all");
  a(host, "mail.example.net", {"192.0.2.7"});
  LoadedPlugin p = load(host);
  FakeSession s(host);
  s.set(MG_ITEM_CLIENT_ADDR, "192.0.2.8");
  run_helo(p, s, "mail.example.net");
  EXPECT_EQ(run_mail(p, s, ""), MG_CONTINUE);
  EXPECT_EQ(spf_symbol(s), "SPF_FAIL");
  EXPECT_EQ(helo_symbol(s), "SPF_HELO_FAIL");
  EXPECT_EQ(run_rcpt(p, s, "user@example.org"), MG_REJECT);
  ASSERT_TRUE(s.reply().has_value());
  EXPECT_EQ(s.reply()->code, 550);
  EXPECT_EQ(s.reply()->enhanced, "5.7.23");
  EXPECT_NE(s.reply()->text.find("postmaster@mail.example.net"), std::string::npos);
  EXPECT_TRUE(host.logged("identity=helo sender=<postmaster@mail.example.net>"));
}

TEST_F(SpfTest, HeloIsEvaluatedSeparately) {
  txt(host, "helo.example.net", "v=spf1 -all");
  txt(host, "sender.example.com", "v=spf1 ip4:192.0.2.1 -all");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  run_helo(p, s, "helo.example.net");
  run_mail(p, s, "alice@sender.example.com");
  EXPECT_EQ(spf_symbol(s), "SPF_PASS");
  EXPECT_EQ(helo_symbol(s), "SPF_HELO_FAIL");
  EXPECT_DOUBLE_EQ(s.symbol("SPF_HELO_FAIL")->score, 0.0);
  EXPECT_TRUE(host.logged("identity=helo"));
  EXPECT_TRUE(host.logged("identity=mailfrom sender=<alice@sender.example.com>"));
}

TEST_F(SpfTest, HeloCheckOffAndAddressLiteralHelo) {
  txt(host, "sender.example.com", "v=spf1 ip4:192.0.2.1 -all");
  {
    LoadedPlugin p = load(host, R"({"helo_check": false})");
    FakeSession s(host);
    run_helo(p, s, "helo.example.net");
    run_mail(p, s, "alice@sender.example.com");
    EXPECT_EQ(helo_symbol(s), "");
    for (const auto& q : host.dns_queries()) EXPECT_NE(q.first, "helo.example.net");
  }
  {
    LoadedPlugin p = load(host);
    FakeSession s(host);
    run_helo(p, s, "[192.0.2.1]");
    run_mail(p, s, "");
    EXPECT_EQ(spf_symbol(s), "SPF_NONE");
    EXPECT_EQ(helo_symbol(s), "SPF_HELO_NONE");
  }
}

// --- actions ---------------------------------------------------------------------------------

class SpfActionTest : public SpfTest {
 protected:
  SpfActionTest() {
    txt(host, "fail.test", "v=spf1 -all");
    txt(host, "soft.test", "v=spf1 ~all");
    txt(host, "perm.test", "v=spf1 include:nowhere.test");
    txt(host, "exp.test", "v=spf1 -all exp=explain.exp.test");
    txt(host, "explain.exp.test", "%{i} may not send for %{d}, see https://exp.test/spf");
    host.add_dns_status("temp.test", MG_DNS_TXT, MG_DNS_TEMPFAIL);
  }
  // MAIL then RCPT; the RCPT action.
  mg_action rcpt(std::string_view settings, const std::string& sender, const std::string& to) {
    plugin_.emplace(load(host, settings));
    session_.emplace(host);
    run_helo(*plugin_, *session_, "h.example.net");
    EXPECT_EQ(run_mail(*plugin_, *session_, sender), MG_CONTINUE);
    return run_rcpt(*plugin_, *session_, to);
  }
  const mailgate::fake::Reply& reply() { return *session_->reply(); }

  std::optional<LoadedPlugin> plugin_;
  std::optional<FakeSession> session_;
};

TEST_F(SpfActionTest, FailIsRejectedWithTheExplanation) {
  EXPECT_EQ(rcpt("{}", "bob@exp.test", "u@example.org"), MG_REJECT);
  EXPECT_EQ(reply().code, 550);
  EXPECT_EQ(reply().enhanced, "5.7.23");
  EXPECT_NE(reply().text.find("192.0.2.1 may not send for exp.test, see https://exp.test/spf"),
            std::string::npos)
      << reply().text;
  EXPECT_EQ(rcpt("{}", "bob@fail.test", "u@example.org"), MG_REJECT);
  EXPECT_NE(reply().text.find("bob@fail.test"), std::string::npos) << reply().text;
}

TEST_F(SpfActionTest, DefaultsAcceptSoftfailAndPermerrorAndTempfailTemperror) {
  EXPECT_EQ(rcpt("{}", "bob@soft.test", "u@example.org"), MG_CONTINUE);
  EXPECT_EQ(rcpt("{}", "bob@perm.test", "u@example.org"), MG_CONTINUE);
  EXPECT_EQ(rcpt("{}", "bob@temp.test", "u@example.org"), MG_TEMPFAIL);
  EXPECT_EQ(reply().code, 451);
  EXPECT_EQ(reply().enhanced, "4.7.24");
}

TEST_F(SpfActionTest, ConfiguredActions) {
  EXPECT_EQ(rcpt(R"({"softfail": "tempfail"})", "bob@soft.test", "u@example.org"), MG_TEMPFAIL);
  EXPECT_EQ(reply().code, 451);
  EXPECT_EQ(reply().enhanced, "4.7.23");
  EXPECT_EQ(rcpt(R"({"softfail": "reject"})", "bob@soft.test", "u@example.org"), MG_REJECT);
  EXPECT_EQ(reply().enhanced, "5.7.23");
  EXPECT_EQ(rcpt(R"({"permerror": "reject"})", "bob@perm.test", "u@example.org"), MG_REJECT);
  EXPECT_EQ(reply().code, 550);
  EXPECT_EQ(reply().enhanced, "5.7.24");
  EXPECT_EQ(rcpt(R"({"temperror": "accept"})", "bob@temp.test", "u@example.org"), MG_CONTINUE);
  EXPECT_EQ(rcpt(R"({"fail": "accept"})", "bob@fail.test", "u@example.org"), MG_CONTINUE);
}

TEST_F(SpfActionTest, PerRecipientDomainOverrides) {
  const std::string settings = R"({"domains": {"Lenient.Example": {"fail": "accept"},
                                                "strict.example": {"softfail": "reject"}}})";
  EXPECT_EQ(rcpt(settings, "bob@fail.test", "u@lenient.example"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(*plugin_, *session_, "v@other.example"), MG_REJECT);
  EXPECT_EQ(rcpt(settings, "bob@soft.test", "u@strict.example"), MG_REJECT);
  EXPECT_EQ(run_rcpt(*plugin_, *session_, "v@other.example"), MG_CONTINUE);
  EXPECT_EQ(session_->recipients(), std::vector<std::string>{"v@other.example"});
}

TEST_F(SpfActionTest, RelayNetworksAndAuthenticatedClientsAreSkipped) {
  host.set_policy("relay_networks", "192.0.2.1", "1");
  EXPECT_EQ(rcpt("{}", "bob@fail.test", "u@example.org"), MG_CONTINUE);
  EXPECT_EQ(spf_symbol(*session_), "");
  EXPECT_TRUE(host.logged("not checked (client in relay_networks)"));
  EXPECT_EQ(rcpt(R"({"skip_relay_networks": false})", "bob@fail.test", "u@example.org"), MG_REJECT);
  host.clear_policy();

  plugin_.emplace(load(host));
  session_.emplace(host);
  session_->set(MG_ITEM_AUTH_USER, "bob");
  run_helo(*plugin_, *session_, "h.example.net");
  run_mail(*plugin_, *session_, "bob@fail.test");
  EXPECT_EQ(run_rcpt(*plugin_, *session_, "u@example.org"), MG_CONTINUE);
  EXPECT_TRUE(host.logged("not checked (authenticated client)"));
  EXPECT_EQ(run_message(*plugin_, *session_, "Subject: x\n\nbody\n"), MG_CONTINUE);
  EXPECT_FALSE(session_->header("Received-SPF").has_value());
}

// --- Received-SPF ----------------------------------------------------------------------------

TEST_F(SpfTest, ReceivedSpfIsInsertedAtTheTopAtEom) {
  txt(host, "example.com", "v=spf1 ip4:192.0.2.1 -all");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  run_helo(p, s, "client.example.net");
  run_mail(p, s, "alice@example.com");
  EXPECT_EQ(run_rcpt(p, s, "u@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_message(p, s, "From: a@example.com\nSubject: hi\n\nbody\n"), MG_CONTINUE);
  ASSERT_FALSE(s.headers().empty());
  EXPECT_EQ(s.headers().front().name, "Received-SPF");
  const std::string v = s.headers().front().value;
  EXPECT_EQ(v.rfind("pass (mx.test: domain of example.com designates 192.0.2.1 as "
                    "permitted sender)",
                    0),
            0u)
      << v;
  EXPECT_NE(v.find("client-ip=192.0.2.1;"), std::string::npos) << v;
  EXPECT_NE(v.find("envelope-from=\"alice@example.com\";"), std::string::npos) << v;
  EXPECT_NE(v.find("helo=client.example.net;"), std::string::npos) << v;
  EXPECT_NE(v.find("receiver=mx.test;"), std::string::npos) << v;
  EXPECT_NE(v.find("identity=mailfrom;"), std::string::npos) << v;
  EXPECT_TRUE(host.violations().empty());
}

TEST_F(SpfTest, ReceivedSpfForPermerrorNamesTheProblem) {
  for (int i = 1; i <= 11; ++i)
    txt(host, "i" + std::to_string(i) + ".example.com", "v=spf1 ip4:198.51.100.1 -all");
  txt(host, "eleven.example.com", includes(11));
  LoadedPlugin p = load(host);
  FakeSession s(host);
  run_helo(p, s, "client.example.net");
  run_mail(p, s, "x@eleven.example.com");
  run_rcpt(p, s, "u@example.org");
  run_message(p, s, "Subject: hi\n\nbody\n");
  const std::string v = s.headers().front().value;
  EXPECT_EQ(v.rfind("permerror (", 0), 0u) << v;
  EXPECT_NE(v.find("problem=\"more than 10 DNS-querying terms"), std::string::npos) << v;
}

// --- RFC 7208 Appendix A ---------------------------------------------------------------------

struct AppendixCase {
  const char* record;
  const char* ip;
  const char* expected;
};

TEST_F(SpfTest, AppendixA1SimpleExamples) {
  appendix_a_zone(host);
  const AppendixCase cases[] = {
      {"v=spf1 +all", "192.0.2.200", "SPF_PASS"},
      {"v=spf1 a -all", "192.0.2.10", "SPF_PASS"},
      {"v=spf1 a -all", "192.0.2.11", "SPF_PASS"},
      {"v=spf1 a -all", "192.0.2.12", "SPF_FAIL"},
      {"v=spf1 a:example.org -all", "192.0.2.10", "SPF_FAIL"},
      {"v=spf1 mx -all", "192.0.2.129", "SPF_PASS"},
      {"v=spf1 mx -all", "192.0.2.130", "SPF_PASS"},
      {"v=spf1 mx -all", "192.0.2.140", "SPF_FAIL"},
      {"v=spf1 mx:example.org -all", "192.0.2.140", "SPF_PASS"},
      {"v=spf1 mx:example.org -all", "192.0.2.129", "SPF_FAIL"},
      {"v=spf1 mx mx:example.org -all", "192.0.2.129", "SPF_PASS"},
      {"v=spf1 mx mx:example.org -all", "192.0.2.130", "SPF_PASS"},
      {"v=spf1 mx mx:example.org -all", "192.0.2.140", "SPF_PASS"},
      {"v=spf1 mx/30 mx:example.org/30 -all", "192.0.2.131", "SPF_PASS"},
      {"v=spf1 mx/30 mx:example.org/30 -all", "192.0.2.143", "SPF_PASS"},
      {"v=spf1 mx/30 mx:example.org/30 -all", "192.0.2.132", "SPF_FAIL"},
      {"v=spf1 ptr -all", "192.0.2.65", "SPF_PASS"},
      {"v=spf1 ptr -all", "192.0.2.140", "SPF_FAIL"},
      {"v=spf1 ptr -all", "10.0.0.4", "SPF_FAIL"},
      {"v=spf1 ip4:192.0.2.128/28 -all", "192.0.2.65", "SPF_FAIL"},
      {"v=spf1 ip4:192.0.2.128/28 -all", "192.0.2.129", "SPF_PASS"},
  };
  for (const AppendixCase& c : cases) {
    txt(host, "example.com", c.record);
    EXPECT_EQ(check(c.ip, "user@example.com"), c.expected) << c.record << " from " << c.ip;
  }
}

TEST_F(SpfTest, AppendixA2MultipleDomainsIncludeAndRedirect) {
  appendix_a_zone(host);
  txt(host, "example.com", "v=spf1 mx -all");
  txt(host, "example.net", "v=spf1 ip4:192.0.2.16/28 -all");
  txt(host, "example.org", "v=spf1 include:example.com include:example.net -all");
  txt(host, "la.example.org", "v=spf1 redirect=example.org");
  txt(host, "ny.example.org", "v=spf1 redirect=example.org");
  EXPECT_EQ(check("192.0.2.129", "a@la.example.org"), "SPF_PASS");  // via example.com's mx
  EXPECT_EQ(check("192.0.2.20", "a@ny.example.org"), "SPF_PASS");   // via example.net
  EXPECT_EQ(check("192.0.2.40", "a@la.example.org"), "SPF_FAIL");
}

TEST_F(SpfTest, AppendixA3DnsblStyleWithMacros) {
  appendix_a_zone(host);
  // "v=spf1 mx -all exists:..." from A.3 only reaches exists when mx does not match.
  txt(host, "example.com", "v=spf1 mx -exists:%{ir}.bl.example.org ip4:192.0.2.0/24 -all");
  a(host, "5.2.0.192.bl.example.org", {"127.0.0.2"});
  EXPECT_EQ(check("192.0.2.129", "a@example.com"), "SPF_PASS");
  EXPECT_EQ(check("192.0.2.5", "a@example.com"), "SPF_FAIL");  // listed
  EXPECT_EQ(check("192.0.2.6", "a@example.com"), "SPF_PASS");  // not listed
  bool asked = false;
  for (const auto& q : host.dns_queries())
    if (q.first == "5.2.0.192.bl.example.org" && q.second == MG_DNS_A) asked = true;
  EXPECT_TRUE(asked);
}

TEST_F(SpfTest, AppendixA4MultipleRequirements) {
  appendix_a_zone(host);
  // A.4: accept mail from the domain's mx only when it also is in 192.0.2.128/28.
  txt(host, "example.com", "v=spf1 -ip4:192.0.2.0/24 a//96 +all");
  EXPECT_EQ(check("192.0.2.10", "a@example.com"), "SPF_FAIL");
  EXPECT_EQ(check("198.51.100.1", "a@example.com"), "SPF_PASS");
  txt(host, "example.com", "v=spf1 ip4:192.0.2.128/28 -all");
  EXPECT_EQ(check("192.0.2.129", "a@example.com"), "SPF_PASS");
}

}  // namespace
