// spamscore_test.cc — unit tests of the built-in `spamscore` plugin (plugins/spamscore/) with the
// SDK's fake host: the built spamscore.so is loaded as the gateway loads it, and the rules and
// thresholds are the JSON the real policy snapshot makes from real spam_rules/spam_thresholds
// rows (so plugin and gateway agree on the format). A small plugin defined here plays the
// scorers that run before spamscore in the chain (spf, dnsbl, ...), adding their symbols.
#include <gtest/gtest.h>

#include <mailgate/fake_host.hpp>
#include <stdexcept>
#include <string>

#include "../policy/policy_test_util.h"
#include "policy/snapshot.h"

#ifndef MAILGATE_SPAMSCORE_PLUGIN
#error \
    "MAILGATE_SPAMSCORE_PLUGIN (the built spamscore.so) comes from plugins/spamscore/CMakeLists.txt"
#endif

namespace {

using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::LoadedPlugin;

constexpr const char* kGtube =
    "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

// The policy_lookup values the gateway gives for these INSERTed rows.
struct PolicyAnswers {
  std::optional<std::string> rules;
  std::map<std::string, std::string> thresholds;  // lookup key -> value
};
PolicyAnswers answers(const std::string& inserts, const std::vector<std::string>& domains) {
  mailgate::policy::testing::TempDir dir;
  auto db = mailgate::policy::testing::make_db(dir.file("p.db"));
  mailgate::policy::testing::sql(db.get(), inserts);
  auto snap = mailgate::policy::read_snapshot(db.get(), "p.db");
  if (!snap) throw std::runtime_error(mailgate::policy::join_problems(snap.error()));
  PolicyAnswers out;
  std::string value;
  if ((*snap)->lookup("spam_rules", "*", &value)) out.rules = value;
  for (const std::string& d : domains)
    if ((*snap)->lookup("spam_thresholds", d, &value)) out.thresholds[d] = value;
  return out;
}

// The scorers before spamscore: adds the symbols in g_prior_symbols at EOM.
const mg_host* g_prior_host = nullptr;
std::vector<std::pair<std::string, double>> g_prior_symbols;
const mg_plugin* prior_entry(uint32_t, const mg_host* host) {
  static mg_plugin d = [] {
    mg_plugin p{};
    p.struct_size = sizeof(mg_plugin);
    p.abi_version = MG_ABI_VERSION;
    p.name = "prior";
    p.version = "1";
    p.create = [](const mg_host* h, const char*, char*, size_t) -> void* {
      g_prior_host = h;
      return &g_prior_host;
    };
    p.destroy = [](void*) {};
    p.on_eom = [](void*, mg_session* s) -> mg_action {
      for (const auto& [name, score] : g_prior_symbols)
        g_prior_host->add_symbol(s, name.c_str(), score, "from an earlier plugin");
      return MG_CONTINUE;
    };
    return p;
  }();
  (void)host;
  return &d;
}

std::string well_formed_headers() {
  return "From: Alice <alice@example.org>\r\nTo: bob@example.test\r\n"
         "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <m1@example.org>\r\n"
         "Subject: hello\r\n";
}

class SpamScoreTest : public ::testing::Test {
 protected:
  ~SpamScoreTest() override { g_prior_symbols.clear(); }

  void use(const std::string& inserts, std::string_view settings = "{}",
           const std::vector<std::string>& domains = {"*", "example.test", "strict.test",
                                                      "lenient.test", "other.example"}) {
    host_.clear_policy();
    PolicyAnswers a = answers(inserts, domains);
    if (a.rules) host_.set_policy("spam_rules", "*", *a.rules);
    for (const auto& [key, value] : a.thresholds) host_.set_policy("spam_thresholds", key, value);
    if (!plugin_) plugin_.emplace(LoadedPlugin::open(host_, MAILGATE_SPAMSCORE_PLUGIN, settings));
  }

  // One message (header block with CRLF line ends, body) to `rcpts`; the EOM action.
  mg_action message(FakeSession& s, const std::string& header, const std::string& body,
                    const std::vector<std::string>& rcpts = {"bob@example.test"}) {
    s.set(MG_ITEM_CLIENT_ADDR, "192.0.2.1");
    s.set(MG_ITEM_SENDER, "alice@example.org");
    for (const std::string& r : rcpts) s.add_recipient(r);
    std::size_t start = 0;
    while (start < header.size()) {
      std::size_t end = header.find("\r\n", start);
      // A folded field continues on lines starting with white space.
      while (end != std::string::npos && end + 2 < header.size() &&
             (header[end + 2] == ' ' || header[end + 2] == '\t'))
        end = header.find("\r\n", end + 2);
      s.add_raw_header(header.substr(start, end + 2 - start));
      start = end + 2;
    }
    s.set_body(body);
    if (!g_prior_symbols.empty()) {
      LoadedPlugin prior(host_, &prior_entry);
      run_eom(prior, s);
    }
    return run_eom(*plugin_, s);
  }

  FakeHost host_;
  std::optional<LoadedPlugin> plugin_;
};

const char* kDefaultThresholds =
    "INSERT INTO spam_thresholds (domain, add_header, tempfail, reject) VALUES "
    "('*', 5, NULL, 15);";

TEST_F(SpamScoreTest, GtubeIsRejectedWithItsReason) {
  use(kDefaultThresholds);
  FakeSession s(host_);
  EXPECT_EQ(message(s, well_formed_headers(), std::string("test\r\n") + kGtube + "\r\n"),
            MG_REJECT);
  ASSERT_TRUE(s.reply());
  EXPECT_EQ(s.reply()->code, 550);
  EXPECT_EQ(s.reply()->enhanced, "5.7.1");
  EXPECT_EQ(s.reply()->text, "Message rejected as spam: score 1000.0 reaches 15.0 (GTUBE)");
  EXPECT_TRUE(s.has_symbol("GTUBE"));
  EXPECT_TRUE(host_.logged("spam score 1000.0 (Yes, score=1000.0 required=5.0) reject"));
  EXPECT_TRUE(host_.violations().empty());
}

TEST_F(SpamScoreTest, GtubeInsideABase64PartIsFound) {
  use(kDefaultThresholds);
  FakeSession s(host_);
  // base64 of the GTUBE string: only the decoded text holds it.
  const std::string body =
      "--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
      "WEpTKkM0SkRCUUFETjEuTlNCTjMqMklETkVOKkdUVUJFLVNUQU5EQVJELUFOVEktVUJFLVRFU1Qt\r\n"
      "RU1BSUwqQy4zNFg=\r\n--b--\r\n";
  EXPECT_EQ(message(s,
                    well_formed_headers() +
                        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n",
                    body),
            MG_REJECT);
  EXPECT_TRUE(s.has_symbol("GTUBE"));
}

TEST_F(SpamScoreTest, CleanMessageCarriesHeadersThatExplainTheVerdict) {
  use(kDefaultThresholds);
  g_prior_symbols = {{"SPF_PASS", -0.5}, {"DNSBL_TEST", 1.25}};
  FakeSession s(host_);
  // A forged status from outside is replaced.
  EXPECT_EQ(message(s, well_formed_headers() + "X-Spam-Status: No, score=-100\r\n", "hi\r\n"),
            MG_CONTINUE);
  EXPECT_FALSE(s.reply());
  EXPECT_EQ(s.header("X-Spam-Score"), "0.75");
  EXPECT_EQ(s.header("X-Spam-Status"), "No, score=0.75 required=5.0");
  EXPECT_EQ(
      s.header("X-Spam-Symbols"),
      "DNSBL_TEST(1.25)[from an earlier plugin],\r\n\tSPF_PASS(-0.5)[from an earlier plugin]");
  int statuses = 0;
  for (const auto& f : s.headers()) statuses += f.name == "X-Spam-Status";
  EXPECT_EQ(statuses, 1);
  EXPECT_TRUE(host_.violations().empty());
}

TEST_F(SpamScoreTest, HeaderSanitySymbols) {
  use(kDefaultThresholds);
  {
    FakeSession s(host_);
    message(s, "From: a@example.org\r\nFrom: b@example.org\r\nSubject: x\r\n", "hi\r\n");
    EXPECT_TRUE(s.has_symbol("MULTIPLE_FROM"));
    EXPECT_TRUE(s.has_symbol("MISSING_DATE"));
    EXPECT_TRUE(s.has_symbol("MISSING_MESSAGE_ID"));
    EXPECT_FALSE(s.has_symbol("MALFORMED_FROM"));
    EXPECT_FALSE(s.has_symbol("MISSING_SUBJECT"));
    EXPECT_EQ(s.symbol("MULTIPLE_FROM")->detail, "2 From header fields");
    EXPECT_DOUBLE_EQ(s.score(), 4.0);
    EXPECT_EQ(s.header("X-Spam-Status"), "No, score=4.0 required=5.0");
  }
  {
    FakeSession s(host_);
    message(s,
            "From: not an address\r\nDate: Sat, 3 Jan 2026 00:00:01 +0000\r\n"
            "Message-ID: <x@y>\r\n",
            "hi\r\n");
    EXPECT_TRUE(s.has_symbol("MALFORMED_FROM"));
    EXPECT_TRUE(s.has_symbol("MISSING_SUBJECT"));
    ASSERT_TRUE(s.has_symbol("DATE_IN_FUTURE"));  // the fake clock is 2026-01-01 00:00 UTC
    EXPECT_EQ(s.symbol("DATE_IN_FUTURE")->detail, "Date is 48.0 hours in the future");
    EXPECT_DOUBLE_EQ(s.score(), 4.5);
    EXPECT_EQ(s.header("X-Spam-Status"), "No, score=4.5 required=5.0");
  }
  {
    FakeSession s(host_);  // 23 hours ahead (clock skew) is fine; a date that does not parse is not
    message(s,
            "From: <a@example.org>\r\nDate: Thu, 1 Jan 2026 23:00:00 +0000\r\n"
            "Message-ID: <x@y>\r\nSubject: s\r\n",
            "hi\r\n");
    EXPECT_TRUE(s.symbols().empty()) << s.symbols().front().name;
    FakeSession t(host_);
    message(t,
            "From: <a@example.org>\r\nDate: yesterday-ish\r\nMessage-ID: <x@y>\r\nSubject: s\r\n",
            "hi\r\n");
    EXPECT_TRUE(t.has_symbol("INVALID_DATE"));
  }
}

TEST_F(SpamScoreTest, RulesMatchDecodedTextHtmlUrlsSubjectHeadersAndRaw) {
  use(std::string(kDefaultThresholds) +
      "INSERT INTO spam_rules (name, kind, header, pattern, score, description) VALUES "
      "('CHEAP_PILLS', 'body', NULL, '(?i)cheap pills', 1.5, 'sells pills'),"
      "('CAFE', 'body', NULL, 'caf\xc3\xa9 cr\xc3\xa8me', 0.5, 'latin-1 converted'),"
      "('SHADY_URL', 'url', NULL, '^https?://shady\\.example/', 2, 'links to shady.example'),"
      "('WIN_SUBJECT', 'subject', NULL, '(?i)\\bwinner\\b', 1, NULL),"
      "('MAILER', 'header', 'X-Mailer', 'BulkBlaster', 0.25, 'bulk mailer'),"
      "('RAW_B64', 'raw', NULL, 'Q2hlYXA', 0.1, 'raw bytes'),"
      "('SCRIPT_TEXT', 'body', NULL, 'hidden script', 9, 'must never match');"
      "INSERT INTO spam_rules (name, kind, pattern, score, enabled) VALUES "
      "('OFF', 'body', 'cheap', 50, 0);");
  FakeSession s(host_);
  const std::string body =
      "--b\r\nContent-Type: text/html; charset=iso-8859-1\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
      "<html><script>hidden script</script><b>Cheap</b> <i>pills</i> caf=E9 cr=E8me "
      "<a href=3D\"https://shady.example/buy?x=3D1&amp;y=3D2\">here</a></html>\r\n"
      "--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
      "Q2hlYXA=\r\n--b--\r\n";
  EXPECT_EQ(message(s,
                    "From: a@example.org\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n"
                    "Message-ID: <m@x>\r\nSubject: =?utf-8?q?You_are_a_WINNER?=\r\n"
                    "X-Mailer: BulkBlaster 3\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: multipart/alternative; boundary=\"b\"\r\n",
                    body),
            MG_CONTINUE);
  for (const char* name : {"CHEAP_PILLS", "CAFE", "SHADY_URL", "WIN_SUBJECT", "MAILER", "RAW_B64"})
    EXPECT_TRUE(s.has_symbol(name)) << name;
  EXPECT_FALSE(s.has_symbol("SCRIPT_TEXT"));
  EXPECT_FALSE(s.has_symbol("OFF"));
  EXPECT_EQ(s.symbol("CHEAP_PILLS")->detail, "sells pills");
  EXPECT_EQ(s.symbol("WIN_SUBJECT")->detail, "spam_rules row WIN_SUBJECT");
  EXPECT_NEAR(s.score(), 5.35, 1e-9);
  EXPECT_EQ(s.header("X-Spam-Status"), "Yes, score=5.35 required=5.0");
  EXPECT_TRUE(host_.violations().empty());
}

TEST_F(SpamScoreTest, ThresholdsPerDomainTheStrictestWins) {
  use("INSERT INTO spam_thresholds (domain, add_header, tempfail, reject) VALUES "
      "('*', 5, NULL, 15), ('strict.test', 2, 3, 4), ('lenient.test', 20, NULL, NULL);");
  g_prior_symbols = {{"SOMETHING", 3.5}};
  {
    FakeSession s(host_);  // lenient only: below its add_header
    EXPECT_EQ(message(s, well_formed_headers(), "x\r\n", {"u@lenient.test"}), MG_CONTINUE);
    EXPECT_EQ(s.header("X-Spam-Status"), "No, score=3.5 required=20.0");
  }
  {
    FakeSession s(host_);  // a domain without a row: the '*' row
    EXPECT_EQ(message(s, well_formed_headers(), "x\r\n", {"u@Other.Example"}), MG_CONTINUE);
    EXPECT_EQ(s.header("X-Spam-Status"), "No, score=3.5 required=5.0");
  }
  {
    FakeSession s(host_);  // strict alone: tempfail at 3
    EXPECT_EQ(message(s, well_formed_headers(), "x\r\n", {"u@STRICT.test"}), MG_TEMPFAIL);
    EXPECT_EQ(s.reply()->code, 451);
    EXPECT_EQ(s.reply()->enhanced, "4.7.1");
    EXPECT_EQ(s.reply()->text,
              "Message looks like spam: score 3.5 reaches 3.0 (SOMETHING); try again later");
  }
  {
    FakeSession s(host_);  // both: one answer for one DATA, the strictest
    EXPECT_EQ(message(s, well_formed_headers(), "x\r\n", {"u@lenient.test", "v@strict.test"}),
              MG_TEMPFAIL);
  }
  g_prior_symbols = {{"SOMETHING", 4.0}};
  {
    FakeSession s(host_);
    EXPECT_EQ(message(s, well_formed_headers(), "x\r\n", {"u@lenient.test", "v@strict.test"}),
              MG_REJECT);
    EXPECT_EQ(s.reply()->text, "Message rejected as spam: score 4.0 reaches 4.0 (SOMETHING)");
  }
}

TEST_F(SpamScoreTest, NoThresholdRowMeansHeadersOnly) {
  use("");
  FakeSession s(host_);
  EXPECT_EQ(message(s, well_formed_headers(), std::string(kGtube) + "\r\n"), MG_CONTINUE);
  EXPECT_EQ(s.header("X-Spam-Status"), "No, score=1000.0");
  EXPECT_EQ(s.header("X-Spam-Symbols"), "GTUBE(1000.0)[the GTUBE test string]");
}

TEST_F(SpamScoreTest, BadRuleKeepsTheOldRuleSetAndNamesTheRow) {
  use(std::string(kDefaultThresholds) +
      "INSERT INTO spam_rules (name, kind, pattern, score) VALUES ('OLD', 'body', 'viagra', 1);");
  {
    FakeSession s(host_);
    message(s, well_formed_headers(), "viagra now\r\n");
    EXPECT_TRUE(s.has_symbol("OLD"));
  }
  // The snapshot refuses such a row; a policy answer that holds one anyway (an older gateway, or
  // another RE2) must not cost the rules the plugin has.
  host_.set_policy("spam_rules", "*",
                   R"([{"name":"NEW","kind":"body","header":null,"pattern":"now","score":2,)"
                   R"("description":null},{"name":"FOO","kind":"body","header":null,)"
                   R"("pattern":"(abc","score":1,"description":null}])");
  for (int i = 0; i < 2; ++i) {
    FakeSession s(host_);
    message(s, well_formed_headers(), "viagra now\r\n");
    EXPECT_TRUE(s.has_symbol("OLD"));
    EXPECT_FALSE(s.has_symbol("NEW"));
  }
  int errors = 0;
  for (const auto& line : host_.logs())
    errors +=
        line.message.find("spam_rules row 'FOO': pattern does not compile: missing ): (abc") !=
        std::string::npos;
  EXPECT_EQ(errors, 1) << "logged once, naming the row";
  EXPECT_TRUE(host_.logged("keeping the 1 rules compiled before"));
  // Fixed: the new rules apply.
  host_.set_policy("spam_rules", "*",
                   R"([{"name":"NEW","kind":"body","header":null,"pattern":"now","score":2,)"
                   R"("description":null}])");
  FakeSession s(host_);
  message(s, well_formed_headers(), "viagra now\r\n");
  EXPECT_TRUE(s.has_symbol("NEW"));
  EXPECT_FALSE(s.has_symbol("OLD"));
}

TEST_F(SpamScoreTest, ScanIsBounded) {
  use(std::string(kDefaultThresholds) +
          "INSERT INTO spam_rules (name, kind, pattern, score) VALUES ('DEEP', 'body', 'deep "
          "text', 1);",
      R"({"max_scan_bytes": 2048, "max_mime_depth": 2})");
  {
    FakeSession s(host_);  // GTUBE after the first 2048 bytes is not seen
    message(s, well_formed_headers(), std::string(3000, 'a') + "\r\n" + kGtube + "\r\n");
    EXPECT_FALSE(s.has_symbol("GTUBE"));
    ASSERT_TRUE(s.has_symbol("SCAN_TRUNCATED"));
    EXPECT_EQ(s.symbol("SCAN_TRUNCATED")->score, 0.0);
    EXPECT_EQ(s.symbol("SCAN_TRUNCATED")->detail,
              "only the first 2048 bytes of the body were scanned");
  }
  // Three levels of multipart: the text at depth 3 is not scanned.
  const std::string nested =
      "--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
      "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n"
      "--c\r\nContent-Type: text/plain\r\n\r\ndeep text\r\n--c--\r\n--b--\r\n--a--\r\n";
  const std::string top = well_formed_headers() + "Content-Type: multipart/mixed; boundary=a\r\n";
  {
    FakeSession s(host_);
    message(s, top, nested);
    EXPECT_FALSE(s.has_symbol("DEEP"));
    EXPECT_TRUE(s.has_symbol("MIME_TOO_COMPLEX"));
  }
}

TEST_F(SpamScoreTest, DeepNestingIsCheckedAtDefaultDepth) {
  use(std::string(kDefaultThresholds) +
      "INSERT INTO spam_rules (name, kind, pattern, score) VALUES ('DEEP', 'body', 'deep text', "
      "1);");
  const std::string nested =
      "--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
      "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n"
      "--c\r\nContent-Type: text/plain\r\n\r\ndeep text\r\n--c--\r\n--b--\r\n--a--\r\n";
  FakeSession s(host_);
  message(s, well_formed_headers() + "Content-Type: multipart/mixed; boundary=a\r\n", nested);
  EXPECT_TRUE(s.has_symbol("DEEP"));
  EXPECT_FALSE(s.has_symbol("MIME_TOO_COMPLEX"));
}

TEST_F(SpamScoreTest, HeaderNamesAndScoresAreSettings) {
  use(kDefaultThresholds,
      R"({"score_header": "X-Score", "status_header": "X-Verdict", "symbols_header": "",
          "scores": {"MISSING_DATE": 0.5}})");
  FakeSession s(host_);
  message(s, "From: a@example.org\r\nMessage-ID: <a@b>\r\nSubject: s\r\n", "x\r\n");
  EXPECT_EQ(s.header("X-Score"), "0.5");
  EXPECT_EQ(s.header("X-Verdict"), "No, score=0.5 required=5.0");
  EXPECT_FALSE(s.header("X-Spam-Symbols"));
  EXPECT_FALSE(s.header("X-Spam-Status"));
}

TEST(SpamScoreSettings, BadSettingsNameTheKey) {
  FakeHost host;
  auto fails = [&](const char* settings, const std::string& message) {
    try {
      LoadedPlugin::open(host, MAILGATE_SPAMSCORE_PLUGIN, settings);
      ADD_FAILURE() << settings << " was accepted";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  };
  fails(R"({"max_scan_bytes": 10})", "setting \"max_scan_bytes\" must be an integer from 1024");
  fails(R"({"scores": {"NOPE": 1}})", "unknown symbol \"NOPE\"");
  fails(R"({"status_header": "X Bad"})", "setting \"status_header\" must be a header field name");
  fails(R"({"colour": 1})", "unknown setting \"colour\"");
}

}  // namespace

namespace {

TEST_F(SpamScoreTest, UrlsInPlainTextAreCutWhereASentenceEndsThem) {
  use(std::string(kDefaultThresholds) +
          "INSERT INTO spam_rules (name, kind, pattern, score) VALUES "
          "('WWW_PATH', 'url', '^www\\.shop\\.example/deal$', 1),"
          "('PAREN', 'url', '^https://wiki\\.example/a_\\(b\\)$', 1),"
          "('QUOTED', 'url', '^http://q\\.example/x$', 1),"
          "('THIRD', 'url', 'third\\.example', 1),"
          "('WORD', 'url', 'xhttp', 1);",
      R"({"max_urls": 3})");
  FakeSession s(host_);
  message(s, well_formed_headers(),
          "Go to www.shop.example/deal. Or see (https://wiki.example/a_(b)), "
          "\"http://q.example/x\" and xhttp://not.a.link/ and https://third.example/.\r\n");
  EXPECT_TRUE(s.has_symbol("WWW_PATH"));
  EXPECT_TRUE(s.has_symbol("PAREN"));
  EXPECT_TRUE(s.has_symbol("QUOTED"));
  EXPECT_FALSE(s.has_symbol("WORD"));
  EXPECT_FALSE(s.has_symbol("THIRD")) << "max_urls is 3";
}

TEST_F(SpamScoreTest, ThreeThousandRulesOfOneKindInOnePass) {
  std::string inserts = std::string(kDefaultThresholds) +
                        "INSERT INTO spam_rules (name, kind, pattern, score) VALUES ";
  for (int i = 0; i < 3000; ++i) {
    if (i > 0) inserts += ",";
    inserts += "('R" + std::to_string(i) + "', 'body', '(?i)\\bspamword" + std::to_string(i) +
               "\\b', 0.5)";
  }
  use(inserts + ";");
  FakeSession s(host_);
  message(s, well_formed_headers(), "a SpamWord2999 and spamword17 but not spamword170x\r\n");
  EXPECT_TRUE(s.has_symbol("R2999"));
  EXPECT_TRUE(s.has_symbol("R17"));
  EXPECT_FALSE(s.has_symbol("R170"));
  EXPECT_EQ(s.symbols().size(), 2u);
  EXPECT_TRUE(host_.logged("spamscore: compiled 3000 spam_rules"));
}

}  // namespace
