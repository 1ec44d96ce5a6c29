// plugin_hpp_test.cc — the C++ layer (sdk/include/mailgate/plugin.hpp) through the fake host:
// which stages a descriptor registers, exceptions kept on the plugin's side of the C ABI, the
// entry point's ABI major check, and the typed Session accessors.
//
// This binary links many tests, so it must not define mailgate_plugin_entry: the plugin classes
// here are exported with make_descriptor()/accept_host(), the two halves of MAILGATE_PLUGIN.
// The macro itself is exercised by sample_plugin.cc, loaded with dlopen() in fake_host_test.cc.
#include <gtest/gtest.h>

#include <mailgate/fake_host.hpp>
#include <mailgate/plugin.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using mailgate::Action;
using mailgate::Plugin;
using mailgate::PluginContext;
using mailgate::Session;
using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::LoadedPlugin;

// --- stage registration --------------------------------------------------------------------------

class NothingOverridden : public Plugin {
 public:
  using Plugin::Plugin;
};

class OnlyRcpt : public Plugin {
 public:
  using Plugin::Plugin;
  Action on_rcpt(Session&, std::string_view) override { return Action::kReject; }
};

// Overrides in an intermediate base count for the classes derived from it.
class MiddleBase : public Plugin {
 public:
  using Plugin::Plugin;
  Action on_eom(Session&) override { return Action::kContinue; }
  void on_close(Session&) override {}
};
class Leaf final : public MiddleBase {
 public:
  using MiddleBase::MiddleBase;
  Action on_helo(Session&, std::string_view) override { return Action::kContinue; }
};

constexpr std::uint32_t bit(mg_stage stage) { return 1u << stage; }

static_assert(mailgate::overridden_stages<NothingOverridden>() == 0);
static_assert(mailgate::overridden_stages<OnlyRcpt>() == bit(MG_STAGE_RCPT));
static_assert(mailgate::overridden_stages<Leaf>() ==
              (bit(MG_STAGE_HELO) | bit(MG_STAGE_EOM) | bit(MG_STAGE_CLOSE)));

// The descriptor is a constant: no static initialisation runs when the .so is loaded.
constexpr mg_plugin kOnlyRcpt = mailgate::make_descriptor<OnlyRcpt>("only-rcpt", "2.0", 0);
static_assert(kOnlyRcpt.struct_size == sizeof(mg_plugin));
static_assert(kOnlyRcpt.abi_version == MG_ABI_VERSION);
static_assert(kOnlyRcpt.on_rcpt == &mailgate::detail::Trampolines<OnlyRcpt>::on_rcpt);
static_assert(kOnlyRcpt.on_connect == nullptr);

static_assert(mailgate::detail::valid_plugin_name("subject_tag-2"));
static_assert(!mailgate::detail::valid_plugin_name(""));
static_assert(!mailgate::detail::valid_plugin_name("Subject"));
static_assert(!mailgate::detail::valid_plugin_name("a b"));

TEST(PluginHpp, DescriptorRegistersOnlyOverriddenStages) {
  const mg_plugin d =
      mailgate::make_descriptor<OnlyRcpt>("only-rcpt", "2.0", MG_PLUGIN_NONBLOCKING);
  EXPECT_STREQ(d.name, "only-rcpt");
  EXPECT_STREQ(d.version, "2.0");
  EXPECT_EQ(d.flags, MG_PLUGIN_NONBLOCKING);
  EXPECT_NE(d.create, nullptr);
  EXPECT_NE(d.destroy, nullptr);
  EXPECT_NE(d.on_rcpt, nullptr);
  EXPECT_EQ(d.on_connect, nullptr);
  EXPECT_EQ(d.on_helo, nullptr);
  EXPECT_EQ(d.on_mail, nullptr);
  EXPECT_EQ(d.on_data, nullptr);
  EXPECT_EQ(d.on_header, nullptr);
  EXPECT_EQ(d.on_eoh, nullptr);
  EXPECT_EQ(d.on_body, nullptr);
  EXPECT_EQ(d.on_eom, nullptr);
  EXPECT_EQ(d.on_reset, nullptr);
  EXPECT_EQ(d.on_close, nullptr);

  const mg_plugin leaf = mailgate::make_descriptor<Leaf>("leaf", "1", 0);
  EXPECT_NE(leaf.on_helo, nullptr);
  EXPECT_NE(leaf.on_eom, nullptr);
  EXPECT_NE(leaf.on_close, nullptr);
  EXPECT_EQ(leaf.on_rcpt, nullptr);
}

// An entry point as MAILGATE_PLUGIN writes it, for a class of this file.
template <class P>
const mg_plugin* entry_for(std::uint32_t host_abi_version, const mg_host* host) {
  static constexpr mg_plugin descriptor = mailgate::make_descriptor<P>("test", "0.1", 0);
  return mailgate::accept_host(&descriptor, host_abi_version, host);
}

// --- the entry point's version check -------------------------------------------------------------

TEST(PluginHpp, EntryRefusesAnotherMajorAndSaysWhy) {
  FakeHost host;
  const std::uint32_t next_major = (MG_ABI_VERSION_MAJOR + 1u) << 16;
  EXPECT_EQ(entry_for<OnlyRcpt>(next_major, host.table()), nullptr);
  ASSERT_EQ(host.logs().size(), 1u);
  const mailgate::fake::LogLine line = host.logs()[0];
  EXPECT_EQ(line.level, MG_LOG_ERROR);
  EXPECT_NE(line.message.find("plugin test 0.1"), std::string::npos) << line.message;
  const std::string ours = "ABI 1." + std::to_string(MG_ABI_VERSION_MINOR);
  EXPECT_NE(line.message.find(ours), std::string::npos) << line.message;
  EXPECT_NE(line.message.find("ABI 2.0"), std::string::npos) << line.message;

  EXPECT_EQ(entry_for<OnlyRcpt>(0, host.table()), nullptr);      // major 0
  EXPECT_EQ(entry_for<OnlyRcpt>(next_major, nullptr), nullptr);  // no table to log to
}

TEST(PluginHpp, EntryAcceptsAnyMinorOfItsMajor) {
  const std::uint32_t later_minor = MG_ABI_VERSION + 7;
  const mg_plugin* d = entry_for<OnlyRcpt>(later_minor, nullptr);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->abi_version, MG_ABI_VERSION);
  EXPECT_STREQ(d->name, "test");
}

// --- exceptions never cross the C ABI
// ----------------------------------------------------------------

class Thrower : public Plugin {
 public:
  explicit Thrower(const PluginContext& context) : Plugin(context) {
    if (settings_json() == R"({"fail":true})") throw std::invalid_argument("fail was set");
    if (settings_json() == R"({"fail":"weird"})") throw 42;
  }
  Action on_connect(Session&) override { throw std::runtime_error("resolver exploded"); }
  Action on_helo(Session&, std::string_view) override { throw "not a std::exception"; }
  Action on_mail(Session& s, std::string_view) override {
    s.set_reply(451, "4.3.0", "never mind");
    std::vector<int> v;
    return static_cast<Action>(v.at(3));  // std::out_of_range
  }
  Action on_rcpt(Session&, std::string_view) override { return static_cast<Action>(99); }
  void on_reset(Session&) override { throw std::logic_error("reset went wrong"); }
};

TEST(PluginHpp, StageExceptionReportsFailureWithALogLine) {
  FakeHost host;
  LoadedPlugin plugin(host, &entry_for<Thrower>);
  FakeSession s(host);

  EXPECT_EQ(run_connect(plugin, s), MG_FAILED);
  EXPECT_TRUE(s.logged("exception in on_connect: resolver exploded; the plugin's fail mode applies"));
  EXPECT_EQ(s.logs().back().level, MG_LOG_ERROR);
  EXPECT_EQ(s.logs().back().session_id, *s.item(MG_ITEM_SESSION_ID));

  EXPECT_EQ(run_helo(plugin, s, "client.example"), MG_FAILED);
  EXPECT_TRUE(s.logged("exception in on_helo: unknown exception"));

  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_FAILED);
  EXPECT_TRUE(s.logged("exception in on_mail:"));

  EXPECT_EQ(run_rcpt(plugin, s, "b@example.com"), MG_FAILED);
  EXPECT_TRUE(s.logged("invalid Action"));

  run_reset(plugin, s);  // void stage: logged, nothing escapes
  EXPECT_TRUE(s.logged("exception in on_reset: reset went wrong"));
}

TEST(PluginHpp, ConstructorExceptionFailsCreateWithItsMessage) {
  FakeHost host;
  try {
    LoadedPlugin plugin(host, &entry_for<Thrower>, R"({"fail":true})");
    FAIL() << "create() should have failed";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "plugin test: create() failed: fail was set");
  }
  try {
    LoadedPlugin plugin(host, &entry_for<Thrower>, R"({"fail":"weird"})");
    FAIL() << "create() should have failed";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown exception"), std::string::npos) << e.what();
  }

  // Straight through the C ABI, with a short error buffer: truncated, still NUL-terminated.
  const mg_plugin* d = entry_for<Thrower>(MG_ABI_VERSION, host.table());
  char err[8];
  EXPECT_EQ(d->create(host.table(), R"({"fail":true})", err, sizeof(err)), nullptr);
  EXPECT_STREQ(err, "fail wa");
  // NULL settings are taken as "{}".
  void* state = d->create(host.table(), nullptr, err, sizeof(err));
  ASSERT_NE(state, nullptr);
  d->destroy(state);
}

// --- Session: typed access to every service ------------------------------------------------------

struct TxNote {
  explicit TxNote(int* destroyed) : destroyed_count(destroyed) {}
  ~TxNote() { ++*destroyed_count; }
  int* destroyed_count;
  std::string note;
};

class Inspector : public Plugin {
 public:
  using Plugin::Plugin;
  std::vector<std::string> seen;
  int notes_destroyed = 0;

  Action on_connect(Session& s) override {
    seen.push_back("addr=" + std::string(s.get(mailgate::Item::kClientAddr)));
    seen.push_back(std::string("auth=") + (s.find(mailgate::Item::kAuthUser) ? "yes" : "no"));
    const mailgate::DnsResult mx = s.dns("example.org", mailgate::DnsType::kMx);
    for (const mg_dns_record& r : mx)
      seen.push_back("mx=" + std::to_string(r.preference) + " " + r.text);
    const mailgate::DnsResult none = s.dns("nowhere.test", mailgate::DnsType::kA);
    seen.push_back("none=" + std::to_string(static_cast<int>(none.status())));
    return Action::kContinue;
  }
  Action on_mail(Session& s, std::string_view sender) override {
    seen.push_back("sender=" + std::string(sender));
    seen.push_back("size=" + std::string(s.mail_param("size").value_or("-")));
    seen.push_back(std::string("utf8=") + (s.mail_param("SMTPUTF8") ? "yes" : "no"));
    auto note = std::make_unique<TxNote>(&notes_destroyed);
    note->note = "from " + std::string(sender);
    s.set_data(std::move(note));
    return Action::kContinue;
  }
  Action on_rcpt(Session& s, std::string_view rcpt) override {
    if (rcpt.substr(0, 4) == "bot-") return s.reject(550, "5.7.1", "no bots");
    seen.push_back("rcpts_before=" + std::to_string(s.recipient_count()));
    return Action::kContinue;
  }
  Action on_eom(Session& s) override {
    for (const Session::Header& h : s.headers())
      seen.push_back("hdr " + std::string(h.name) + "=" + std::string(h.value));
    seen.push_back("subject=" + std::string(s.header("SUBJECT").value_or("-")));
    seen.push_back("body=" + s.body().value_or("<error>"));
    seen.push_back("body3=" + s.body(3).value_or("<error>"));
    for (std::string_view r : s.recipients()) seen.push_back("rcpt=" + std::string(r));
    seen.push_back("note=" + s.data<TxNote>()->note);
    s.add_symbol("INSPECTED", 1.5, "looked at it");
    s.add_symbol("PLAIN", -0.5);
    for (const Session::Symbol& sym : s.symbols())
      seen.push_back("sym " + std::string(sym.name) + "=" + std::to_string(sym.score) + " [" +
                     std::string(sym.detail) + "]");
    seen.push_back("score=" + std::to_string(s.score()));
    s.header_add("X-Inspected", "yes");
    s.header_remove("Received", 1);
    s.log(mailgate::LogLevel::kInfo, "inspected");
    return Action::kContinue;
  }
};

TEST(PluginHpp, SessionAccessorsReachEveryService) {
  FakeHost host;
  host.add_dns("example.org", MG_DNS_MX,
               mailgate::fake::DnsAnswer{MG_DNS_OK, {{"mx1.example.org", 10, 300}}, true});
  LoadedPlugin plugin(host, &entry_for<Inspector>);
  auto& self = *static_cast<Inspector*>(static_cast<Plugin*>(plugin.state()));
  FakeSession s(host);
  s.set(MG_ITEM_CLIENT_ADDR, "198.51.100.7");

  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  s.set_mail_param("SIZE", "1234").set_mail_param("SMTPUTF8");
  EXPECT_EQ(run_mail(plugin, s, "alice@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(plugin, s, "bob@example.com"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(plugin, s, "bot-7@example.com"), MG_REJECT);
  ASSERT_TRUE(s.reply());
  EXPECT_EQ(s.reply()->code, 550);
  EXPECT_EQ(s.reply()->enhanced, "5.7.1");
  EXPECT_EQ(s.reply()->text, "no bots");
  EXPECT_EQ(run_rcpt(plugin, s, "carol@example.com"), MG_CONTINUE);
  EXPECT_EQ(
      run_message(plugin, s, "Received: from a\nReceived: from b\nSubject: hi\n\nline 1\nline 2\n"),
      MG_CONTINUE);

  const std::vector<std::string> expected = {
      "addr=198.51.100.7",
      "auth=no",
      "mx=10 mx1.example.org",
      "none=" + std::to_string(MG_DNS_NXDOMAIN),
      "sender=alice@example.org",
      "size=1234",
      "utf8=yes",
      "rcpts_before=0",
      "rcpts_before=1",
      "hdr Received=from a",
      "hdr Received=from b",
      "hdr Subject=hi",
      "subject=hi",
      "body=line 1\r\nline 2\r\n",
      "body3=lin",
      "rcpt=bob@example.com",
      "rcpt=carol@example.com",
      "note=from alice@example.org",
      "sym INSPECTED=1.500000 [looked at it]",
      "sym PLAIN=-0.500000 []",
      "score=1.000000",
  };
  EXPECT_EQ(self.seen, expected);

  const std::vector<mailgate::fake::HeaderField> relayed = s.headers();
  ASSERT_EQ(relayed.size(), 3u);
  EXPECT_EQ(relayed[0].value, "from b");
  EXPECT_EQ(relayed[2].name, "X-Inspected");
  EXPECT_FALSE(s.symbol("PLAIN")->detail.has_value());
  EXPECT_TRUE(s.logged("inspected"));

  EXPECT_EQ(self.notes_destroyed, 0);
  run_reset(plugin, s);
  EXPECT_EQ(self.notes_destroyed, 1);  // the transaction's slot is freed after RESET
  EXPECT_EQ(host.dns_results_outstanding(), 0u);
  EXPECT_TRUE(host.violations().empty());
}

// --- ABI 1.4: a stage declared inline gets no DNS, the plugin's other stages do --------------

class DnsAtMailAndRcpt : public Plugin {
 public:
  using Plugin::Plugin;
  Action on_mail(Session& s, std::string_view) override { return lookup(s, "MAIL_DNS"); }
  Action on_rcpt(Session& s, std::string_view) override { return lookup(s, "RCPT_DNS"); }

 private:
  static Action lookup(Session& s, const char* symbol) {
    const mailgate::DnsResult a = s.dns("example.org", mailgate::DnsType::kA);
    s.add_symbol(symbol, static_cast<double>(a.status()));
    return Action::kContinue;
  }
};

const mg_plugin* inline_rcpt_entry(std::uint32_t host_abi_version, const mg_host* host) {
  static constexpr mg_plugin descriptor = mailgate::make_descriptor<DnsAtMailAndRcpt>(
      "inline-rcpt", "0.1", MG_PLUGIN_INLINE_STAGE(MG_STAGE_RCPT));
  return mailgate::accept_host(&descriptor, host_abi_version, host);
}

TEST(PluginHpp, InlineStageIsRefusedDnsLikeTheGatewayDoes) {
  FakeHost host;
  host.add_dns("example.org", MG_DNS_A,
               mailgate::fake::DnsAnswer{MG_DNS_OK, {{"192.0.2.1", 0, 300}}, true});
  LoadedPlugin plugin(host, &inline_rcpt_entry);
  FakeSession s(host);
  EXPECT_EQ(run_mail(plugin, s, "alice@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(plugin, s, "bob@example.com"), MG_CONTINUE);
  EXPECT_EQ(s.symbol("MAIL_DNS")->score, static_cast<double>(MG_DNS_OK));
  EXPECT_EQ(s.symbol("RCPT_DNS")->score, static_cast<double>(MG_DNS_ERROR));
  EXPECT_TRUE(s.logged("dns_query called by a non-blocking plugin: refused"));
}

class Settings : public Plugin {
 public:
  using Plugin::Plugin;
  Action on_connect(Session& s) override {
    const auto value = policy_lookup("plugin_settings", "long");
    s.add_symbol("LOOKUP_SIZE", value ? static_cast<double>(value->size()) : -1.0);
    s.add_symbol("MISSING", policy_lookup("plugin_settings", "nope") ? 1.0 : 0.0);
    const auto count = counter_add("k", 5, 1000);
    s.add_symbol("COUNT", count ? static_cast<double>(*count) : -1.0);
    return Action::kContinue;
  }
};

TEST(PluginHpp, PolicyLookupGrowsItsBufferAndCountersReportUnavailability) {
  FakeHost host;
  host.set_policy("plugin_settings", "long", std::string(5000, 'x'));
  LoadedPlugin plugin(host, &entry_for<Settings>, R"({"a":1})");
  EXPECT_EQ(static_cast<Plugin*>(plugin.state())->settings_json(), R"({"a":1})");
  FakeSession s(host);
  run_connect(plugin, s);
  EXPECT_EQ(s.symbol("LOOKUP_SIZE")->score, 5000);
  EXPECT_EQ(s.symbol("MISSING")->score, 0);
  EXPECT_EQ(s.symbol("COUNT")->score, 5);
  run_connect(plugin, s);
  EXPECT_EQ(s.symbol("COUNT")->score, 10);
  host.set_counters_available(false);
  run_connect(plugin, s);
  EXPECT_EQ(s.symbol("COUNT")->score, -1);
}

TEST(PluginHpp, DnsResultIsMoveOnlyAndFreesOnce) {
  FakeHost host;
  host.add_dns("example.net", MG_DNS_TXT, std::vector<std::string>{"v=spf1 -all"});
  FakeSession s(host);
  const Session session(host.table(), s.handle());
  {
    mailgate::DnsResult a = session.dns("EXAMPLE.NET.", mailgate::DnsType::kTxt);
    EXPECT_TRUE(a.ok());
    EXPECT_FALSE(a.secure());
    ASSERT_EQ(a.texts(), std::vector<std::string_view>{"v=spf1 -all"});
    mailgate::DnsResult b = std::move(a);
    EXPECT_EQ(a.status(), mailgate::DnsStatus::kError);  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(b.size(), 1u);
    a = std::move(b);
    EXPECT_EQ(host.dns_results_outstanding(), 1u);
  }
  EXPECT_EQ(host.dns_results_outstanding(), 0u);
  EXPECT_TRUE(host.violations().empty());
}

}  // namespace

// --- ABI 1.3: body replacement and quarantine ----------------------------------------------------

// Replaces the body in chunks given by the settings ("chunks" separated by '|') and quarantines
// with the settings' reason; refused calls are counted in the "refused" log line.
class BodyRewriter : public Plugin {
 public:
  explicit BodyRewriter(const PluginContext& c) : Plugin(c) {}
  Action on_eoh(Session& s) override {
    refused_early_ = !s.body_replace("too early") && !s.quarantine("too early");
    return Action::kContinue;
  }
  Action on_eom(Session& s) override {
    EXPECT_TRUE(s.has_body_services());
    EXPECT_TRUE(refused_early_);
    const std::string& text = settings_json();
    std::size_t start = 0;
    for (;;) {
      const std::size_t bar = text.find('|', start);
      const std::string chunk = text.substr(start, bar == std::string::npos ? bar : bar - start);
      if (!s.body_replace(chunk)) s.log(mailgate::LogLevel::kInfo, "refused " + chunk);
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
    EXPECT_FALSE(s.quarantine(""));
    EXPECT_TRUE(s.quarantine("held\r\nfor review"));
    return Action::kContinue;
  }
  bool refused_early_ = false;
};

TEST(PluginHpp, BodyReplaceAppendsWithinOneCallbackAndQuarantineKeepsOneLine) {
  FakeHost host;
  LoadedPlugin plugin(host, &entry_for<BodyRewriter>, "new\r\n|.dot line\r\n|end\r\n");
  FakeSession s(host);
  EXPECT_EQ(run_message(plugin, s, "Subject: x\n\nold body\n"), MG_CONTINUE);
  ASSERT_TRUE(s.replaced_body().has_value());
  EXPECT_EQ(*s.replaced_body(), "new\r\n.dot line\r\nend\r\n");
  EXPECT_EQ(s.body(), "old body\r\n");  // body_read() still sees the received body
  EXPECT_EQ(s.quarantine_reason(), "held  for review");
  // A second EOM callback starts the body over instead of appending to the first one's.
  EXPECT_EQ(run_eom(plugin, s), MG_CONTINUE);
  EXPECT_EQ(*s.replaced_body(), "new\r\n.dot line\r\nend\r\n");
  // The refusals in EOH were refusals of the stage rule, which the fake lists; the empty reason
  // was a malformed call.
  EXPECT_EQ(host.violations().size(), 4u);
  run_reset(plugin, s);
  EXPECT_FALSE(s.replaced_body().has_value());
  EXPECT_FALSE(s.quarantine_reason().has_value());
}

TEST(PluginHpp, BodyReplaceOverTheMaximumSizeIsRefusedAndKeepsWhatWasThere) {
  FakeHost host;
  LoadedPlugin plugin(host, &entry_for<BodyRewriter>, "0123456789|abcdefghij|X");
  FakeSession s(host);
  s.set_max_message_size(15);
  EXPECT_EQ(run_message(plugin, s, "Subject: x\n\nold\n"), MG_CONTINUE);
  EXPECT_EQ(*s.replaced_body(), "0123456789X");
  EXPECT_TRUE(s.logged("refused abcdefghij"));
}

TEST(PluginHpp, BodyServicesAreFalseOnAnOlderHost) {
  FakeHost host;
  mg_host older = *host.table();
  older.struct_size = offsetof(mg_host, store_fail_mode) + sizeof(older.store_fail_mode);
  FakeSession s(host);
  s.set_stage(MG_STAGE_EOM);
  Session session(&older, s.handle());
  EXPECT_FALSE(session.has_body_services());
  EXPECT_FALSE(session.body_replace("x"));
  EXPECT_FALSE(session.quarantine("x"));
}
