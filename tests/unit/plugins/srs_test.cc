// srs_test.cc — the Sender Rewriting Scheme of the routing plugin
// (plugins/routing/srs.*): known answers (hashes computed independently with
// Python's hmac over the same fields), forward and reverse round trips for SRS0
// and SRS1, the age limit across the 1024-day wrap, case changes in transit,
// secret rotation, tampering, and configuration errors.
#include "srs.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace mailgate::routing {
namespace {

constexpr uint64_t kDay = 86'400;
constexpr uint64_t kNow = 20'000 * kDay + 3'600;  // day 20000: slot 544, "RA"

SrsConfig config(std::vector<std::string> secrets = {"test-secret-0123456789"}) {
  SrsConfig c;
  c.domain = "Fwd.Example";
  c.secrets = std::move(secrets);
  return c;
}

TEST(Srs, Srs0KnownAnswer) {
  Srs srs(config());
  // HMAC-SHA1("test-secret-0123456789", "raorig.examplealice") = m6xSJ3Tn... in
  // base64.
  EXPECT_EQ(srs.forward("alice@orig.example", kNow), "SRS0=m6xS=RA=orig.example=alice@fwd.example");
  const SrsResult back = srs.reverse("SRS0=m6xS=RA=orig.example=alice@fwd.example", kNow);
  EXPECT_EQ(back.status, SrsStatus::kOk);
  EXPECT_EQ(back.address, "alice@orig.example");
}

TEST(Srs, Srs1KnownAnswerAndTheWayBack) {
  Srs srs(config());
  // A sender another forwarder already rewrote: SRS1 keeps that hop and what it
  // wrote.
  const std::string first = "SRS0=m6xS=RA=orig.example=alice@hop1.example";
  EXPECT_EQ(srs.forward(first, kNow),
            "SRS1=Wicp=hop1.example==m6xS=RA=orig.example=alice@fwd.example");
  const SrsResult back =
      srs.reverse("SRS1=Wicp=hop1.example==m6xS=RA=orig.example=alice@fwd.example", kNow);
  ASSERT_EQ(back.status, SrsStatus::kOk);
  EXPECT_EQ(back.address, first);
  // SRS1 of an SRS1: the first hop is kept, the hash is ours.
  Srs other(config({"another-secret-456789"}));
  const std::string again =
      other.forward("SRS1=Wicp=hop1.example==m6xS=RA=orig.example=alice@x.test", kNow);
  EXPECT_TRUE(again.starts_with("SRS1=")) << again;
  EXPECT_TRUE(again.ends_with("=hop1.example==m6xS=RA=orig.example=alice@fwd.example")) << again;
  EXPECT_EQ(other.reverse(again, kNow).address, first);
  EXPECT_EQ(srs.reverse(again, kNow).status,
            SrsStatus::kBadHash);  // not our secret
}

TEST(Srs, RoundTripsKeepTheLocalPart) {
  Srs srs(config());
  for (const char *sender : {"bob@example.org", "first.last+tag@sub.example.co.uk",
                             "we=ird=local@example.net", "x@y.test"}) {
    const std::string fwd = srs.forward(sender, kNow);
    const SrsResult back = srs.reverse(fwd, kNow + 5 * kDay);
    EXPECT_EQ(back.status, SrsStatus::kOk) << fwd;
    EXPECT_EQ(back.address, sender) << fwd;
  }
}

TEST(Srs, AgeLimitAcrossTheWrap) {
  SrsConfig c = config();
  c.max_age_days = 10;
  Srs srs(c);
  const uint64_t day1020 = (19 * 1024 + 1020) * kDay;  // slot 1020
  const std::string fwd = srs.forward("bob@example.org", day1020);
  EXPECT_EQ(srs.reverse(fwd, day1020 + 10 * kDay).status,
            SrsStatus::kOk);  // slot 6: wrapped
  EXPECT_EQ(srs.reverse(fwd, day1020 + 11 * kDay).status, SrsStatus::kExpired);
  // A timestamp from "tomorrow" is not valid either.
  EXPECT_EQ(srs.reverse(fwd, day1020 - kDay).status, SrsStatus::kExpired);
}

TEST(Srs, CaseChangesInTransitAreTolerated) {
  Srs srs(config());
  EXPECT_EQ(srs.reverse("srs0=M6XS=ra=ORIG.example=Alice@FWD.example", kNow).address,
            "Alice@ORIG.example");
  // '+' and '-' separators after SRS0 are read as '=' (other implementations
  // write them).
  EXPECT_EQ(srs.reverse("SRS0+m6xS=RA=orig.example=alice@fwd.example", kNow).status,
            SrsStatus::kOk);
}

TEST(Srs, SecretRotation) {
  Srs old_one(config({"old-secret-0123456789"}));
  const std::string fwd = old_one.forward("bob@example.org", kNow);
  Srs rotated(config({"new-secret-0123456789", "old-secret-0123456789"}));
  EXPECT_EQ(rotated.reverse(fwd, kNow).address, "bob@example.org");
  Srs forgot(config({"new-secret-0123456789"}));
  EXPECT_EQ(forgot.reverse(fwd, kNow).status, SrsStatus::kBadHash);
  // The first secret signs.
  EXPECT_EQ(forgot.forward("bob@example.org", kNow), rotated.forward("bob@example.org", kNow));
}

TEST(Srs, TamperingAndGarbage) {
  Srs srs(config());
  EXPECT_EQ(srs.reverse("SRS0=m6xS=RA=orig.example=mallory@fwd.example", kNow).status,
            SrsStatus::kBadHash);
  EXPECT_EQ(srs.reverse("SRS0=m6xS=RB=orig.example=alice@fwd.example", kNow).status,
            SrsStatus::kBadHash);
  EXPECT_EQ(srs.reverse("SRS0=m6x=RA=orig.example=alice@fwd.example", kNow).status,
            SrsStatus::kBadHash);
  EXPECT_EQ(srs.reverse("SRS0=m6xS=R1=orig.example=alice@fwd.example", kNow).status,
            SrsStatus::kMalformed);
  EXPECT_EQ(srs.reverse("SRS0=m6xS=RA=orig.example@fwd.example", kNow).status,
            SrsStatus::kMalformed);
  EXPECT_EQ(srs.reverse("SRS1=abcd=hop.example@fwd.example", kNow).status, SrsStatus::kMalformed);
  EXPECT_EQ(srs.reverse("SRS0@fwd.example", kNow).status, SrsStatus::kNotSrs);
  EXPECT_EQ(srs.reverse("alice@fwd.example", kNow).status, SrsStatus::kNotSrs);
  EXPECT_TRUE(Srs::is_srs("SRS0=x"));
  EXPECT_TRUE(Srs::is_srs("srs1-x"));
  EXPECT_FALSE(Srs::is_srs("SRS2=x"));
  EXPECT_FALSE(Srs::is_srs("SRS0"));
  EXPECT_EQ(to_string(SrsStatus::kExpired), "expired SRS address");
}

TEST(Srs, LongerHashes) {
  SrsConfig c = config();
  c.hash_length = 8;
  Srs srs(c);
  EXPECT_EQ(srs.forward("alice@orig.example", kNow),
            "SRS0=m6xSJ3Tn=RA=orig.example=alice@fwd.example");
  EXPECT_EQ(srs.reverse("SRS0=m6xS=RA=orig.example=alice@fwd.example", kNow).status,
            SrsStatus::kBadHash);  // a 4-character hash is not enough any more
}

TEST(Srs, ConfigurationErrorsNameTheSetting) {
  auto message = [](SrsConfig c) {
    try {
      Srs srs(std::move(c));
    } catch (const std::invalid_argument &e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  SrsConfig c = config();
  c.secrets = {};
  EXPECT_NE(message(c).find("\"srs_secrets\""), std::string::npos);
  c.secrets = {"short"};
  EXPECT_NE(message(c).find("16 characters"), std::string::npos);
  c = config();
  c.hash_length = 3;
  EXPECT_NE(message(c).find("\"srs_hash_length\""), std::string::npos);
  c = config();
  c.max_age_days = 1024;
  EXPECT_NE(message(c).find("\"srs_max_age_days\""), std::string::npos);
}

}  // namespace
}  // namespace mailgate::routing
