// dnsbl_test.cc — unit tests of the built-in `dnsbl` plugin (plugins/dnsbl/) with the SDK's fake
// host: the built dnsbl.so is loaded as the gateway loads it, and the zones are the JSON the real
// policy snapshot makes from real dnsbl_zones rows. Also the plugin's pure parts (query names,
// URL domains, zone rows, answer cache) called directly.
// Timing: the fake host can delay an answer (real time); a zone's timeout must bound the wait
// for it, and zones must be asked in parallel. Bounds are generous (a loaded CI machine) but
// each is well under what a serial or unbounded plugin would take.
#include <gtest/gtest.h>

#include <chrono>
#include <mailgate/fake_host.hpp>
#include <stdexcept>
#include <string>
#include <thread>

#include "../policy/policy_test_util.h"
#include "answer_cache.h"
#include "policy/snapshot.h"
#include "query_names.h"
#include "zones.h"

#ifndef MAILGATE_DNSBL_PLUGIN
#error "MAILGATE_DNSBL_PLUGIN (the built dnsbl.so) comes from plugins/dnsbl/CMakeLists.txt"
#endif

namespace {

using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::LoadedPlugin;
using Clock = std::chrono::steady_clock;

// The policy_lookup("dnsbl_zones", "*") value the gateway gives for these INSERTed rows.
std::string zones_json(const std::string& inserts) {
  mailgate::policy::testing::TempDir dir;
  auto db = mailgate::policy::testing::make_db(dir.file("p.db"));
  mailgate::policy::testing::sql(db.get(), inserts);
  auto snap = mailgate::policy::read_snapshot(db.get(), "p.db");
  if (!snap) throw std::runtime_error(mailgate::policy::join_problems(snap.error()));
  std::string value;
  if (!(*snap)->lookup("dnsbl_zones", "*", &value)) throw std::runtime_error("no enabled zone");
  return value;
}

std::string zone(const std::string& name, const std::string& kind, const std::string& symbol,
                 double score, int timeout_ms, const std::string& codes = "{}") {
  return "INSERT INTO dnsbl_zones (zone, kind, symbol, score, codes, timeout_ms) VALUES ('" + name +
         "', '" + kind + "', '" + symbol + "', " + std::to_string(score) + ", '" + codes + "', " +
         std::to_string(timeout_ms) + ");";
}

const std::string kZenCodes = R"({"127.0.0.2": {"symbol": "RBL_ZEN_SBL", "score": 4},)"
                              R"( "127.0.0.10": {"symbol": "RBL_ZEN_PBL", "score": 0.5}})";
const std::string kStandardZones = zone("zen.test", "ip", "RBL_ZEN", 1, 1000, kZenCodes) +
                                   zone("dbl.test", "domain", "DBL", 2.5, 1000);

class DnsblTest : public ::testing::Test {
 protected:
  void use(const std::string& inserts, std::string_view settings = "{}") {
    host_.set_policy("dnsbl_zones", "*", zones_json(inserts));
    plugin_.emplace(LoadedPlugin::open(host_, MAILGATE_DNSBL_PLUGIN, settings));
  }
  LoadedPlugin& plugin() { return *plugin_; }

  // CONNECT from `client`, MAIL FROM `sender`, the message; the EOM action. Leaves the session
  // open for inspection.
  mg_action message(FakeSession& s, const std::string& client, const std::string& sender,
                    const std::string& body = "Hello.\n") {
    s.set(MG_ITEM_CLIENT_ADDR, client);
    mg_action a = run_connect(plugin(), s);
    if (a != MG_CONTINUE) return a;
    s.set(MG_ITEM_SENDER, sender);
    a = run_mail(plugin(), s, sender);
    if (a != MG_CONTINUE) return a;
    a = run_rcpt(plugin(), s, "user@example.org");
    if (a != MG_CONTINUE) return a;
    return run_message(plugin(), s, "Subject: test\nFrom: <" + sender + ">\n\n" + body);
  }

  std::size_t queries_of(const std::string& name) const {
    std::size_t n = 0;
    for (const auto& q : host_.dns_queries())
      if (q.first == name && q.second == MG_DNS_A) ++n;
    return n;
  }

  FakeHost host_;
  std::optional<LoadedPlugin> plugin_;
};

// --- pure parts ---------------------------------------------------------------------------------

TEST(DnsblNames, ReversedAddresses) {
  using mailgate::dnsbl::reversed_ip;
  EXPECT_EQ(reversed_ip("192.0.2.10"), "10.2.0.192");
  EXPECT_EQ(reversed_ip("2001:db8::1"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
  EXPECT_EQ(reversed_ip("::ffff:192.0.2.10"), "10.2.0.192");  // IPv4-mapped: asked as IPv4
  EXPECT_EQ(reversed_ip("not-an-ip"), std::nullopt);
  EXPECT_EQ(reversed_ip("192.0.2"), std::nullopt);
}

TEST(DnsblNames, PrivateAddresses) {
  using mailgate::dnsbl::private_address;
  for (const char* a :
       {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.0.1",
        "100.64.0.1", "0.0.0.0", "::1", "::", "fd00::1", "fe80::1", "::ffff:10.0.0.1", "garbage"})
    EXPECT_TRUE(private_address(a)) << a;
  for (const char* a : {"192.0.2.10", "172.32.0.1", "8.8.8.8", "100.128.0.1", "2001:db8::1"})
    EXPECT_FALSE(private_address(a)) << a;
}

TEST(DnsblNames, Domains) {
  using mailgate::dnsbl::address_domain;
  using mailgate::dnsbl::domain_candidates;
  using mailgate::dnsbl::normalize_domain;
  EXPECT_EQ(normalize_domain("Mail.Example.COM."), "mail.example.com");
  EXPECT_EQ(normalize_domain("localhost"), std::nullopt);  // one label
  EXPECT_EQ(normalize_domain("192.0.2.1"), std::nullopt);  // an IP literal
  EXPECT_EQ(normalize_domain("a..b"), std::nullopt);
  EXPECT_EQ(normalize_domain("-a.b"), std::nullopt);
  EXPECT_EQ(normalize_domain("a b.c"), std::nullopt);
  EXPECT_EQ(address_domain("Alice@Shop.Example.Test"), "shop.example.test");
  EXPECT_EQ(address_domain(""), std::nullopt);
  EXPECT_EQ(address_domain("postmaster"), std::nullopt);
  EXPECT_EQ(domain_candidates("www.shop.example.test"),
            (std::vector<std::string>{"www.shop.example.test", "example.test"}));
  EXPECT_EQ(domain_candidates("example.test"), (std::vector<std::string>{"example.test"}));
}

TEST(DnsblNames, UrlDomains) {
  using mailgate::dnsbl::url_domains;
  const std::string body =
      "Visit https://Shop.Evil.Test/buy?x=1 or http://user:pw@login.phish.test:8080/path.\r\n"
      "<a href=3D\"http://qp.example.test/a\">link</a> and www.bare.test, again "
      "HTTPS://shop.evil.test/other; ftp://files.example.test/f; http://192.0.2.7/ip-host;\r\n"
      "soft break: http://long.examp=\r\nle.test/x; not a url: xhttp://no.test, "
      "mailto:a@b.test\r\n";
  EXPECT_EQ(url_domains(body, 20),
            (std::vector<std::string>{"shop.evil.test", "login.phish.test", "qp.example.test",
                                      "www.bare.test", "files.example.test", "long.example.test"}));
  EXPECT_EQ(url_domains(body, 2), (std::vector<std::string>{"shop.evil.test", "login.phish.test"}));
  EXPECT_TRUE(url_domains("no links here", 10).empty());
}

TEST(DnsblZoneRows, ParsedFromTheSnapshotAndAnswersClassified) {
  std::vector<std::string> skipped;
  const auto list = mailgate::dnsbl::parse_zones(zones_json(kStandardZones), &skipped);
  EXPECT_TRUE(skipped.empty());
  ASSERT_EQ(list.zones.size(), 2u);
  const auto& dbl = list.zones[0];
  const auto& zen = list.zones[1];
  EXPECT_EQ(dbl.name, "dbl.test");
  EXPECT_EQ(dbl.kind, mailgate::dnsbl::ZoneKind::kDomain);
  EXPECT_EQ(zen.kind, mailgate::dnsbl::ZoneKind::kIp);
  EXPECT_EQ(zen.timeout_ms, 1000u);
  using mailgate::dnsbl::AnswerKind;
  mailgate::dnsbl::Listing l;
  EXPECT_EQ(classify_answer(zen, "127.0.0.2", &l), AnswerKind::kListed);
  EXPECT_EQ(l.symbol, "RBL_ZEN_SBL");
  EXPECT_EQ(l.score, 4);
  EXPECT_EQ(classify_answer(zen, "127.0.0.4", &l), AnswerKind::kListed);  // not in codes
  EXPECT_EQ(l.symbol, "RBL_ZEN");
  EXPECT_EQ(l.score, 1);
  EXPECT_EQ(classify_answer(zen, "127.255.255.254", &l), AnswerKind::kErrorCode);
  EXPECT_EQ(classify_answer(zen, "192.0.2.1", &l), AnswerKind::kNotLoopback);
  EXPECT_EQ(classify_answer(zen, "::1", &l), AnswerKind::kNotLoopback);

  // A row the plugin cannot use is skipped and named; the others stay.
  const auto bad = mailgate::dnsbl::parse_zones(
      R"([{"zone":"a.test","kind":"ip","symbol":"A","score":1,"codes":{},"timeout_ms":100},
          {"zone":"b.test","kind":"dns","symbol":"B","score":1,"codes":{},"timeout_ms":100}])",
      &skipped);
  EXPECT_EQ(bad.zones.size(), 1u);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0], "dnsbl_zones row 'b.test': kind must be ip or domain; skipped");
}

TEST(DnsblCache, ExpiresAndEvictsTheLeastRecentlyUsed) {
  mailgate::dnsbl::AnswerCache cache(2);
  cache.put("a", {MG_DNS_OK, {"127.0.0.2"}}, 1000);
  cache.put("b", {MG_DNS_NXDOMAIN, {}}, 2000);
  ASSERT_TRUE(cache.get("a", 999));
  EXPECT_EQ(cache.get("a", 999)->addresses, std::vector<std::string>{"127.0.0.2"});
  EXPECT_FALSE(cache.get("a", 1000));  // expired at its time
  EXPECT_EQ(cache.size(), 1u);
  cache.put("a", {MG_DNS_OK, {"127.0.0.3"}}, 5000);
  ASSERT_TRUE(cache.get("b", 10));  // b is now the most recently used
  cache.put("c", {MG_DNS_OK, {"127.0.0.4"}}, 5000);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.get("a", 10));  // evicted: least recently used
  EXPECT_TRUE(cache.get("b", 10));
  EXPECT_TRUE(cache.get("c", 10));
  mailgate::dnsbl::AnswerCache none(0);
  none.put("a", {MG_DNS_OK, {}}, 5000);
  EXPECT_FALSE(none.get("a", 0));
}

// --- the plugin
// -----------------------------------------------------------------------------------

TEST_F(DnsblTest, ListedClientGetsTheCodesSymbol) {
  use(kStandardZones);
  host_.add_dns("10.2.0.192.zen.test", MG_DNS_A, {"127.0.0.2"});
  FakeSession s(host_);
  EXPECT_EQ(message(s, "192.0.2.10", "alice@clean.test"), MG_CONTINUE);
  auto sym = s.symbol("RBL_ZEN_SBL");
  ASSERT_TRUE(sym);
  EXPECT_EQ(sym->score, 4);
  EXPECT_EQ(sym->detail, "zen.test 127.0.0.2 client 192.0.2.10");
  EXPECT_EQ(s.symbols().size(), 1u);
  EXPECT_TRUE(host_.logged("listed RBL_ZEN_SBL=4 (zen.test 127.0.0.2 client 192.0.2.10)"));
  // The sender's domain was asked of the domain zone, not of the ip zone.
  EXPECT_EQ(queries_of("clean.test.dbl.test"), 1u);
  EXPECT_EQ(queries_of("clean.test.zen.test"), 0u);
  EXPECT_TRUE(host_.violations().empty()) << host_.violations()[0];
}

TEST_F(DnsblTest, AnswerWithoutCodesEntryGetsTheZoneSymbolAndSeveralAnswersEachCount) {
  use(kStandardZones);
  host_.add_dns("11.2.0.192.zen.test", MG_DNS_A, {"127.0.0.4", "127.0.0.10"});
  FakeSession s(host_);
  EXPECT_EQ(message(s, "192.0.2.11", "alice@clean.test"), MG_CONTINUE);
  ASSERT_TRUE(s.symbol("RBL_ZEN"));
  EXPECT_EQ(s.symbol("RBL_ZEN")->score, 1);
  ASSERT_TRUE(s.symbol("RBL_ZEN_PBL"));
  EXPECT_EQ(s.symbol("RBL_ZEN_PBL")->score, 0.5);
}

TEST_F(DnsblTest, Ipv6ClientIsAskedByNibbles) {
  use(kStandardZones);
  host_.add_dns("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.test",
                MG_DNS_A, {"127.0.0.2"});
  FakeSession s(host_);
  EXPECT_EQ(message(s, "2001:db8::1", "alice@clean.test"), MG_CONTINUE);
  ASSERT_TRUE(s.symbol("RBL_ZEN_SBL"));
  EXPECT_EQ(s.symbol("RBL_ZEN_SBL")->detail, "zen.test 127.0.0.2 client 2001:db8::1");
}

TEST_F(DnsblTest, SenderAndUrlDomainsListedKeepOneSymbolWithBothDetails) {
  use(kStandardZones);
  host_.add_dns("spam.test.dbl.test", MG_DNS_A, {"127.0.1.2"});
  host_.add_dns("evil.test.dbl.test", MG_DNS_A, {"127.0.1.2"});
  FakeSession s(host_);
  EXPECT_EQ(message(s, "192.0.2.12", "bob@mail.spam.test",
                    "Buy now: https://www.evil.test/offer and https://spam.test/again\n"),
            MG_CONTINUE);
  auto sym = s.symbol("DBL");
  ASSERT_TRUE(sym);
  EXPECT_EQ(sym->score, 2.5);  // once, not summed
  EXPECT_EQ(sym->detail,
            "dbl.test 127.0.1.2 sender domain spam.test, dbl.test 127.0.1.2 url domain evil.test");
  // The sender's names (and its two-label parent) were asked once, not again for the URL.
  EXPECT_EQ(queries_of("mail.spam.test.dbl.test"), 1u);
  EXPECT_EQ(queries_of("spam.test.dbl.test"), 1u);
  EXPECT_EQ(queries_of("www.evil.test.dbl.test"), 1u);
  EXPECT_EQ(queries_of("evil.test.dbl.test"), 1u);
}

TEST_F(DnsblTest, UrlDomainsAreCapped) {
  use(kStandardZones, R"({"max_url_domains": 3})");
  FakeSession s(host_);
  std::string body;
  for (int i = 0; i < 10; ++i) body += "http://d" + std::to_string(i) + ".test/ ";
  EXPECT_EQ(message(s, "192.0.2.13", "", body + "\n"), MG_CONTINUE);
  std::size_t url_queries = 0;
  for (const auto& q : host_.dns_queries())
    if (q.first.size() > 9 && q.first.compare(q.first.size() - 9, 9, ".dbl.test") == 0)
      ++url_queries;
  EXPECT_EQ(url_queries, 3u);
  EXPECT_EQ(queries_of("d2.test.dbl.test"), 1u);
  EXPECT_EQ(queries_of("d3.test.dbl.test"), 0u);
}

TEST_F(DnsblTest, AnswersOutsideLoopbackAndErrorCodesAreIgnoredAndLogged) {
  use(kStandardZones);
  host_.add_dns("20.2.0.192.zen.test", MG_DNS_A, {"192.0.2.99"});
  host_.add_dns("broken.test.dbl.test", MG_DNS_A, {"127.255.255.254"});
  FakeSession s(host_);
  EXPECT_EQ(message(s, "192.0.2.20", "x@broken.test"), MG_CONTINUE);
  EXPECT_TRUE(s.symbols().empty());
  EXPECT_TRUE(
      host_.logged("zone zen.test answered 192.0.2.99 for 20.2.0.192.zen.test: not in "
                   "127.0.0.0/8, ignored (a list that answers everything is broken)"));
  EXPECT_TRUE(
      host_.logged("zone dbl.test answered 127.255.255.254 for broken.test.dbl.test: the "
                   "list's error code (query refused), ignored"));
}

TEST_F(DnsblTest, DeadZoneIsSkippedWithinItsTimeoutAndZonesAreAskedInParallel) {
  use(zone("dead.test", "ip", "RBL_DEAD", 3, 200) + zone("slow1.test", "ip", "RBL_SLOW1", 1, 2000) +
      zone("slow2.test", "ip", "RBL_SLOW2", 1, 2000) +
      zone("slow3.test", "ip", "RBL_SLOW3", 1, 2000));
  host_.set_dns_delay_ms("30.2.0.192.dead.test", MG_DNS_A, 2500);
  host_.add_dns("30.2.0.192.dead.test", MG_DNS_A, {"127.0.0.2"});
  for (const char* z : {"slow1.test", "slow2.test", "slow3.test"}) {
    host_.set_dns_delay_ms(std::string("30.2.0.192.") + z, MG_DNS_A, 400);
    host_.add_dns(std::string("30.2.0.192.") + z, MG_DNS_A, {"127.0.0.2"});
  }
  FakeSession s(host_);
  const auto start = Clock::now();
  EXPECT_EQ(message(s, "192.0.2.30", ""), MG_CONTINUE);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  // Three zones of 400 ms each asked one after the other would take 1200 ms; the dead one
  // would hold the message 2500 ms.
  EXPECT_LT(took.count(), 1000) << "the message waited " << took.count() << " ms";
  EXPECT_GE(took.count(), 390);
  EXPECT_TRUE(s.has_symbol("RBL_SLOW1"));
  EXPECT_TRUE(s.has_symbol("RBL_SLOW2"));
  EXPECT_TRUE(s.has_symbol("RBL_SLOW3"));
  EXPECT_FALSE(s.has_symbol("RBL_DEAD"));
  EXPECT_TRUE(host_.logged("skipped dead.test (client 192.0.2.30: no answer within 200 ms)"));
}

TEST_F(DnsblTest, TimeoutCountsFromConnectSoAFastSessionStillWaitsOnlyTheRest) {
  use(zone("slow.test", "ip", "RBL_SLOW", 1, 1500));
  host_.set_dns_delay_ms("31.2.0.192.slow.test", MG_DNS_A, 600);
  host_.add_dns("31.2.0.192.slow.test", MG_DNS_A, {"127.0.0.2"});
  FakeSession s(host_);
  s.set(MG_ITEM_CLIENT_ADDR, "192.0.2.31");
  ASSERT_EQ(run_connect(plugin(), s), MG_CONTINUE);  // returns at once
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  const auto start = Clock::now();
  ASSERT_EQ(run_mail(plugin(), s, ""), MG_CONTINUE);
  ASSERT_EQ(run_message(plugin(), s, "Subject: x\n\nbody\n"), MG_CONTINUE);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  EXPECT_LT(took.count(), 300);  // the answer came while the client was talking
  EXPECT_TRUE(s.has_symbol("RBL_SLOW"));
}

TEST_F(DnsblTest, AnswersAreCachedUntilTheirTtl) {
  use(kStandardZones);
  mailgate::fake::DnsAnswer listed;
  listed.records.push_back({"127.0.0.2", 0, 60});  // TTL 60 s
  host_.add_dns("40.2.0.192.zen.test", MG_DNS_A, listed);
  for (int i = 0; i < 3; ++i) {
    FakeSession s(host_);
    EXPECT_EQ(message(s, "192.0.2.40", "a@clean.test"), MG_CONTINUE);
    EXPECT_TRUE(s.has_symbol("RBL_ZEN_SBL")) << i;
  }
  EXPECT_EQ(queries_of("40.2.0.192.zen.test"), 1u);
  EXPECT_EQ(queries_of("clean.test.dbl.test"), 1u);  // NXDOMAIN is cached too
  host_.advance_time_ms(61 * 1000);
  FakeSession s(host_);
  EXPECT_EQ(message(s, "192.0.2.40", "a@clean.test"), MG_CONTINUE);
  EXPECT_TRUE(s.has_symbol("RBL_ZEN_SBL"));
  EXPECT_EQ(queries_of("40.2.0.192.zen.test"), 2u);  // expired: asked again
  EXPECT_EQ(queries_of("clean.test.dbl.test"), 1u);  // the negative TTL (300 s) still holds
}

TEST_F(DnsblTest, ServfailIsNotCachedAndIsLogged) {
  use(kStandardZones);
  host_.add_dns_status("41.2.0.192.zen.test", MG_DNS_A, MG_DNS_TEMPFAIL);
  for (int i = 0; i < 2; ++i) {
    FakeSession s(host_);
    EXPECT_EQ(message(s, "192.0.2.41", ""), MG_CONTINUE);
    EXPECT_TRUE(s.symbols().empty());
  }
  EXPECT_EQ(queries_of("41.2.0.192.zen.test"), 2u);
  EXPECT_TRUE(host_.logged("skipped zen.test (client 192.0.2.41: DNS timeout or SERVFAIL)"));
}

TEST_F(DnsblTest, ZoneFailingRepeatedlyIsSuspended) {
  use(zone("dead.test", "ip", "RBL_DEAD", 3, 50), R"({"dead_after": 2, "dead_retry_s": 600})");
  // A late answer would fill the cache (and serve the next message): this server fails.
  host_.set_dns_delay_ms("50.2.0.192.dead.test", MG_DNS_A, 150);
  host_.add_dns_status("50.2.0.192.dead.test", MG_DNS_A, MG_DNS_TEMPFAIL);
  for (int i = 0; i < 2; ++i) {
    FakeSession s(host_);
    EXPECT_EQ(message(s, "192.0.2.50", ""), MG_CONTINUE);
  }
  // Both late answers come back; then the zone is suspended.
  for (int i = 0; i < 100 && !host_.logged("zone dead.test failed 2 times in a row"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(
      host_.logged("dnsbl: zone dead.test failed 2 times in a row (last: no answer within "
                   "its timeout); not asked for the next 600000 ms"));
  FakeSession s(host_);
  EXPECT_EQ(message(s, "192.0.2.50", ""), MG_CONTINUE);
  // A query would be recorded once its 150 ms delay is over: wait that out before counting.
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  EXPECT_EQ(queries_of("50.2.0.192.dead.test"), 2u);
  EXPECT_TRUE(
      host_.logged("skipped dead.test (client 192.0.2.50: not asked, the zone is suspended "
                   "after 2 failures in a row)"));
}

TEST_F(DnsblTest, LateAnswerIsNotUsedButFillsTheCache) {
  use(zone("slow.test", "ip", "RBL_SLOW", 2, 50));
  host_.set_dns_delay_ms("51.2.0.192.slow.test", MG_DNS_A, 150);
  host_.add_dns("51.2.0.192.slow.test", MG_DNS_A, {"127.0.0.2"});
  {
    FakeSession s(host_);
    EXPECT_EQ(message(s, "192.0.2.51", ""), MG_CONTINUE);
    EXPECT_FALSE(s.has_symbol("RBL_SLOW"));
  }
  for (int i = 0; i < 100 && queries_of("51.2.0.192.slow.test") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the worker stores it
  FakeSession s(host_);
  EXPECT_EQ(message(s, "192.0.2.51", ""), MG_CONTINUE);
  EXPECT_TRUE(s.has_symbol("RBL_SLOW"));
  EXPECT_EQ(queries_of("51.2.0.192.slow.test"), 1u);
}

TEST_F(DnsblTest, PrivateRelayAndAuthenticatedClientsAreNotAsked) {
  use(kStandardZones);
  {
    FakeSession s(host_);
    EXPECT_EQ(message(s, "10.0.0.5", ""), MG_CONTINUE);
  }
  host_.set_policy("relay_networks", "192.0.2.60", "192.0.2.0/24");
  {
    FakeSession s(host_);
    EXPECT_EQ(message(s, "192.0.2.60", ""), MG_CONTINUE);
  }
  {
    FakeSession s(host_);
    s.set(MG_ITEM_AUTH_USER, "alice");
    host_.add_dns("spam.test.dbl.test", MG_DNS_A, {"127.0.1.2"});
    EXPECT_EQ(message(s, "192.0.2.61", "a@spam.test", "http://spam.test/\n"), MG_CONTINUE);
    EXPECT_TRUE(s.symbols().empty());
  }
  for (const auto& q : host_.dns_queries())
    EXPECT_TRUE(q.first == "61.2.0.192.zen.test") << "asked " << q.first;
}

TEST_F(DnsblTest, PrivateClientIsAskedWhenSoSet) {
  use(kStandardZones, R"({"skip_private": false})");
  host_.add_dns("2.0.0.127.zen.test", MG_DNS_A, {"127.0.0.2"});
  FakeSession s(host_);
  EXPECT_EQ(message(s, "127.0.0.2", ""), MG_CONTINUE);
  EXPECT_TRUE(s.has_symbol("RBL_ZEN_SBL"));
}

TEST_F(DnsblTest, ClientBatchServesEveryTransactionOfTheConnection) {
  use(kStandardZones);
  host_.add_dns("70.2.0.192.zen.test", MG_DNS_A, {"127.0.0.2"});
  FakeSession s(host_);
  EXPECT_EQ(message(s, "192.0.2.70", "a@clean.test"), MG_CONTINUE);
  EXPECT_TRUE(s.has_symbol("RBL_ZEN_SBL"));
  run_reset(plugin(), s);
  s.set(MG_ITEM_SENDER, "b@clean.test");
  ASSERT_EQ(run_mail(plugin(), s, "b@clean.test"), MG_CONTINUE);
  ASSERT_EQ(run_message(plugin(), s, "Subject: second\n\nagain\n"), MG_CONTINUE);
  EXPECT_TRUE(s.has_symbol("RBL_ZEN_SBL"));
  EXPECT_EQ(queries_of("70.2.0.192.zen.test"), 1u);
}

TEST_F(DnsblTest, HeaderNamesTheListingsAndForgedOnesAreRemoved) {
  use(kStandardZones, R"({"header": "X-Mailgate-DNSBL"})");
  host_.add_dns("80.2.0.192.zen.test", MG_DNS_A, {"127.0.0.2"});
  FakeSession s(host_);
  s.set(MG_ITEM_CLIENT_ADDR, "192.0.2.80");
  ASSERT_EQ(run_connect(plugin(), s), MG_CONTINUE);
  ASSERT_EQ(run_mail(plugin(), s, ""), MG_CONTINUE);
  ASSERT_EQ(run_message(plugin(), s, "X-Mailgate-DNSBL: none, trust me\nSubject: x\n\nbody\n"),
            MG_CONTINUE);
  EXPECT_EQ(s.header("X-Mailgate-DNSBL"), "RBL_ZEN_SBL=4 (zen.test 127.0.0.2 client 192.0.2.80)");
  std::size_t n = 0;
  for (const auto& h : s.headers())
    if (h.name == "X-Mailgate-DNSBL") ++n;
  EXPECT_EQ(n, 1u);
}

TEST_F(DnsblTest, RejectOnRefusesOnlyForTheNamedSymbols) {
  use(kStandardZones, R"({"reject_on": ["RBL_ZEN_SBL"]})");
  host_.add_dns("90.2.0.192.zen.test", MG_DNS_A, {"127.0.0.2"});
  host_.add_dns("91.2.0.192.zen.test", MG_DNS_A, {"127.0.0.10"});
  {
    FakeSession s(host_);
    EXPECT_EQ(message(s, "192.0.2.90", ""), MG_REJECT);
    ASSERT_TRUE(s.reply());
    EXPECT_EQ(s.reply()->code, 550);
    EXPECT_EQ(s.reply()->enhanced, "5.7.1");
    EXPECT_EQ(s.reply()->text, "Message refused: client 192.0.2.90 is listed by zen.test");
  }
  FakeSession s(host_);
  EXPECT_EQ(message(s, "192.0.2.91", ""), MG_CONTINUE);
  EXPECT_TRUE(s.has_symbol("RBL_ZEN_PBL"));
}

TEST_F(DnsblTest, NoZonesNoQueries) {
  plugin_.emplace(LoadedPlugin::open(host_, MAILGATE_DNSBL_PLUGIN, "{}"));
  FakeSession s(host_);
  EXPECT_EQ(message(s, "192.0.2.99", "a@b.test", "http://c.test/\n"), MG_CONTINUE);
  EXPECT_TRUE(host_.dns_queries().empty());
}

TEST_F(DnsblTest, BadSettingsAreRefusedNamingTheKey) {
  auto refused = [&](const std::string& settings, const std::string& needle) {
    try {
      LoadedPlugin::open(host_, MAILGATE_DNSBL_PLUGIN, settings);
      ADD_FAILURE() << "accepted " << settings;
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  refused(R"({"thread": 4})", "unknown setting \"thread\"");
  refused(R"({"threads": 0})", "setting \"threads\" must be an integer in 1..64");
  refused(R"({"reject_on": ["lower"]})", "setting \"reject_on\" must list symbols");
  refused(R"({"header": "Bad Header:"})", "setting \"header\" must be a header field name");
  refused(R"({"skip_private": "yes"})", "setting \"skip_private\" must be true or false");
}

}  // namespace
