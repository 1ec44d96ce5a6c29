// dkim_sign_test.cc — unit tests of the built-in `dkim_sign` plugin (plugins/dkim/sign.cc) with
// the SDK's fake host: dkim_sign.so is loaded with dlopen() as the gateway loads it, its keys
// come from the fake policy (table dkim_keys, as the snapshot serves them), and every signature
// it makes is checked by two verifiers: python3-dkim (independent of libopendkim, run through
// tests/integration/mgtest/dkimtool.py under /usr/bin/python3) and the `dkim` plugin (dkim.so).
// Covers relaxed and simple canonicalization, RSA and ed25519 (dual signing), who is trusted
// (authenticated, relay_networks, neither), From: fields that do not allow signing, a broken
// key failing open, domain restriction, the envelope fallback and the settings errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mailgate/fake_host.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/dkim_key.h"

#ifndef MAILGATE_DKIM_SIGN_PLUGIN
#error "MAILGATE_DKIM_SIGN_PLUGIN (the built dkim_sign.so) comes from plugins/dkim/CMakeLists.txt"
#endif
#ifndef MAILGATE_DKIM_PLUGIN
#error "MAILGATE_DKIM_PLUGIN (the built dkim.so) comes from plugins/dkim/CMakeLists.txt"
#endif
#ifndef MAILGATE_DKIMTOOL
#error "MAILGATE_DKIMTOOL comes from plugins/dkim/CMakeLists.txt"
#endif

namespace {

using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::LoadedPlugin;

struct TestKey {
  std::string selector;
  std::string algorithm;
  mailgate::policy::DkimKeyPair pair;
};

// Generated once for the whole file (RSA generation takes a moment).
const TestKey& rsa_key() {
  static const TestKey key{"rsa1", "rsa-sha256",
                           *mailgate::policy::generate_dkim_key("rsa-sha256", 2048)};
  return key;
}
const TestKey& ed_key() {
  static const TestKey key{"ed1", "ed25519-sha256",
                           *mailgate::policy::generate_dkim_key("ed25519-sha256", 0)};
  return key;
}

// The dkim_keys lookup value for `keys`, as the snapshot builds it.
std::string keys_json(const std::vector<const TestKey*>& keys) {
  nlohmann::json array = nlohmann::json::array();
  for (const TestKey* k : keys)
    array.push_back({{"selector", k->selector},
                     {"algorithm", k->algorithm},
                     {"private_key", k->pair.private_pem}});
  return array.dump();
}

// The key records the verifiers need, by DNS name.
std::map<std::string, std::string> records(const std::string& domain,
                                           const std::vector<const TestKey*>& keys) {
  std::map<std::string, std::string> out;
  for (const TestKey* k : keys)
    out[k->selector + "._domainkey." + domain] =
        mailgate::policy::dkim_txt_value(k->algorithm, k->pair.public_b64);
  return out;
}

// python3-dkim's verdict on each DKIM-Signature of `message`, top first.
std::vector<bool> python_verify(const std::string& message,
                                const std::map<std::string, std::string>& keys) {
  nlohmann::json ops = nlohmann::json::array();
  ops.push_back({{"op", "verify_keys"}, {"message", message}, {"keys", keys}});
  char path[] = "/tmp/dkim-sign-test-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  close(fd);
  { std::ofstream(path) << ops.dump(); }
  const std::string command =
      std::string("/usr/bin/python3 ") + MAILGATE_DKIMTOOL + " < " + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  char buf[4096];
  std::size_t n = 0;
  while (pipe != nullptr && (n = fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  const int status = pipe != nullptr ? pclose(pipe) : -1;
  unlink(path);
  if (status != 0) throw std::runtime_error("dkimtool.py failed: " + output);
  return nlohmann::json::parse(output).at(0).get<std::vector<bool>>();
}

// The message as the gateway would relay it after the plugin's edits.
std::string relayed(const FakeSession& s) {
  std::string out;
  for (const auto& f : s.headers()) out += f.raw.empty() ? f.name + ": " + f.value + "\r\n" : f.raw;
  return out + "\r\n" + s.body();
}

// Adds the raw header fields of `header` (LF or CRLF lines, folding kept) to the session.
void add_fields(FakeSession& s, const std::string& header) {
  std::string crlf;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (header[i] == '\n' && (i == 0 || header[i - 1] != '\r')) crlf += '\r';
    crlf += header[i];
  }
  std::size_t pos = 0;
  std::string field;
  while (pos < crlf.size()) {
    std::size_t eol = crlf.find("\r\n", pos);
    if (eol == std::string::npos) eol = crlf.size();
    std::string line = crlf.substr(pos, eol - pos);
    pos = eol + 2;
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      field += "\r\n" + line;
      continue;
    }
    if (!field.empty()) s.add_raw_header(field + "\r\n");
    field = line;
  }
  if (!field.empty()) s.add_raw_header(field + "\r\n");
}

const char* const kHeader =
    "From: \"Doe, Jane\" <jane@Example.COM>\n"
    "To: bob@example.org\n"
    "Subject:   Lunch   on\n"
    "\tfriday \n"
    "Date: Sat, 21 Nov 2026 10:00:00 +0000\n"
    "Message-ID: <1@example.com>\n";
const char* const kBody = "Hello Bob,\r\n\r\n  see   you  there.  \r\n\r\n\r\n";

class DkimSignTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.set_policy("relay_networks", "192.0.2.1", "192.0.2.0/24");
    host_.set_policy("dkim_keys", "example.com", keys_json({&ed_key(), &rsa_key()}));
  }

  // Runs the plugin over kHeader/kBody (or the given ones) from client `client`.
  mg_action sign(FakeSession& s, LoadedPlugin& p, const std::string& header = kHeader,
                 const std::string& body = kBody, const std::string& client = "192.0.2.1") {
    s.set(MG_ITEM_CLIENT_ADDR, client);
    s.set(MG_ITEM_SENDER, "jane@example.com");
    add_fields(s, header);
    s.set_body(body);
    EXPECT_EQ(run_eoh(p, s), MG_CONTINUE);
    return run_eom(p, s);
  }

  std::size_t signatures(const FakeSession& s) const {
    std::size_t n = 0;
    for (const auto& f : s.headers())
      if (mailgate::fake::detail::lower(f.name) == "dkim-signature") ++n;
    return n;
  }

  // The `dkim` plugin's verdict on `message` (DKIM_VALID detail, or the symbols it set).
  std::string dkim_plugin_verdict(const std::string& message,
                                  const std::map<std::string, std::string>& keys) {
    FakeHost vhost;
    for (const auto& [name, record] : keys) vhost.add_dns(name, MG_DNS_TXT, {record});
    LoadedPlugin verifier = LoadedPlugin::open(vhost, MAILGATE_DKIM_PLUGIN, "{}");
    FakeSession vs(vhost);
    // The fields whole (run_message would drop the spaces after each colon, which simple
    // canonicalization counts).
    const std::size_t blank = message.find("\r\n\r\n");
    add_fields(vs, message.substr(0, blank + 2));
    vs.set_body(message.substr(blank + 4));
    EXPECT_EQ(run_eoh(verifier, vs), MG_CONTINUE);
    EXPECT_EQ(run_eom(verifier, vs), MG_CONTINUE);
    std::string out;
    for (const auto& sym : vs.symbols()) out += sym.name + "[" + sym.detail.value_or("") + "] ";
    return out;
  }

  FakeHost host_;
};

TEST_F(DkimSignTest, RelaxedDualSignatureRsaAndEd25519Verify) {
  LoadedPlugin p = LoadedPlugin::open(host_, MAILGATE_DKIM_SIGN_PLUGIN, "{}");
  FakeSession s(host_);
  EXPECT_EQ(sign(s, p), MG_CONTINUE);
  ASSERT_EQ(signatures(s), 2u);
  // Both at the top, before the original From.
  EXPECT_EQ(mailgate::fake::detail::lower(s.headers()[0].name), "dkim-signature");
  EXPECT_EQ(mailgate::fake::detail::lower(s.headers()[1].name), "dkim-signature");
  EXPECT_EQ(s.headers()[2].name, "From");
  std::string all = s.headers()[0].value + s.headers()[1].value;
  EXPECT_NE(all.find("a=rsa-sha256"), std::string::npos);
  EXPECT_NE(all.find("a=ed25519-sha256"), std::string::npos);
  EXPECT_NE(all.find("c=relaxed/relaxed"), std::string::npos);
  EXPECT_NE(all.find("d=example.com"), std::string::npos);
  // Oversigned From: listed twice in h=.
  EXPECT_NE(s.headers()[0].value.find("h=From:"), std::string::npos);

  const std::string message = relayed(s);
  const auto keys = records("example.com", {&rsa_key(), &ed_key()});
  EXPECT_EQ(python_verify(message, keys), (std::vector<bool>{true, true}));
  const std::string verdict = dkim_plugin_verdict(message, keys);
  EXPECT_NE(verdict.find("DKIM_VALID["), std::string::npos) << verdict;
  EXPECT_NE(verdict.find("a=rsa-sha256 bits=2048 result=pass"), std::string::npos) << verdict;
  EXPECT_NE(verdict.find("a=ed25519-sha256"), std::string::npos) << verdict;
  EXPECT_EQ(verdict.find("DKIM_INVALID"), std::string::npos) << verdict;

  EXPECT_TRUE(
      host_.logged("dkim_sign: signed d=example.com s=ed1 a=ed25519-sha256 "
                   "c=relaxed/relaxed (relay network 192.0.2.0/24)"));
  EXPECT_TRUE(host_.logged("dkim_sign: signed d=example.com s=rsa1 a=rsa-sha256"));
  ASSERT_TRUE(s.has_symbol("DKIM_SIGNED"));
  EXPECT_EQ(*s.symbol("DKIM_SIGNED")->detail,
            "d=example.com s=ed1 a=ed25519-sha256; d=example.com s=rsa1 a=rsa-sha256");
  EXPECT_FALSE(s.has_symbol("DKIM_SIGN_ERROR"));
  EXPECT_TRUE(host_.violations().empty());

  // A verifier that can fail: the same message with its body changed does not verify.
  std::string tampered = message;
  tampered.replace(tampered.find("see   you"), 3, "SEE");
  EXPECT_EQ(python_verify(tampered, keys), (std::vector<bool>{false, false}));
}

// Every canonicalization pair, with whitespace and folding that only "simple" keeps.
class DkimSignCanonTest : public DkimSignTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(DkimSignCanonTest, SignaturesVerify) {
  const std::string canon = GetParam();
  LoadedPlugin p = LoadedPlugin::open(host_, MAILGATE_DKIM_SIGN_PLUGIN,
                                      R"({"canonicalization": ")" + canon + "\"}");
  FakeSession s(host_);
  EXPECT_EQ(sign(s, p), MG_CONTINUE);
  ASSERT_EQ(signatures(s), 2u);
  EXPECT_NE(s.headers()[0].value.find("c=" + canon + ";"), std::string::npos)
      << s.headers()[0].value;
  const std::string message = relayed(s);
  const auto keys = records("example.com", {&rsa_key(), &ed_key()});
  EXPECT_EQ(python_verify(message, keys), (std::vector<bool>{true, true})) << message;
  const std::string verdict = dkim_plugin_verdict(message, keys);
  EXPECT_EQ(verdict.find("DKIM_INVALID"), std::string::npos) << verdict;
  EXPECT_EQ(verdict.find("DKIM_PERMERROR"), std::string::npos) << verdict;

  if (canon.starts_with("simple")) {
    // Simple header canonicalization hashes the fields' exact bytes: respacing one breaks it.
    std::string respaced = message;
    respaced.replace(respaced.find("Subject:   Lunch"), 16, "Subject: Lunch");
    EXPECT_EQ(python_verify(respaced, keys), (std::vector<bool>{false, false}));
  }
}

INSTANTIATE_TEST_SUITE_P(Canonicalizations, DkimSignCanonTest,
                         ::testing::Values("relaxed/relaxed", "simple/simple", "relaxed/simple",
                                           "simple/relaxed"));

TEST_F(DkimSignTest, UntrustedClientIsNotSigned) {
  LoadedPlugin p = LoadedPlugin::open(host_, MAILGATE_DKIM_SIGN_PLUGIN, "{}");
  FakeSession s(host_);
  EXPECT_EQ(sign(s, p, kHeader, kBody, "198.51.100.7"), MG_CONTINUE);
  EXPECT_EQ(signatures(s), 0u);
  EXPECT_TRUE(s.header_edits().empty());
  EXPECT_TRUE(s.symbols().empty());
  EXPECT_TRUE(host_.violations().empty());
}

TEST_F(DkimSignTest, AuthenticatedClientIsSignedWhereverItConnectsFrom) {
  LoadedPlugin p =
      LoadedPlugin::open(host_, MAILGATE_DKIM_SIGN_PLUGIN, R"({"sign_from": ["authenticated"]})");
  {
    FakeSession s(host_);
    s.set(MG_ITEM_AUTH_USER, "jane");
    EXPECT_EQ(sign(s, p, kHeader, kBody, "198.51.100.7"), MG_CONTINUE);
    EXPECT_EQ(signatures(s), 2u);
    EXPECT_TRUE(host_.logged("(authenticated as jane)"));
  }
  {
    // Only "authenticated" counts: a relay network client is not signed.
    FakeSession s(host_);
    EXPECT_EQ(sign(s, p), MG_CONTINUE);
    EXPECT_EQ(signatures(s), 0u);
  }
}

TEST_F(DkimSignTest, FromWithoutKeyIsNotSigned) {
  LoadedPlugin p = LoadedPlugin::open(host_, MAILGATE_DKIM_SIGN_PLUGIN, "{}");
  FakeSession s(host_);
  const std::string header = "From: someone@other.example\nTo: bob@example.org\nSubject: x\n";
  EXPECT_EQ(sign(s, p, header), MG_CONTINUE);
  EXPECT_EQ(signatures(s), 0u);
  EXPECT_TRUE(
      host_.logged("dkim_sign: not signing: no enabled key for other.example "
                   "(relay network 192.0.2.0/24)"));
}

TEST_F(DkimSignTest, FromFieldsThatDoNotNameOneDomainAreNotSigned) {
  LoadedPlugin p = LoadedPlugin::open(host_, MAILGATE_DKIM_SIGN_PLUGIN, "{}");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"From: a@example.com\nFrom: b@example.com\n", "the message has 2 From: fields"},
      {"To: b@example.org\n", "the message has 0 From: fields"},
      {"From: a@example.com, b@example.com\n", "From: has 2 addresses"},
      {"From: friends: a@example.com;\n", "From: has a group address"},
      {"From: a@[192.0.2.1]\n", "From: has a domain literal"},
      {"From: nobody\n", "From: has an address without '@'"},
  };
  for (const auto& [header, log] : cases) {
    FakeSession s(host_);
    EXPECT_EQ(sign(s, p, header), MG_CONTINUE) << header;
    EXPECT_EQ(signatures(s), 0u) << header;
    EXPECT_TRUE(host_.logged("dkim_sign: not signing: " + log)) << header;
  }
}

TEST_F(DkimSignTest, FromAddressForms) {
  LoadedPlugin p = LoadedPlugin::open(host_, MAILGATE_DKIM_SIGN_PLUGIN, "{}");
  for (const char* from :
       {"From: jane@EXAMPLE.com\n", "From: Jane (a, b) <jane@example.com>\n",
        "From: \"x@other.example, y\" <jane@example.com> (work)\n", "From: jane@example.com.\n"}) {
    FakeSession s(host_);
    EXPECT_EQ(sign(s, p, std::string(from) + "Subject: s\n"), MG_CONTINUE);
    EXPECT_EQ(signatures(s), 2u) << from;
  }
}

TEST_F(DkimSignTest, ABrokenKeyIsSkippedAndTheMailStillGoes) {
  // A key that passed no validation (the snapshot would refuse it; this checks fail-open).
  nlohmann::json keys = nlohmann::json::parse(keys_json({&rsa_key()}));
  keys.push_back(
      {{"selector", "bad"},
       {"algorithm", "rsa-sha256"},
       {"private_key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}});
  host_.set_policy("dkim_keys", "example.com", keys.dump());
  LoadedPlugin p = LoadedPlugin::open(host_, MAILGATE_DKIM_SIGN_PLUGIN, "{}");
  FakeSession s(host_);
  EXPECT_EQ(sign(s, p), MG_CONTINUE);
  ASSERT_EQ(signatures(s), 1u);
  ASSERT_TRUE(s.has_symbol("DKIM_SIGN_ERROR"));
  EXPECT_EQ(s.symbol("DKIM_SIGN_ERROR")->score, 0.0);
  EXPECT_NE(s.symbol("DKIM_SIGN_ERROR")->detail->find("d=example.com s=bad a=rsa-sha256: "),
            std::string::npos);
  EXPECT_TRUE(host_.logged("dkim_sign: key skipped: d=example.com s=bad a=rsa-sha256: "));
  EXPECT_EQ(python_verify(relayed(s), records("example.com", {&rsa_key()})),
            (std::vector<bool>{true}));
}

TEST_F(DkimSignTest, DomainsRestrictWhatIsSigned) {
  LoadedPlugin p =
      LoadedPlugin::open(host_, MAILGATE_DKIM_SIGN_PLUGIN, R"({"domains": ["example.net"]})");
  FakeSession s(host_);
  EXPECT_EQ(sign(s, p), MG_CONTINUE);
  EXPECT_EQ(signatures(s), 0u);
  EXPECT_TRUE(host_.logged("no enabled key for example.com among the configured domains"));
}

TEST_F(DkimSignTest, EnvelopeFallbackSignsWithTheSenderDomain) {
  const std::string header = "From: list@lists.other.example\nSubject: s\n";
  {
    LoadedPlugin p = LoadedPlugin::open(host_, MAILGATE_DKIM_SIGN_PLUGIN, "{}");
    FakeSession s(host_);
    EXPECT_EQ(sign(s, p, header), MG_CONTINUE);
    EXPECT_EQ(signatures(s), 0u);
  }
  LoadedPlugin p =
      LoadedPlugin::open(host_, MAILGATE_DKIM_SIGN_PLUGIN, R"({"envelope_fallback": true})");
  FakeSession s(host_);
  EXPECT_EQ(sign(s, p, header), MG_CONTINUE);  // MAIL FROM jane@example.com
  ASSERT_EQ(signatures(s), 2u);
  EXPECT_NE(s.headers()[0].value.find("d=example.com"), std::string::npos);
  EXPECT_EQ(python_verify(relayed(s), records("example.com", {&rsa_key(), &ed_key()})),
            (std::vector<bool>{true, true}));
}

TEST_F(DkimSignTest, SignedHeaderListIsConfigurable) {
  LoadedPlugin p = LoadedPlugin::open(host_, MAILGATE_DKIM_SIGN_PLUGIN,
                                      R"({"headers": ["from", "subject"], "oversign": []})");
  FakeSession s(host_);
  EXPECT_EQ(sign(s, p), MG_CONTINUE);
  ASSERT_EQ(signatures(s), 2u);
  EXPECT_NE(s.headers()[0].value.find("h=From:Subject;"), std::string::npos)
      << s.headers()[0].value;
  // To: is not signed: changing it keeps the signatures valid.
  std::string message = relayed(s);
  message.replace(message.find("To: bob@example.org"), 19, "To: eve@example.org");
  EXPECT_EQ(python_verify(message, records("example.com", {&rsa_key(), &ed_key()})),
            (std::vector<bool>{true, true}));
}

std::string create_error(std::string_view settings) {
  FakeHost host;
  try {
    LoadedPlugin::open(host, MAILGATE_DKIM_SIGN_PLUGIN, settings);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(DkimSignSettings, BadSettingsFailCreate) {
  EXPECT_NE(create_error(R"({"colour": 1})").find("unknown setting \"colour\""), std::string::npos);
  EXPECT_NE(create_error(R"({"headers": ["to"]})").find("must include \"from\""),
            std::string::npos);
  EXPECT_NE(create_error(R"({"canonicalization": "loose/simple"})")
                .find("\"canonicalization\" must be HEADER/BODY"),
            std::string::npos);
  EXPECT_NE(create_error(R"({"sign_from": ["everyone"]})").find("is not a kind of client"),
            std::string::npos);
  EXPECT_NE(create_error(R"({"headers": ["from", "x.*"]})").find("is not a header field name"),
            std::string::npos);
  EXPECT_EQ(create_error(R"({"sign_from": [], "domains": ["example.com"]})"), "");
}

}  // namespace
