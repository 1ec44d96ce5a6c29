// dmarc_test.cc — unit tests of the built-in `dmarc` plugin (plugins/dmarc/) with the SDK's
// fake host: the built dmarc.so is loaded with dlopen() as the gateway loads it, the _dmarc TXT
// records come from the fake host's scripted DNS, and the SPF and DKIM results are seeded as
// the spf and dkim plugins would have recorded them. Covers aligned SPF and DKIM passes,
// relaxed and strict alignment, sp= for subdomains, the organizational-domain fallback, the
// actions (reject, quarantine header, none), pct sampling, DNS failures, From problems
// (RFC 7489 section 6.6.1), record selection, the history database, the relay/auth skips,
// settings errors, and RFC 7489 appendix B's examples written as a test zone. The public suffix
// list reader and the From parser are also tested directly.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <mailgate/fake_host.hpp>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "from_domain.h"
#include "public_suffix.h"

#ifndef MAILGATE_DMARC_PLUGIN
#error "MAILGATE_DMARC_PLUGIN (the built dmarc.so) comes from plugins/dmarc/CMakeLists.txt"
#endif

namespace {

using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::LoadedPlugin;
namespace dm = mailgate::dmarc;

LoadedPlugin load(FakeHost& host, std::string_view settings = "{}") {
  return LoadedPlugin::open(host, MAILGATE_DMARC_PLUGIN, settings);
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

// One message: envelope, From field(s), and the results the spf and dkim plugins recorded.
struct Message {
  std::string sender = "bounce@example.com";
  std::string helo = "mail.example.com";
  std::vector<std::string> from = {"Alice <alice@example.com>"};
  // {result, properties}
  std::vector<std::pair<std::string, std::string>> spf;
  std::vector<std::pair<std::string, std::string>> dkim;

  Message& spf_result(const std::string& result, const std::string& mailfrom) {
    spf.emplace_back(result, "smtp.mailfrom=" + mailfrom);
    return *this;
  }
  Message& dkim_result(const std::string& result, const std::string& d,
                       const std::string& sel = "sel1") {
    dkim.emplace_back(result, "header.d=" + d + " header.s=" + sel + " header.a=rsa-sha256");
    return *this;
  }
};

class DmarcTest : public ::testing::Test {
 protected:
  void record(const std::string& domain, const std::string& text) {
    host.add_dns("_dmarc." + domain, MG_DNS_TXT, std::vector<std::string>{text});
  }

  // Runs one transaction through the plugin; the session stays inspectable.
  mg_action run(LoadedPlugin& p, FakeSession& s, const Message& m) {
    run_helo(p, s, m.helo);
    EXPECT_EQ(run_mail(p, s, m.sender), MG_CONTINUE);
    EXPECT_EQ(run_rcpt(p, s, "rcpt@receiver.test"), MG_CONTINUE);
    for (const auto& [result, props] : m.spf) s.add_auth_result("spf", result, "", props);
    for (const auto& [result, props] : m.dkim) s.add_auth_result("dkim", result, "", props);
    std::string text;
    for (const std::string& f : m.from) text += "From: " + f + "\r\n";
    text += "To: rcpt@receiver.test\r\nSubject: test\r\n\r\nHello.\r\n";
    return run_message(p, s, text);
  }

  // The "dmarc" result the plugin recorded ("" when none).
  static std::string dmarc_result(const FakeSession& s) {
    const auto r = s.auth_result("dmarc");
    return r ? r->result : "";
  }
  static std::string dmarc_symbol(const FakeSession& s) {
    for (const auto& sym : s.symbols())
      if (sym.name.rfind("DMARC_", 0) == 0) return sym.name;
    return "";
  }

  FakeHost host;
};

// A history database in a fresh directory, read back with SQLite.
class TempDb {
 public:
  TempDb() {
    char dir[] = "/tmp/dmarc_test_XXXXXX";
    if (mkdtemp(dir) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = dir;
    path_ = dir_ + "/history.db";
  }
  ~TempDb() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path_ + suffix).c_str());
    rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }

  // Every row of dmarc_history as column → text maps, in id order.
  std::vector<std::map<std::string, std::string>> rows() const {
    std::vector<std::map<std::string, std::string>> out;
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      sqlite3_close(db);
      return out;
    }
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT * FROM dmarc_history ORDER BY id", -1, &st, nullptr) ==
        SQLITE_OK) {
      while (sqlite3_step(st) == SQLITE_ROW) {
        std::map<std::string, std::string> row;
        for (int i = 0; i < sqlite3_column_count(st); ++i) {
          const unsigned char* v = sqlite3_column_text(st, i);
          row[sqlite3_column_name(st, i)] = v != nullptr ? reinterpret_cast<const char*>(v) : "";
        }
        out.push_back(std::move(row));
      }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }
  void exec(const char* sql) const {
    sqlite3* db = nullptr;
    sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
    sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }

 private:
  std::string dir_;
  std::string path_;
};

// --- the descriptor and the settings ------------------------------------------------------

TEST_F(DmarcTest, DescriptorIsBlockingWithEomOnly) {
  LoadedPlugin p = load(host);
  const mg_plugin& d = p.descriptor();
  EXPECT_EQ(p.name(), "dmarc");
  EXPECT_EQ(d.flags & MG_PLUGIN_NONBLOCKING, 0u);
  EXPECT_NE(d.on_eom, nullptr);
  EXPECT_EQ(d.on_mail, nullptr);
  EXPECT_EQ(d.on_body, nullptr);
  EXPECT_EQ(d.on_header, nullptr);
}

TEST(DmarcSettings, AcceptsTheDocumentedKeys) {
  EXPECT_EQ(create_error(R"({
      "public_suffix_list": "/usr/share/publicsuffix/public_suffix_list.dat",
      "history_db": "", "reject_action": "quarantine", "quarantine_action": "none",
      "quarantine_header": "X-DMARC-Quarantine", "honour_pct": false,
      "tempfail_on_dns_error": true, "skip_relay_networks": false, "skip_authenticated": false,
      "reject_bad_from": true,
      "scores": {"pass": -1, "fail_reject": 5, "fail_quarantine": 3, "fail_none": 1,
                 "none": 0, "temperror": 0.5, "permerror": 0.5}})"),
            "");
}

TEST(DmarcSettings, RefusesUnknownKeysWrongValuesAndMissingFiles) {
  EXPECT_NE(create_error(R"({"rejct_action": "reject"})").find("unknown setting \"rejct_action\""),
            std::string::npos);
  EXPECT_NE(create_error(R"({"reject_action": "bounce"})").find("\"reject_action\""),
            std::string::npos);
  EXPECT_NE(create_error(R"({"quarantine_action": "reject"})").find("\"quarantine_action\""),
            std::string::npos);
  EXPECT_NE(create_error(R"({"honour_pct": "yes"})").find("\"honour_pct\" must be true or false"),
            std::string::npos);
  EXPECT_NE(create_error(R"({"quarantine_header": "Bad Name:"})").find("quarantine_header"),
            std::string::npos);
  EXPECT_NE(create_error(R"({"scores": {"fail": 1}})").find("unknown result \"fail\""),
            std::string::npos);
  EXPECT_NE(create_error(R"([1])").find("JSON object"), std::string::npos);
  EXPECT_NE(create_error(R"({"public_suffix_list": "/nonexistent/psl.dat"})")
                .find("/nonexistent/psl.dat"),
            std::string::npos);
  EXPECT_NE(create_error(R"({"history_db": "/nonexistent/dir/history.db"})")
                .find("/nonexistent/dir/history.db"),
            std::string::npos);
}

// --- results and alignment ----------------------------------------------------------------

TEST_F(DmarcTest, AlignedSpfPassPasses) {
  record("example.com", "v=DMARC1; p=reject");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  Message m;
  m.spf_result("pass", "bounce@example.com").dkim_result("fail", "example.com");
  EXPECT_EQ(run(p, s, m), MG_CONTINUE);
  EXPECT_EQ(dmarc_result(s), "pass");
  EXPECT_EQ(dmarc_symbol(s), "DMARC_PASS");
  const auto r = s.auth_result("dmarc");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->properties, "header.from=example.com");
  EXPECT_EQ(r->reason, "p=reject dis=none");
  EXPECT_NE(s.symbol("DMARC_PASS")->detail->find("spf_aligned=yes"), std::string::npos);
  EXPECT_NE(s.symbol("DMARC_PASS")->detail->find("dkim_aligned=no"), std::string::npos);
  EXPECT_TRUE(host.violations().empty());
}

// EOM is tried on the I/O thread first (MG_PLUGIN_TRY_INLINE): the policy is looked up before
// anything is written, so a try that meets a record not cached leaves no trace (not even the
// removal of a spoofed quarantine field) and the run again decides; once cached, the try does.
TEST_F(DmarcTest, EomIsTriedWithCachedDnsAndLeavesNoTraceWhenItCannot) {
  record("example.com", "v=DMARC1; p=reject");
  for (int round = 0; round < 2; ++round) {
    LoadedPlugin p = load(host);
    EXPECT_NE(p.descriptor().flags & MG_PLUGIN_TRY_INLINE, 0u);
    FakeSession s(host);
    run_helo(p, s, "client.example.net");
    run_mail(p, s, "bounce@example.com");
    run_rcpt(p, s, "rcpt@receiver.test");
    s.add_auth_result("spf", "pass", "", "smtp.mailfrom=bounce@example.com");
    EXPECT_EQ(run_message(p, s,
                          "From: a@example.com\r\nX-MailGate-DMARC: spoofed\r\n"
                          "X-MailGate-DMARC: spoofed again\r\nSubject: t\r\n\r\nHi.\r\n"),
              MG_CONTINUE);
    EXPECT_EQ(host.inline_retries(), 1u) << "round " << round;
    EXPECT_EQ(dmarc_result(s), "pass");
    EXPECT_EQ(s.symbols().size(), 1u);
    EXPECT_EQ(s.auth_results().size(), 2u);  // the spf one given above and dmarc's
    size_t removals = 0;
    for (const auto& e : s.header_edits()) removals += e.kind == mailgate::fake::HeaderEdit::Kind::kRemove ? 1 : 0;
    EXPECT_EQ(removals, 1u);
  }
  EXPECT_TRUE(host.violations().empty());
}

TEST_F(DmarcTest, AlignedDkimPassPassesDespiteSpfFail) {
  record("example.com", "v=DMARC1; p=reject");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  Message m;
  m.sender = "someone@forwarder.example.net";
  m.spf_result("fail", "someone@forwarder.example.net")
      .dkim_result("fail", "example.com", "old")
      .dkim_result("pass", "example.com", "sel1");
  EXPECT_EQ(run(p, s, m), MG_CONTINUE);
  EXPECT_EQ(dmarc_result(s), "pass");
  EXPECT_NE(s.symbol("DMARC_PASS")->detail->find("dkim_aligned=yes"), std::string::npos);
  EXPECT_TRUE(host.violations().empty());
}

TEST_F(DmarcTest, PassingButUnalignedIdentifiersFail) {
  record("example.com", "v=DMARC1; p=none");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  Message m;
  m.sender = "bounce@esp.example.net";
  m.spf_result("pass", "bounce@esp.example.net").dkim_result("pass", "esp.example.net");
  EXPECT_EQ(run(p, s, m), MG_CONTINUE);
  EXPECT_EQ(dmarc_result(s), "fail");
  EXPECT_EQ(dmarc_symbol(s), "DMARC_FAIL_NONE");
  EXPECT_EQ(s.auth_result("dmarc")->reason, "p=none dis=none");
}

TEST_F(DmarcTest, RelaxedAlignmentAcceptsSubdomainsStrictDoesNot) {
  struct Case {
    std::string record;
    bool use_spf;
    std::string identity;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"v=DMARC1; p=reject", true, "bounce.example.com", "pass"},
      {"v=DMARC1; p=reject; aspf=r", true, "a.b.example.com", "pass"},
      {"v=DMARC1; p=reject; aspf=s", true, "bounce.example.com", "fail"},
      {"v=DMARC1; p=reject; aspf=s", true, "example.com", "pass"},
      {"v=DMARC1; p=reject", false, "mail.example.com", "pass"},
      {"v=DMARC1; p=reject; adkim=s", false, "mail.example.com", "fail"},
      {"v=DMARC1; p=reject; adkim=s", false, "EXAMPLE.com", "pass"},
      {"v=DMARC1; p=reject; adkim=s; aspf=r", true, "mail.example.com", "pass"},
      {"v=DMARC1; p=reject", false, "example.com.evil.test", "fail"},
      {"v=DMARC1; p=reject", false, "notexample.com", "fail"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.record + " / " + (c.use_spf ? "spf " : "dkim ") + c.identity);
    FakeHost h;
    h.add_dns("_dmarc.example.com", MG_DNS_TXT, std::vector<std::string>{c.record});
    LoadedPlugin plugin = load(h);
    FakeSession s(h);
    Message m;
    m.sender = "bounce@" + c.identity;
    if (c.use_spf)
      m.spf_result("pass", "bounce@" + c.identity);
    else
      m.dkim_result("pass", c.identity);
    const mg_action a = run(plugin, s, m);
    EXPECT_EQ(dmarc_result(s), c.want);
    EXPECT_EQ(a, c.want == "pass" ? MG_CONTINUE : MG_REJECT);
  }
}

TEST_F(DmarcTest, NullSenderUsesTheHeloIdentity) {
  record("example.com", "v=DMARC1; p=reject");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  Message m;
  m.sender = "";
  m.spf.emplace_back("pass", "smtp.helo=mail.example.com");
  EXPECT_EQ(run(p, s, m), MG_CONTINUE);
  EXPECT_EQ(dmarc_result(s), "pass");
  EXPECT_NE(s.symbol("DMARC_PASS")->detail->find("spf=pass(mail.example.com)"), std::string::npos);
}

TEST_F(DmarcTest, MailFromResultWinsOverHelo) {
  record("example.com", "v=DMARC1; p=reject");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  Message m;
  m.sender = "x@other.example.net";
  m.spf.emplace_back("pass", "smtp.helo=mail.example.com");
  m.spf_result("fail", "x@other.example.net");
  EXPECT_EQ(run(p, s, m), MG_REJECT);
  EXPECT_EQ(dmarc_result(s), "fail");
}

// --- policy discovery ---------------------------------------------------------------------

TEST_F(DmarcTest, SubdomainUsesSpFromTheOrganizationalRecord) {
  record("example.com", "v=DMARC1; p=reject; sp=quarantine");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  Message m;
  m.from = {"news@news.example.com"};
  EXPECT_EQ(run(p, s, m), MG_CONTINUE);
  EXPECT_EQ(dmarc_result(s), "fail");
  EXPECT_EQ(dmarc_symbol(s), "DMARC_FAIL_QUARANTINE");
  EXPECT_EQ(s.header("X-Mailgate-DMARC").value_or(""),
            "quarantine header.from=news.example.com policy=quarantine");
  EXPECT_EQ(s.auth_result("dmarc")->properties, "header.from=news.example.com");
  EXPECT_EQ(s.auth_result("dmarc")->reason, "p=reject sp=quarantine dis=quarantine");
  const auto q = host.dns_queries();
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].first, "_dmarc.news.example.com");
  EXPECT_EQ(q[1].first, "_dmarc.example.com");
  EXPECT_EQ(q[1].second, MG_DNS_TXT);
}

TEST_F(DmarcTest, SubdomainWithoutSpUsesP) {
  record("example.com", "v=DMARC1; p=reject");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  Message m;
  m.from = {"news@news.example.com"};
  EXPECT_EQ(run(p, s, m), MG_REJECT);
  EXPECT_EQ(dmarc_symbol(s), "DMARC_FAIL_REJECT");
}

TEST_F(DmarcTest, SubdomainWithItsOwnRecordUsesItsP) {
  record("example.com", "v=DMARC1; p=none; sp=none");
  record("shop.example.com", "v=DMARC1; p=reject; sp=none");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  Message m;
  m.from = {"orders@shop.example.com"};
  EXPECT_EQ(run(p, s, m), MG_REJECT);
  ASSERT_EQ(host.dns_queries().size(), 1u);
}

TEST_F(DmarcTest, FallbackFindsTheOrganizationalDomainFromThePublicSuffixList) {
  record("example.co.uk", "v=DMARC1; p=quarantine");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  Message m;
  m.from = {"a@deep.sub.example.co.uk"};
  EXPECT_EQ(run(p, s, m), MG_CONTINUE);
  EXPECT_EQ(dmarc_symbol(s), "DMARC_FAIL_QUARANTINE");
  const auto q = host.dns_queries();
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].first, "_dmarc.deep.sub.example.co.uk");
  EXPECT_EQ(q[1].first, "_dmarc.example.co.uk");  // not sub.example.co.uk, not co.uk
}

TEST_F(DmarcTest, NoRecordIsNone) {
  LoadedPlugin p = load(host);
  FakeSession s(host);
  Message m;
  m.from = {"a@sub.norecord.test"};
  EXPECT_EQ(run(p, s, m), MG_CONTINUE);
  EXPECT_EQ(dmarc_result(s), "none");
  EXPECT_EQ(dmarc_symbol(s), "DMARC_NONE");
  EXPECT_EQ(s.auth_result("dmarc")->properties, "header.from=sub.norecord.test");
  EXPECT_EQ(host.dns_queries().size(), 2u);
  EXPECT_FALSE(s.header("X-Mailgate-DMARC").has_value());
  EXPECT_TRUE(host.violations().empty());
}

TEST_F(DmarcTest, InternationalizedFromDomainIsNoneWithoutALookup) {
  LoadedPlugin p = load(host);
  FakeSession s(host);
  Message m;
  m.from = {
      "jos\xc3\xa9@b\xc3\xbc"
      "cher.example"};
  EXPECT_EQ(run(p, s, m), MG_CONTINUE);
  EXPECT_EQ(dmarc_result(s), "none");
  EXPECT_TRUE(host.dns_queries().empty());
}

TEST_F(DmarcTest, OnlyRecordsStartingWithVDmarc1CountAndSeveralAreNone) {
  host.add_dns("_dmarc.example.com", MG_DNS_TXT,
               std::vector<std::string>{"google-site-verification=abc", "p=reject; v=DMARC1",
                                        "v=DMARC1; p=reject"});
  host.add_dns("_dmarc.several.test", MG_DNS_TXT,
               std::vector<std::string>{"v=DMARC1; p=reject", "v=DMARC1; p=none"});
  host.add_dns("_dmarc.lower.test", MG_DNS_TXT, std::vector<std::string>{"v=dmarc1; p=reject"});
  host.add_dns("_dmarc.spaced.test", MG_DNS_TXT, std::vector<std::string>{"V = DMARC1 ;p=reject"});
  LoadedPlugin p = load(host);
  {
    FakeSession s(host);
    EXPECT_EQ(run(p, s, Message{}), MG_REJECT);
  }
  {
    FakeSession s(host);
    Message m;
    m.from = {"x@several.test"};
    EXPECT_EQ(run(p, s, m), MG_CONTINUE);
    EXPECT_EQ(dmarc_result(s), "none");
    EXPECT_NE(s.symbol("DMARC_NONE")->detail->find("several DMARC records"), std::string::npos);
  }
  {
    FakeSession s(host);
    Message m;
    m.from = {"x@lower.test"};
    EXPECT_EQ(run(p, s, m), MG_CONTINUE);
    EXPECT_EQ(dmarc_result(s), "none");
  }
  {
    FakeSession s(host);
    Message m;
    m.from = {"x@spaced.test"};
    EXPECT_EQ(run(p, s, m), MG_REJECT);
  }
}

TEST_F(DmarcTest, BadRecordIsPermerrorWithoutAction) {
  record("example.com", "v=DMARC1; p=bogus");
  record("nop.test", "v=DMARC1; adkim=s");
  LoadedPlugin p = load(host);
  {
    FakeSession s(host);
    EXPECT_EQ(run(p, s, Message{}), MG_CONTINUE);
    EXPECT_EQ(dmarc_result(s), "permerror");
    EXPECT_EQ(dmarc_symbol(s), "DMARC_PERMERROR");
  }
  {
    FakeSession s(host);
    Message m;
    m.from = {"x@nop.test"};
    EXPECT_EQ(run(p, s, m), MG_CONTINUE);
    EXPECT_EQ(dmarc_result(s), "permerror");
  }
}

TEST_F(DmarcTest, BadRecordWithReportingUriIsReadAsPNone) {
  TempDb db;
  record("example.com", "v=DMARC1; p=rejekt; rua=mailto:agg@example.com");
  record("nop.test", "v=DMARC1; rua=mailto:r@nop.test");
  LoadedPlugin p = load(host, R"({"history_db": ")" + db.path() + R"("})");
  for (const char* from : {"x@example.com", "x@nop.test"}) {
    SCOPED_TRACE(from);
    FakeSession s(host);
    Message m;
    m.from = {from};
    EXPECT_EQ(run(p, s, m), MG_CONTINUE);
    EXPECT_EQ(dmarc_result(s), "fail");
    EXPECT_EQ(dmarc_symbol(s), "DMARC_FAIL_NONE");
    EXPECT_EQ(s.auth_result("dmarc")->reason, "p=none dis=none");
    EXPECT_TRUE(s.logged("read as p=none"));
  }
  const auto rows = db.rows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("record"), "v=DMARC1; p=rejekt; rua=mailto:agg@example.com");
  EXPECT_EQ(rows[0].at("p"), "none");
  EXPECT_EQ(rows[0].at("rua"), "mailto:agg@example.com");
}

TEST_F(DmarcTest, DnsTemporaryFailureTempfailsWhenSet) {
  host.add_dns_status("_dmarc.example.com", MG_DNS_TXT, MG_DNS_TEMPFAIL);
  host.add_dns_status("_dmarc.sub.broken.test", MG_DNS_TXT, MG_DNS_NXDOMAIN);
  host.add_dns_status("_dmarc.broken.test", MG_DNS_TXT, MG_DNS_ERROR);
  {
    LoadedPlugin p = load(host);
    FakeSession s(host);
    EXPECT_EQ(run(p, s, Message{}), MG_CONTINUE);
    EXPECT_EQ(dmarc_result(s), "temperror");
    EXPECT_EQ(dmarc_symbol(s), "DMARC_TEMPERROR");
  }
  LoadedPlugin p = load(host, R"({"tempfail_on_dns_error": true})");
  {
    FakeSession s(host);
    EXPECT_EQ(run(p, s, Message{}), MG_TEMPFAIL);
    ASSERT_TRUE(s.reply().has_value());
    EXPECT_EQ(s.reply()->code, 451);
    EXPECT_EQ(s.reply()->enhanced, "4.7.1");
    EXPECT_NE(s.reply()->text.find("example.com"), std::string::npos);
    EXPECT_EQ(dmarc_result(s), "temperror");
  }
  {
    // The failure at the organizational domain counts too.
    FakeSession s(host);
    Message m;
    m.from = {"x@sub.broken.test"};
    EXPECT_EQ(run(p, s, m), MG_TEMPFAIL);
  }
  EXPECT_TRUE(host.violations().empty());
}

// --- actions ------------------------------------------------------------------------------

TEST_F(DmarcTest, RejectPolicyFailureIsRejected) {
  record("example.com", "v=DMARC1; p=reject; rua=mailto:d@example.com");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  Message m;
  m.sender = "spoof@attacker.test";
  m.spf_result("fail", "spoof@attacker.test");
  EXPECT_EQ(run(p, s, m), MG_REJECT);
  ASSERT_TRUE(s.reply().has_value());
  EXPECT_EQ(s.reply()->code, 550);
  EXPECT_EQ(s.reply()->enhanced, "5.7.1");
  EXPECT_NE(s.reply()->text.find("DMARC policy of example.com (p=reject)"), std::string::npos);
  EXPECT_EQ(dmarc_symbol(s), "DMARC_FAIL_REJECT");
  EXPECT_EQ(s.auth_result("dmarc")->reason, "p=reject dis=reject");
  EXPECT_TRUE(host.violations().empty());
}

TEST_F(DmarcTest, RejectActionCanQuarantineOrOnlyScore) {
  record("example.com", "v=DMARC1; p=reject");
  {
    LoadedPlugin p = load(host, R"({"reject_action": "quarantine"})");
    FakeSession s(host);
    EXPECT_EQ(run(p, s, Message{}), MG_CONTINUE);
    EXPECT_EQ(dmarc_symbol(s), "DMARC_FAIL_REJECT");
    EXPECT_TRUE(s.header("X-Mailgate-DMARC").has_value());
    EXPECT_EQ(s.auth_result("dmarc")->reason, "p=reject dis=quarantine");
  }
  {
    LoadedPlugin p = load(host, R"({"reject_action": "none", "scores": {"fail_reject": 7.5}})");
    FakeSession s(host);
    EXPECT_EQ(run(p, s, Message{}), MG_CONTINUE);
    EXPECT_DOUBLE_EQ(s.symbol("DMARC_FAIL_REJECT")->score, 7.5);
    EXPECT_FALSE(s.header("X-Mailgate-DMARC").has_value());
    EXPECT_EQ(s.auth_result("dmarc")->reason, "p=reject dis=none");
  }
}

TEST_F(DmarcTest, QuarantineAddsTheConfiguredHeaderAndDropsForgedOnes) {
  record("example.com", "v=DMARC1; p=quarantine");
  {
    LoadedPlugin p = load(host);
    FakeSession s(host);
    EXPECT_EQ(run(p, s, Message{}), MG_CONTINUE);
    EXPECT_EQ(s.header("X-Mailgate-DMARC").value_or(""),
              "quarantine header.from=example.com policy=quarantine");
    EXPECT_DOUBLE_EQ(s.symbol("DMARC_FAIL_QUARANTINE")->score, 3.0);
  }
  {
    LoadedPlugin p = load(host, R"({"quarantine_header": "X-Spam-DMARC"})");
    FakeSession s(host);
    EXPECT_EQ(run(p, s, Message{}), MG_CONTINUE);
    EXPECT_TRUE(s.header("X-Spam-DMARC").has_value());
    EXPECT_FALSE(s.header("X-Mailgate-DMARC").has_value());
  }
  {
    LoadedPlugin p = load(host, R"({"quarantine_action": "none"})");
    FakeSession s(host);
    EXPECT_EQ(run(p, s, Message{}), MG_CONTINUE);
    EXPECT_TRUE(s.has_symbol("DMARC_FAIL_QUARANTINE"));
    EXPECT_FALSE(s.header("X-Mailgate-DMARC").has_value());
  }
  {
    // A passing message that arrived with the header loses it.
    LoadedPlugin p = load(host);
    FakeSession s(host);
    run_helo(p, s, "mail.example.com");
    run_mail(p, s, "b@example.com");
    run_rcpt(p, s, "r@receiver.test");
    s.add_auth_result("spf", "pass", "", "smtp.mailfrom=b@example.com");
    EXPECT_EQ(
        run_message(p, s, "X-Mailgate-DMARC: pass, trust me\r\nFrom: a@example.com\r\n\r\nx\r\n"),
        MG_CONTINUE);
    EXPECT_EQ(dmarc_result(s), "pass");
    EXPECT_FALSE(s.header("X-Mailgate-DMARC").has_value());
  }
}

TEST_F(DmarcTest, PctZeroLowersTheDispositionAndPct100Applies) {
  record("zero.test", "v=DMARC1; p=reject; pct=0");
  record("qzero.test", "v=DMARC1; p=quarantine; pct=0");
  record("full.test", "v=DMARC1; p=reject; pct=100");
  LoadedPlugin p = load(host);
  for (int i = 0; i < 20; ++i) {
    FakeSession s(host);
    Message m;
    m.from = {"x@zero.test"};
    EXPECT_EQ(run(p, s, m), MG_CONTINUE);  // reject → quarantine
    EXPECT_EQ(dmarc_symbol(s), "DMARC_FAIL_QUARANTINE");
    EXPECT_TRUE(s.header("X-Mailgate-DMARC").has_value());
    EXPECT_EQ(s.auth_result("dmarc")->reason, "p=reject dis=quarantine");
  }
  for (int i = 0; i < 20; ++i) {
    FakeSession s(host);
    Message m;
    m.from = {"x@qzero.test"};
    EXPECT_EQ(run(p, s, m), MG_CONTINUE);  // quarantine → none
    EXPECT_EQ(dmarc_symbol(s), "DMARC_FAIL_NONE");
    EXPECT_FALSE(s.header("X-Mailgate-DMARC").has_value());
  }
  for (int i = 0; i < 20; ++i) {
    FakeSession s(host);
    Message m;
    m.from = {"x@full.test"};
    EXPECT_EQ(run(p, s, m), MG_REJECT);
  }
  LoadedPlugin strict = load(host, R"({"honour_pct": false})");
  FakeSession s(host);
  Message m;
  m.from = {"x@zero.test"};
  EXPECT_EQ(run(strict, s, m), MG_REJECT);
}

TEST_F(DmarcTest, NonNumericPctIsTheDefault) {
  record("example.com", "v=DMARC1; p=reject; pct=abc");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  EXPECT_EQ(run(p, s, Message{}), MG_REJECT);
}

// --- From problems (RFC 7489 section 6.6.1) -----------------------------------------------

TEST_F(DmarcTest, MultipleFromFieldsOrAddressesArePermerror) {
  record("example.com", "v=DMARC1; p=reject");
  LoadedPlugin p = load(host);
  {
    FakeSession s(host);
    Message m;
    m.from = {"a@example.com", "b@example.com"};
    EXPECT_EQ(run(p, s, m), MG_CONTINUE);
    EXPECT_EQ(dmarc_result(s), "permerror");
    EXPECT_TRUE(s.logged("2 From header fields"));
    EXPECT_TRUE(host.dns_queries().empty());
  }
  {
    FakeSession s(host);
    Message m;
    m.from = {"a@example.com, \"Bob, Jr.\" <b@example.org>"};
    EXPECT_EQ(run(p, s, m), MG_CONTINUE);
    EXPECT_EQ(dmarc_result(s), "permerror");
    EXPECT_TRUE(s.logged("From header field with 2 addresses"));
  }
  {
    FakeSession s(host);
    Message m;
    m.from = {"undisclosed"};
    EXPECT_EQ(run(p, s, m), MG_CONTINUE);
    EXPECT_EQ(dmarc_result(s), "permerror");
  }
  {
    FakeSession s(host);
    Message m;
    m.from = {};
    EXPECT_EQ(run(p, s, m), MG_CONTINUE);
    EXPECT_EQ(dmarc_result(s), "none");
    EXPECT_EQ(dmarc_symbol(s), "DMARC_NONE");
  }
  LoadedPlugin strict = load(host, R"({"reject_bad_from": true})");
  {
    FakeSession s(host);
    Message m;
    m.from = {"a@example.com", "b@example.com"};
    EXPECT_EQ(run(strict, s, m), MG_REJECT);
    EXPECT_EQ(s.reply()->code, 550);
    EXPECT_EQ(s.reply()->enhanced, "5.7.1");
  }
  {
    FakeSession s(host);
    Message m;
    m.from = {};
    EXPECT_EQ(run(strict, s, m), MG_REJECT);
  }
  EXPECT_TRUE(host.violations().empty());
}

// --- skips --------------------------------------------------------------------------------

TEST_F(DmarcTest, RelayNetworksAndAuthenticatedClientsAreNotChecked) {
  record("example.com", "v=DMARC1; p=reject");
  host.set_policy("relay_networks", "192.0.2.1", "1");
  LoadedPlugin p = load(host);
  {
    FakeSession s(host);
    EXPECT_EQ(run(p, s, Message{}), MG_CONTINUE);
    EXPECT_EQ(dmarc_result(s), "");
    EXPECT_TRUE(host.logged("not checked (client in relay_networks)"));
    EXPECT_TRUE(host.dns_queries().empty());
  }
  {
    FakeSession s(host);
    s.set(MG_ITEM_CLIENT_ADDR, "198.51.100.7").set(MG_ITEM_AUTH_USER, "alice");
    EXPECT_EQ(run(p, s, Message{}), MG_CONTINUE);
    EXPECT_TRUE(host.logged("not checked (authenticated client)"));
  }
  LoadedPlugin all = load(host, R"({"skip_relay_networks": false, "skip_authenticated": false})");
  FakeSession s(host);
  s.set(MG_ITEM_AUTH_USER, "alice");
  EXPECT_EQ(run(all, s, Message{}), MG_REJECT);
}

// --- the history database -----------------------------------------------------------------

TEST_F(DmarcTest, HistoryRowsHoldWhatAnAggregateReportNeeds) {
  TempDb db;
  record("example.com",
         "v=DMARC1; p=reject; sp=quarantine; pct=100; adkim=s; "
         "rua=mailto:agg@example.com,mailto:agg@thirdparty.test");
  LoadedPlugin p = load(host, R"({"history_db": ")" + db.path() + R"("})");
  {
    FakeSession s(host);
    s.set(MG_ITEM_CLIENT_ADDR, "198.51.100.25");
    Message m;
    m.sender = "bounce@mail.example.com";
    m.spf_result("pass", "bounce@mail.example.com")
        .dkim_result("pass", "mail.example.com", "s2024")
        .dkim_result("fail", "example.com", "old");
    EXPECT_EQ(run(p, s, m), MG_CONTINUE);
  }
  {
    FakeSession s(host);
    Message m;
    m.sender = "x@attacker.test";
    m.spf_result("fail", "x@attacker.test");
    m.dkim.emplace_back("none", "");
    EXPECT_EQ(run(p, s, m), MG_REJECT);
  }
  const auto rows = db.rows();
  ASSERT_EQ(rows.size(), 2u);
  const auto& r = rows[0];
  EXPECT_NE(r.at("date"), "0");
  EXPECT_EQ(r.at("source_ip"), "198.51.100.25");
  EXPECT_EQ(r.at("helo"), "mail.example.com");
  EXPECT_EQ(r.at("header_from"), "example.com");
  EXPECT_EQ(r.at("envelope_from"), "bounce@mail.example.com");
  EXPECT_EQ(r.at("envelope_to"), "receiver.test");
  EXPECT_EQ(r.at("policy_domain"), "example.com");
  EXPECT_EQ(r.at("p"), "reject");
  EXPECT_EQ(r.at("sp"), "quarantine");
  EXPECT_EQ(r.at("pct"), "100");
  EXPECT_EQ(r.at("adkim"), "s");
  EXPECT_EQ(r.at("aspf"), "r");
  EXPECT_EQ(r.at("rua"), "mailto:agg@example.com,mailto:agg@thirdparty.test");
  EXPECT_EQ(r.at("result"), "pass");
  EXPECT_EQ(r.at("disposition"), "none");
  EXPECT_EQ(r.at("spf_aligned"), "pass");
  EXPECT_EQ(r.at("dkim_aligned"), "fail");  // adkim=s: mail.example.com is not example.com
  EXPECT_EQ(r.at("spf_domain"), "mail.example.com");
  EXPECT_EQ(r.at("spf_scope"), "mfrom");
  EXPECT_EQ(r.at("spf_result"), "pass");
  EXPECT_NE(r.at("dkim").find(R"("domain":"mail.example.com")"), std::string::npos);
  EXPECT_NE(r.at("dkim").find(R"("selector":"s2024")"), std::string::npos);
  EXPECT_NE(r.at("dkim").find(R"("result":"fail")"), std::string::npos);
  const auto& f = rows[1];  // the dkim plugin's "dkim=none" (no signature) is no signature
  EXPECT_EQ(f.at("result"), "fail");
  EXPECT_EQ(f.at("policy_requested"), "reject");
  EXPECT_EQ(f.at("disposition"), "reject");
  EXPECT_EQ(f.at("spf_result"), "fail");
  EXPECT_EQ(f.at("dkim"), "[]");
}

TEST_F(DmarcTest, HistoryRecordsSampledOutAndLocalPolicyOverrides) {
  TempDb db;
  record("zero.test", "v=DMARC1; p=reject; pct=0");
  record("example.com", "v=DMARC1; p=reject");
  LoadedPlugin p = load(host, R"({"reject_action": "none", "history_db": ")" + db.path() + R"("})");
  for (const char* from : {"x@zero.test", "x@example.com"}) {
    FakeSession s(host);
    Message m;
    m.from = {from};
    run(p, s, m);
  }
  const auto rows = db.rows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("override_reason"), "sampled_out");
  EXPECT_EQ(rows[0].at("policy_requested"), "reject");
  EXPECT_EQ(rows[1].at("override_reason"), "local_policy");
  EXPECT_EQ(rows[1].at("disposition"), "none");
}

TEST_F(DmarcTest, HistoryWriteFailureIsLoggedAndTheMailUnaffected) {
  TempDb db;
  record("example.com", "v=DMARC1; p=reject");
  LoadedPlugin p = load(host, R"({"history_db": ")" + db.path() + R"("})");
  db.exec("DROP TABLE dmarc_history");
  FakeSession s(host);
  Message m;
  m.spf_result("pass", "bounce@example.com");
  EXPECT_EQ(run(p, s, m), MG_CONTINUE);
  EXPECT_EQ(dmarc_result(s), "pass");
  EXPECT_TRUE(host.logged("dmarc: history: cannot record the message"));
}

TEST_F(DmarcTest, ConcurrentSessionsShareThePluginAndTheHistory) {
  TempDb db;
  record("example.com", "v=DMARC1; p=reject");
  LoadedPlugin p = load(host, R"({"history_db": ")" + db.path() + R"("})");
  constexpr int kThreads = 4;
  constexpr int kEach = 25;
  std::vector<std::thread> threads;
  std::vector<int> rejected(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        FakeSession s(host);
        Message m;
        if (i % 2 == 0) m.spf_result("pass", "bounce@example.com");
        if (run(p, s, m) == MG_REJECT) ++rejected[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  int total = 0;
  for (int r : rejected) total += r;
  EXPECT_EQ(total, kThreads * (kEach / 2));  // the odd-numbered messages of each thread
  EXPECT_EQ(db.rows().size(), static_cast<std::size_t>(kThreads * kEach));
  EXPECT_TRUE(host.violations().empty());
}

// --- RFC 7489 appendix B ------------------------------------------------------------------

// B.1: identifier alignment examples (example.com as the From domain).
TEST_F(DmarcTest, Rfc7489AppendixB1AlignmentExamples) {
  struct Case {
    const char* name;
    const char* record;
    bool spf;
    const char* identity;
    bool aligned;
  };
  const std::vector<Case> cases = {
      // B.1.1 SPF: MAIL FROM example.com and From example.com are in alignment.
      {"B.1.1 same domain", "v=DMARC1; p=reject", true, "example.com", true},
      // B.1.1: MAIL FROM child.example.com, relaxed mode: aligned; strict: not.
      {"B.1.1 child relaxed", "v=DMARC1; p=reject", true, "child.example.com", true},
      {"B.1.1 child strict", "v=DMARC1; p=reject; aspf=s", true, "child.example.com", false},
      // B.1.1: MAIL FROM example.net is not aligned with From example.com.
      {"B.1.1 other domain", "v=DMARC1; p=reject", true, "example.net", false},
      // B.1.2 DKIM: d=example.com aligned; d=child.example.com relaxed only; example.net not.
      {"B.1.2 same domain", "v=DMARC1; p=reject; adkim=s", false, "example.com", true},
      {"B.1.2 child relaxed", "v=DMARC1; p=reject", false, "child.example.com", true},
      {"B.1.2 child strict", "v=DMARC1; p=reject; adkim=s", false, "child.example.com", false},
      {"B.1.2 other domain", "v=DMARC1; p=reject", false, "example.net", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FakeHost h;
    h.add_dns("_dmarc.example.com", MG_DNS_TXT, std::vector<std::string>{c.record});
    LoadedPlugin p = load(h);
    FakeSession s(h);
    Message m;
    m.sender = std::string("sender@") + c.identity;
    if (c.spf)
      m.spf_result("pass", m.sender);
    else
      m.dkim_result("pass", c.identity);
    run(p, s, m);
    EXPECT_EQ(dmarc_result(s), c.aligned ? "pass" : "fail");
  }
}

// B.2: the domain owner's records, as a zone; B.3/B.4: what a receiver does with them.
TEST_F(DmarcTest, Rfc7489AppendixB2PolicyExamples) {
  // B.2.1 entire domain, monitoring only.
  record("example.com", "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com");
  // B.2.3 per-message failure reports to a third party (p=none).
  record("example.org",
         "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.org; "
         "ruf=mailto:auth-reports@thirdparty.example.net");
  // B.2.4 subdomain, sampling and several aggregate report URIs (the record is at
  // _dmarc.test.example.com, split over two strings in the zone; concatenated by DNS).
  record("test.example.com",
         "v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,"
         "mailto:tld-test@thirdparty.example.net!10m; pct=25");
  TempDb db;
  LoadedPlugin p = load(host, R"({"history_db": ")" + db.path() + R"("})");
  {
    // Monitoring only: an unauthenticated message is a fail with no action.
    FakeSession s(host);
    Message m;
    m.from = {"someone@example.com"};
    EXPECT_EQ(run(p, s, m), MG_CONTINUE);
    EXPECT_EQ(dmarc_result(s), "fail");
    EXPECT_EQ(dmarc_symbol(s), "DMARC_FAIL_NONE");
    EXPECT_FALSE(s.header("X-Mailgate-DMARC").has_value());
  }
  {
    FakeSession s(host);
    Message m;
    m.from = {"someone@example.org"};
    m.dkim_result("pass", "example.org");
    EXPECT_EQ(run(p, s, m), MG_CONTINUE);
    EXPECT_EQ(dmarc_result(s), "pass");
  }
  // pct=25: about a quarter of the failing messages from test.example.com are quarantined,
  // the rest get "none" (section 6.6.4). 400 messages: mean 100, sd ~8.7; the bounds are more
  // than 5 sd away.
  int quarantined = 0;
  constexpr int kMessages = 400;
  for (int i = 0; i < kMessages; ++i) {
    FakeSession s(host);
    Message m;
    m.from = {"x@test.example.com"};
    EXPECT_EQ(run(p, s, m), MG_CONTINUE);
    if (s.header("X-Mailgate-DMARC").has_value()) ++quarantined;
  }
  EXPECT_GT(quarantined, 50);
  EXPECT_LT(quarantined, 160);
  const auto rows = db.rows();
  ASSERT_EQ(rows.size(), 2u + kMessages);
  EXPECT_EQ(rows[0].at("rua"), "mailto:dmarc-feedback@example.com");
  EXPECT_EQ(rows[2].at("policy_domain"), "test.example.com");
  EXPECT_EQ(rows[2].at("pct"), "25");
  EXPECT_EQ(rows[2].at("rua"),
            "mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net!10m");
  int sampled_out = 0;
  for (std::size_t i = 2; i < rows.size(); ++i)
    if (rows[i].at("override_reason") == "sampled_out") ++sampled_out;
  EXPECT_EQ(sampled_out, kMessages - quarantined);
}

// --- the pure parts -----------------------------------------------------------------------

TEST(DmarcPublicSuffix, LongestMatchWildcardsAndExceptions) {
  const auto psl = dm::PublicSuffixList::from_text(
      "// comment\n\ncom\nuk\nco.uk\n*.ck\n!www.ck\njp\n*.kobe.jp\n!city.kobe.jp\n"
      "// ===BEGIN PRIVATE DOMAINS===\nblogspot.com\n");
  EXPECT_EQ(psl.organizational_domain("example.com"), "example.com");
  EXPECT_EQ(psl.organizational_domain("a.b.Example.COM."), "example.com");
  EXPECT_EQ(psl.organizational_domain("www.example.co.uk"), "example.co.uk");
  EXPECT_EQ(psl.organizational_domain("co.uk"), "co.uk");
  EXPECT_EQ(psl.organizational_domain("a.b.foo.ck"), "b.foo.ck");
  EXPECT_EQ(psl.organizational_domain("a.www.ck"), "www.ck");
  EXPECT_EQ(psl.organizational_domain("x.city.kobe.jp"), "city.kobe.jp");
  EXPECT_EQ(psl.organizational_domain("x.y.other.kobe.jp"), "y.other.kobe.jp");
  EXPECT_EQ(psl.organizational_domain("me.blogspot.com"), "me.blogspot.com");
  EXPECT_EQ(psl.organizational_domain("a.b.unlisted"), "b.unlisted");  // the default rule "*"
  EXPECT_EQ(psl.organizational_domain("localhost"), "localhost");
  EXPECT_EQ(psl.public_suffix("www.example.co.uk"), "co.uk");
}

TEST(DmarcPublicSuffix, ReadsDebiansList) {
  const dm::PublicSuffixList psl("/usr/share/publicsuffix/public_suffix_list.dat");
  EXPECT_GT(psl.rule_count(), 5000u);
  EXPECT_EQ(psl.organizational_domain("mail.example.co.uk"), "example.co.uk");
  EXPECT_EQ(psl.organizational_domain("mx.example.com.au"), "example.com.au");
  EXPECT_EQ(psl.organizational_domain("a.b.example.org"), "example.org");
}

TEST(DmarcFrom, AddressesAndDomains) {
  using dm::FromStatus;
  const auto one = [](std::string_view value) {
    return dm::from_domain(std::vector<std::string_view>{value});
  };
  EXPECT_EQ(one("alice@Example.COM").domain, "example.com");
  EXPECT_EQ(one("Alice <alice@example.com>").domain, "example.com");
  EXPECT_EQ(one("\"Smith, Alice\" <alice@example.com>").domain, "example.com");
  EXPECT_EQ(one("\"a@evil.test\" <alice@example.com>").domain, "example.com");
  EXPECT_EQ(one("alice@example.com (Alice, at evil.test)").domain, "example.com");
  EXPECT_EQ(one("Alice\r\n <alice@example.com>").domain, "example.com");
  EXPECT_EQ(one("<@route.test,@r2.test:alice@example.com>").domain, "example.com");
  EXPECT_EQ(one("\"odd@local\"@example.com").domain, "example.com");
  EXPECT_EQ(one("alice@example.com.").domain, "example.com");
  EXPECT_EQ(one("a@example.com, b@example.com").status, FromStatus::kMultiple);
  EXPECT_EQ(one("a@example.com,").status, FromStatus::kOk);  // an empty element is allowed
  EXPECT_EQ(one("Alice").status, FromStatus::kUnparseable);
  EXPECT_EQ(one("<>").status, FromStatus::kUnparseable);
  EXPECT_EQ(one("alice@[192.0.2.1]").status, FromStatus::kUnparseable);
  EXPECT_EQ(one("alice@localhost").status, FromStatus::kUnparseable);
  EXPECT_EQ(one("alice@exa mple.com").domain, "example.com");  // CFWS inside is folding
  EXPECT_EQ(dm::from_domain({}).status, FromStatus::kAbsent);
  EXPECT_EQ(dm::from_domain({"a@example.com", "a@example.com"}).status, FromStatus::kMultiple);
}

}  // namespace
