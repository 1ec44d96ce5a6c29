// dkim_test.cc — unit tests of the built-in `dkim` plugin (plugins/dkim/) with the SDK's fake
// host: the built dkim.so is loaded with dlopen() as the gateway loads it, and every key it sees
// comes from the fake host's scripted TXT records (so these tests also prove the plugin asks
// only the host's resolver). The messages are signed here with libopendkim's dkim_sign() and
// the test keys in tests/unit/plugins/dkim_keys/ (RSA 512, 1024 and 2048 bits). Covers each
// outcome (valid, invalid body and header, no key, temperror, permerror, none), two signatures,
// RFC 8301 (rsa-sha1, weak keys), the actions, the settings, and RFC 6376's canonicalization
// example (section 3.4.5) and example message (Appendix A) written as tests.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <mailgate/fake_host.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../../../plugins/dkim/opendkim.h"

#ifndef MAILGATE_DKIM_PLUGIN
#error "MAILGATE_DKIM_PLUGIN (the built dkim.so) comes from plugins/dkim/CMakeLists.txt"
#endif
#ifndef MAILGATE_DKIM_TEST_KEYS
#error "MAILGATE_DKIM_TEST_KEYS comes from plugins/dkim/CMakeLists.txt"
#endif

namespace {

using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::LoadedPlugin;

LoadedPlugin load(FakeHost& host, std::string_view settings = "{}") {
  return LoadedPlugin::open(host, MAILGATE_DKIM_PLUGIN, settings);
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

std::string read_file(const std::string& name) {
  std::ifstream in(std::string(MAILGATE_DKIM_TEST_KEYS) + "/" + name, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read test key " + name);
  std::ostringstream out;
  out << in.rdbuf();
  std::string text = out.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// The key record to publish for test key `bits` ("v=DKIM1; k=rsa; p=...").
std::string key_record(int bits) {
  return "v=DKIM1; k=rsa; p=" + read_file("rsa" + std::to_string(bits) + ".pub.b64");
}

// CRLF line ends, as the gateway's canonical form has.
std::string crlf(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  return out;
}

struct SignOptions {
  std::string domain = "example.com";
  std::string selector = "sel2048";
  int bits = 2048;
  dkim_alg_t alg = DKIM_SIGN_RSASHA256;
  dkim_canon_t hcanon = DKIM_CANON_RELAXED;
  dkim_canon_t bcanon = DKIM_CANON_RELAXED;
};

// Signs `message` ("Name: value" lines, blank line, body; LF or CRLF) with libopendkim and
// returns it with the DKIM-Signature field on top, CRLF line ends.
std::string sign(const std::string& message, const SignOptions& o = {}) {
  const std::string text = crlf(message);
  std::string key = read_file("rsa" + std::to_string(o.bits) + ".pem");
  DKIM_LIB* lib = dkim_init(nullptr, nullptr);
  if (lib == nullptr) throw std::runtime_error("dkim_init failed");
  unsigned int min_bits = 1;
  dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &min_bits, sizeof(min_bits));
  DKIM_STAT status = DKIM_STAT_OK;
  DKIM* dkim = dkim_sign(lib, reinterpret_cast<const unsigned char*>("test"), nullptr,
                         reinterpret_cast<unsigned char*>(key.data()),
                         reinterpret_cast<const unsigned char*>(o.selector.c_str()),
                         reinterpret_cast<const unsigned char*>(o.domain.c_str()), o.hcanon,
                         o.bcanon, o.alg, -1, &status);
  if (dkim == nullptr) {
    dkim_close(lib);
    throw std::runtime_error("dkim_sign failed: " + std::to_string(status));
  }
  const std::size_t blank = text.find("\r\n\r\n");
  const std::string header = text.substr(0, blank + 2);
  const std::string body = blank == std::string::npos ? "" : text.substr(blank + 4);
  // Each field with its folding, without its final CRLF.
  std::size_t pos = 0;
  std::string field;
  const auto feed = [&] {
    if (!field.empty())
      dkim_header(dkim, reinterpret_cast<unsigned char*>(field.data()), field.size());
    field.clear();
  };
  while (pos < header.size()) {
    std::size_t eol = header.find("\r\n", pos);
    const std::string line = header.substr(pos, eol - pos);
    pos = eol + 2;
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      field += "\r\n" + line;
    } else {
      feed();
      field = line;
    }
  }
  feed();
  dkim_eoh(dkim);
  std::string b = body;
  dkim_body(dkim, reinterpret_cast<unsigned char*>(b.data()), b.size());
  status = dkim_eom(dkim, nullptr);
  if (status != DKIM_STAT_OK) {
    dkim_free(dkim);
    dkim_close(lib);
    throw std::runtime_error("dkim_eom (sign) failed: " + std::to_string(status));
  }
  unsigned char sig[8192];
  const std::string prefix = "DKIM-Signature: ";
  status = dkim_getsighdr(dkim, sig, sizeof(sig), prefix.size());
  dkim_free(dkim);
  dkim_close(lib);
  if (status != DKIM_STAT_OK) throw std::runtime_error("dkim_getsighdr failed");
  return crlf(prefix + reinterpret_cast<const char*>(sig) + "\r\n") + text;
}

const char* const kMessage =
    "From: Joe SixPack <joe@example.com>\n"
    "To: Suzie Q <suzie@example.net>\n"
    "Subject: Is dinner ready?\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\n"
    "Message-ID: <20030712040037.46341.5F8J@example.com>\n"
    "\n"
    "Hi.\n"
    "\n"
    "We lost the game. Are you hungry yet?\n"
    "\n"
    "Joe.\n";

struct Symbols {
  std::map<std::string, std::pair<double, std::string>> by_name;
  bool has(const std::string& name) const { return by_name.count(name) != 0; }
  const std::string& detail(const std::string& name) const { return by_name.at(name).second; }
  double score(const std::string& name) const { return by_name.at(name).first; }
  std::string names() const {
    std::string out;
    for (const auto& [name, v] : by_name) out += (out.empty() ? "" : ",") + name;
    return out;
  }
};

class DkimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host.add_dns("sel2048._domainkey.example.com", MG_DNS_TXT,
                 std::vector<std::string>{key_record(2048)});
    host.add_dns("sel1024._domainkey.example.com", MG_DNS_TXT,
                 std::vector<std::string>{key_record(1024)});
    host.add_dns("weak._domainkey.example.com", MG_DNS_TXT,
                 std::vector<std::string>{key_record(512)});
  }

  // Runs the message through a freshly loaded plugin; returns the DKIM symbols.
  Symbols verify(const std::string& message, std::string_view settings = "{}",
                 mg_action expected = MG_CONTINUE) {
    LoadedPlugin p = load(host, settings);
    FakeSession s(host);
    s.set(MG_ITEM_TX_ID, "6A1F00000001.1");
    last_action = mailgate::fake::run_message(p, s, message);
    EXPECT_EQ(last_action, expected);
    Symbols out;
    for (const auto& sym : s.symbols())
      out.by_name[sym.name] = {sym.score, sym.detail.value_or("")};
    if (s.reply()) last_reply = *s.reply();
    log_lines = 0;
    for (const auto& line : s.logs())
      if (line.message.rfind("dkim: ", 0) == 0) {
        ++log_lines;
        last_log = line.message;
      }
    EXPECT_EQ(log_lines, 1) << "one log line per message";
    EXPECT_TRUE(host.violations().empty());
    EXPECT_EQ(host.dns_results_outstanding(), 0u);
    return out;
  }

  FakeHost host;
  mg_action last_action = MG_CONTINUE;
  mailgate::fake::Reply last_reply{0, "", ""};
  int log_lines = 0;
  std::string last_log;
};

// --- the descriptor and the settings ------------------------------------------------------

TEST_F(DkimTest, DescriptorIsBlockingWithEom) {
  LoadedPlugin p = load(host);
  EXPECT_EQ(p.name(), "dkim");
  EXPECT_EQ(p.descriptor().flags & MG_PLUGIN_NONBLOCKING, 0u);
  EXPECT_NE(p.descriptor().on_eom, nullptr);
}

TEST(DkimSettings, AcceptsTheDocumentedKeys) {
  EXPECT_EQ(create_error("{}"), "");
  EXPECT_EQ(create_error(R"({"scores": {"valid": -2, "invalid": 3, "nokey": 0.5, "temperror": 0,
      "permerror": 1, "none": 0.1, "sha1": 1, "weak_key": 1},
      "reject_invalid": true, "tempfail_on_dns_error": false, "max_signatures": 3})"),
            "");
}

TEST(DkimSettings, RefusesUnknownKeysWrongValuesAndBadJson) {
  EXPECT_NE(create_error(R"({"reject": true})").find("unknown setting \"reject\""),
            std::string::npos);
  EXPECT_NE(create_error(R"({"reject_invalid": "yes"})").find("must be true or false"),
            std::string::npos);
  EXPECT_NE(create_error(R"({"scores": {"good": 1}})").find("unknown result \"good\""),
            std::string::npos);
  EXPECT_NE(create_error(R"({"scores": {"valid": "1"}})").find("must be a number"),
            std::string::npos);
  EXPECT_NE(create_error(R"({"max_signatures": 0})").find("from 1 to 100"), std::string::npos);
  EXPECT_NE(create_error(R"({"max_signatures": 2.5})").find("from 1 to 100"), std::string::npos);
  EXPECT_NE(create_error("[]").find("must be a JSON object"), std::string::npos);
  EXPECT_NE(create_error("{").find("not valid JSON"), std::string::npos);
}

// --- outcomes -----------------------------------------------------------------------------

TEST_F(DkimTest, ValidRelaxedSignature) {
  const Symbols sym = verify(sign(kMessage));
  ASSERT_TRUE(sym.has("DKIM_VALID")) << sym.names();
  EXPECT_EQ(sym.names(), "DKIM_VALID");
  EXPECT_DOUBLE_EQ(sym.score("DKIM_VALID"), -1.0);
  EXPECT_EQ(sym.detail("DKIM_VALID"), "d=example.com s=sel2048 a=rsa-sha256 bits=2048 result=pass");
  EXPECT_NE(last_log.find("result=valid signatures=1"), std::string::npos) << last_log;
  const auto q = host.dns_queries();
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].first, "sel2048._domainkey.example.com");
  EXPECT_EQ(q[0].second, MG_DNS_TXT);
}

// EOM is tried on the I/O thread first (MG_PLUGIN_TRY_INLINE): the keys are looked up before
// anything is hashed, so a try whose key is not cached gives up after that one lookup, and the
// run again verifies; once the key is cached the try verifies. One log line and one symbol
// either way (verify() checks the line).
TEST_F(DkimTest, EomIsTriedWithCachedKeysAndGivesUpBeforeHashing) {
  EXPECT_NE(load(host).descriptor().flags & MG_PLUGIN_TRY_INLINE, 0u);
  const std::string m = sign(kMessage);
  EXPECT_EQ(verify(m).names(), "DKIM_VALID");
  EXPECT_EQ(host.inline_retries(), 1u);
  EXPECT_EQ(host.dns_would_block(), 1u);  // the prefetch only: libopendkim was not started
  EXPECT_EQ(verify(m).names(), "DKIM_VALID");
  EXPECT_EQ(host.inline_retries(), 1u);  // decided in the try: the key was cached
  EXPECT_EQ(host.dns_would_block(), 1u);
  // Unsigned: nothing to look up, decided in the try.
  EXPECT_EQ(verify("From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n").names(), "DKIM_NONE");
  EXPECT_EQ(host.inline_retries(), 1u);
}

TEST_F(DkimTest, ValidSimpleSignatureWith1024BitKey) {
  SignOptions o;
  o.selector = "sel1024";
  o.bits = 1024;
  o.hcanon = DKIM_CANON_SIMPLE;
  o.bcanon = DKIM_CANON_SIMPLE;
  const Symbols sym = verify(sign(kMessage, o));
  EXPECT_EQ(sym.names(), "DKIM_VALID");
  EXPECT_NE(sym.detail("DKIM_VALID").find("bits=1024 result=pass"), std::string::npos);
}

TEST_F(DkimTest, BodyModifiedAfterSigningIsInvalid) {
  std::string m = sign(kMessage);
  m.replace(m.find("hungry"), 6, "HUNGRY");
  const Symbols sym = verify(m);
  EXPECT_EQ(sym.names(), "DKIM_INVALID");
  EXPECT_DOUBLE_EQ(sym.score("DKIM_INVALID"), 2.0);
  EXPECT_EQ(sym.detail("DKIM_INVALID"),
            "d=example.com s=sel2048 a=rsa-sha256 bits=2048 result=fail "
            "reason=\"body hash mismatch\"");
}

TEST_F(DkimTest, HeaderModifiedAfterSigningIsInvalid) {
  std::string m = sign(kMessage);
  m.replace(m.find("Is dinner ready?"), 16, "Is lunch ready?");
  const Symbols sym = verify(m);
  EXPECT_EQ(sym.names(), "DKIM_INVALID");
  EXPECT_NE(sym.detail("DKIM_INVALID").find("result=fail reason=\"signature mismatch\""),
            std::string::npos)
      << sym.detail("DKIM_INVALID");
}

TEST_F(DkimTest, MissingKeyIsNoKey) {
  SignOptions o;
  o.selector = "gone";
  const Symbols sym = verify(sign(kMessage, o));
  EXPECT_EQ(sym.names(), "DKIM_NOKEY");
  EXPECT_NE(sym.detail("DKIM_NOKEY").find("d=example.com s=gone"), std::string::npos);
  EXPECT_NE(sym.detail("DKIM_NOKEY").find("reason=\"no key\""), std::string::npos);
}

TEST_F(DkimTest, NodataIsNoKeyToo) {
  host.add_dns_status("nodata._domainkey.example.com", MG_DNS_TXT, MG_DNS_NODATA);
  SignOptions o;
  o.selector = "nodata";
  EXPECT_EQ(verify(sign(kMessage, o)).names(), "DKIM_NOKEY");
}

TEST_F(DkimTest, DnsTempfailIsTempError) {
  host.add_dns_status("flaky._domainkey.example.com", MG_DNS_TXT, MG_DNS_TEMPFAIL);
  SignOptions o;
  o.selector = "flaky";
  const std::string m = sign(kMessage, o);
  const Symbols sym = verify(m);
  EXPECT_EQ(sym.names(), "DKIM_TEMPERROR") << last_log;
  EXPECT_NE(sym.detail("DKIM_TEMPERROR").find("d=example.com s=flaky"), std::string::npos);
  EXPECT_NE(sym.detail("DKIM_TEMPERROR").find("result=temperror"), std::string::npos);
  // Optionally tempfailed.
  verify(m, R"({"tempfail_on_dns_error": true})", MG_TEMPFAIL);
  EXPECT_EQ(last_reply.code, 451);
  EXPECT_EQ(last_reply.enhanced, "4.7.5");
}

TEST_F(DkimTest, TwoSignaturesOneValidOneInvalid) {
  // example.org publishes the 1024-bit key, but the message is signed with the 2048-bit one.
  host.add_dns("other._domainkey.example.org", MG_DNS_TXT,
               std::vector<std::string>{key_record(1024)});
  SignOptions bad;
  bad.domain = "example.org";
  bad.selector = "other";
  const std::string once = sign(kMessage, bad);
  const std::string twice = sign(once);
  const Symbols sym = verify(twice, R"({"reject_invalid": true})");  // a valid one: no reject
  EXPECT_EQ(sym.names(), "DKIM_INVALID,DKIM_VALID");
  EXPECT_EQ(sym.detail("DKIM_VALID"), "d=example.com s=sel2048 a=rsa-sha256 bits=2048 result=pass");
  EXPECT_NE(sym.detail("DKIM_INVALID").find("d=example.org s=other a=rsa-sha256"),
            std::string::npos);
  EXPECT_NE(last_log.find("signatures=2"), std::string::npos);
}

TEST_F(DkimTest, DnsTempfailOfOneSignatureLeavesTheOtherValid) {
  host.add_dns_status("flaky._domainkey.example.org", MG_DNS_TXT, MG_DNS_TEMPFAIL);
  SignOptions o;
  o.domain = "example.org";
  o.selector = "flaky";
  const Symbols sym = verify(sign(sign(kMessage, o)), R"({"tempfail_on_dns_error": true})");
  EXPECT_EQ(sym.names(), "DKIM_TEMPERROR,DKIM_VALID");
  EXPECT_NE(sym.detail("DKIM_TEMPERROR").find("d=example.org s=flaky"), std::string::npos);
}

TEST_F(DkimTest, TwoValidSignaturesAreListedInOneSymbol) {
  SignOptions o;
  o.selector = "sel1024";
  o.bits = 1024;
  const Symbols sym = verify(sign(sign(kMessage, o)));
  EXPECT_EQ(sym.names(), "DKIM_VALID");
  EXPECT_EQ(sym.detail("DKIM_VALID"),
            "d=example.com s=sel2048 a=rsa-sha256 bits=2048 result=pass; "
            "d=example.com s=sel1024 a=rsa-sha256 bits=1024 result=pass");
}

TEST_F(DkimTest, SignaturesPastMaxSignaturesAreNotChecked) {
  host.add_dns("third._domainkey.example.com", MG_DNS_TXT,
               std::vector<std::string>{key_record(1024)});
  SignOptions o;
  o.selector = "sel1024";
  o.bits = 1024;
  SignOptions third = o;
  third.selector = "third";
  const std::string m = sign(sign(sign(kMessage, o)), third);  // third, sel2048, sel1024
  const Symbols sym = verify(m, R"({"max_signatures": 2})");
  EXPECT_EQ(sym.names(), "DKIM_PERMERROR,DKIM_VALID") << last_log;
  EXPECT_NE(sym.detail("DKIM_PERMERROR").find("not checked: more than 2 signatures"),
            std::string::npos)
      << sym.detail("DKIM_PERMERROR");
  EXPECT_EQ(host.dns_queries().size(), 2u);
}

TEST_F(DkimTest, RsaSha1IsNotAcceptable) {
  SignOptions o;
  o.alg = DKIM_SIGN_RSASHA1;
  const Symbols sym = verify(sign(kMessage, o));
  EXPECT_EQ(sym.names(), "DKIM_INVALID,DKIM_SHA1");
  EXPECT_NE(sym.detail("DKIM_INVALID").find("a=rsa-sha1 bits=2048 result=policy"),
            std::string::npos)
      << sym.detail("DKIM_INVALID");
  EXPECT_EQ(sym.detail("DKIM_SHA1"), sym.detail("DKIM_INVALID"));
}

TEST_F(DkimTest, WeakKeyIsNotAcceptable) {
  SignOptions o;
  o.selector = "weak";
  o.bits = 512;
  const Symbols sym = verify(sign(kMessage, o));
  EXPECT_EQ(sym.names(), "DKIM_INVALID,DKIM_WEAK_KEY");
  EXPECT_NE(sym.detail("DKIM_WEAK_KEY").find("s=weak a=rsa-sha256 bits=512 result=policy"),
            std::string::npos)
      << sym.detail("DKIM_WEAK_KEY");
}

TEST_F(DkimTest, UnsignedIsNone) {
  const Symbols sym = verify(kMessage);
  EXPECT_EQ(sym.names(), "DKIM_NONE");
  EXPECT_DOUBLE_EQ(sym.score("DKIM_NONE"), 0.0);
  EXPECT_TRUE(host.dns_queries().empty());
}

TEST_F(DkimTest, MalformedSignatureIsPermError) {
  const std::string m = std::string(
                            "DKIM-Signature: v=1; a=rsa-sha256; s=sel2048; c=relaxed/relaxed;\n"
                            "\th=from:subject; bh=AAAA; b=AAAA\n") +
                        kMessage;  // no d=
  const Symbols sym = verify(m);
  EXPECT_EQ(sym.names(), "DKIM_PERMERROR");
  EXPECT_NE(sym.detail("DKIM_PERMERROR").find("result=permerror"), std::string::npos)
      << sym.detail("DKIM_PERMERROR");
}

TEST_F(DkimTest, UnknownAlgorithmIsPermError) {
  std::string m = sign(kMessage);
  m.replace(m.find("a=rsa-sha256"), 12, "a=rsa-md5");
  EXPECT_EQ(verify(m).names(), "DKIM_PERMERROR");
}

TEST_F(DkimTest, ScoresFromSettings) {
  const Symbols sym = verify(sign(kMessage), R"({"scores": {"valid": -3.5}})");
  EXPECT_DOUBLE_EQ(sym.score("DKIM_VALID"), -3.5);
}

TEST_F(DkimTest, RejectInvalidRefusesWithoutAValidSignature) {
  std::string m = sign(kMessage);
  m.replace(m.find("hungry"), 6, "thirsty");
  verify(m, R"({"reject_invalid": true})", MG_REJECT);
  EXPECT_EQ(last_reply.code, 550);
  EXPECT_EQ(last_reply.enhanced, "5.7.20");
  // By default it only scores.
  verify(m);
  EXPECT_EQ(last_action, MG_CONTINUE);
}

// One plugin instance (one DKIM_LIB), many sessions at once: each gets its own handle and its
// own key lookups through its own session.
TEST_F(DkimTest, ConcurrentSessionsShareOnePlugin) {
  const std::string good = sign(kMessage);
  std::string bad = good;
  bad.replace(bad.find("hungry"), 6, "HUNGRY");
  LoadedPlugin p = load(host);
  std::vector<std::thread> threads;
  std::vector<int> wrong(8, 0);
  for (std::size_t i = 0; i < wrong.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 10; ++round) {
        FakeSession s(host);
        mailgate::fake::run_message(p, s, i % 2 == 0 ? good : bad);
        std::string names;
        for (const auto& sym : s.symbols()) names += sym.name;
        if (names != (i % 2 == 0 ? "DKIM_VALID" : "DKIM_INVALID")) ++wrong[i];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < wrong.size(); ++i) EXPECT_EQ(wrong[i], 0) << "thread " << i;
  EXPECT_TRUE(host.violations().empty());
  EXPECT_EQ(host.dns_results_outstanding(), 0u);
}

// --- RFC 6376 examples ----------------------------------------------------------------------

// Appendix A: the example message, signed (A.2's way: relaxed header, simple body) with our key.
TEST_F(DkimTest, Rfc6376AppendixAExampleMessage) {
  SignOptions o;
  o.domain = "example.com";
  o.hcanon = DKIM_CANON_RELAXED;
  o.bcanon = DKIM_CANON_SIMPLE;
  EXPECT_EQ(verify(sign(kMessage, o)).names(), "DKIM_VALID");
}

// Section 3.4.5's canonicalization example: header "A: X", "B : Y<TAB>\r\n<TAB>Z  ", body
// " C \r\nD <TAB>E\r\n\r\n\r\n".
const char* const kCanonExample =
    "From: joe@example.com\r\n"
    "A: X\r\n"
    "B : Y\t\r\n"
    "\tZ  \r\n"
    "\r\n"
    " C \r\n"
    "D \t E\r\n"
    "\r\n"
    "\r\n";

TEST_F(DkimTest, Rfc6376CanonicalizationExampleRelaxedSurvivesWhitespaceChanges) {
  SignOptions o;  // relaxed/relaxed, h= covers A and B
  const std::string m = sign(kCanonExample, o);
  EXPECT_EQ(verify(m).names(), "DKIM_VALID");
  // Relaxed: the same after whitespace runs change and trailing empty lines are added.
  std::string changed = m;
  changed.replace(changed.find("D \t E"), 5, "D E");
  changed += "\r\n\r\n";
  EXPECT_EQ(verify(changed).names(), "DKIM_VALID");
}

TEST_F(DkimTest, Rfc6376CanonicalizationExampleSimpleBreaksOnWhitespaceChanges) {
  SignOptions o;
  o.hcanon = DKIM_CANON_SIMPLE;
  o.bcanon = DKIM_CANON_SIMPLE;
  const std::string m = sign(kCanonExample, o);
  EXPECT_EQ(verify(m).names(), "DKIM_VALID");
  // Simple body: trailing empty lines are ignored...
  EXPECT_EQ(verify(m + "\r\n").names(), "DKIM_VALID");
  // ...but changed whitespace is not.
  std::string changed = m;
  changed.replace(changed.find("D \t E"), 5, "D E");
  const Symbols sym = verify(changed);
  EXPECT_EQ(sym.names(), "DKIM_INVALID");
  EXPECT_NE(sym.detail("DKIM_INVALID").find("body hash mismatch"), std::string::npos);
}

}  // namespace
