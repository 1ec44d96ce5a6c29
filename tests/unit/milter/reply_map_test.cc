// reply_map_test.cc — milter/reply_map: chain actions as SMFIS_* values with the reply the
// MTA gives, and reply text made safe for libmilter.
#include "milter/reply_map.h"

#include <gtest/gtest.h>
#include <libmilter/mfapi.h>

namespace mailgate::milter {
namespace {

TEST(ReplyMap, StatusValuesAreLibmilters) {
  EXPECT_EQ(to_sfsistat(Status::kContinue), SMFIS_CONTINUE);
  EXPECT_EQ(to_sfsistat(Status::kReject), SMFIS_REJECT);
  EXPECT_EQ(to_sfsistat(Status::kDiscard), SMFIS_DISCARD);
  EXPECT_EQ(to_sfsistat(Status::kAccept), SMFIS_ACCEPT);
  EXPECT_EQ(to_sfsistat(Status::kTempfail), SMFIS_TEMPFAIL);
}

TEST(ReplyMap, ActionsWithoutReply) {
  EXPECT_EQ(map_verdict(MG_CONTINUE, {}).status, Status::kContinue);
  EXPECT_EQ(map_verdict(MG_ACCEPT, {}).status, Status::kAccept);
  EXPECT_EQ(map_verdict(MG_DISCARD, {}).status, Status::kDiscard);
  EXPECT_TRUE(map_verdict(MG_CONTINUE, {}).code.empty());
}

TEST(ReplyMap, RejectCarriesCodeEnhancedAndText) {
  auto m =
      map_verdict(MG_REJECT, smtp::Reply::make(554, "5.7.1", "<a@b.example>: Relay access denied"));
  EXPECT_EQ(m.status, Status::kReject);
  EXPECT_EQ(m.code, "554");
  EXPECT_EQ(m.enhanced, "5.7.1");
  ASSERT_EQ(m.lines.size(), 1u);
  EXPECT_EQ(m.lines[0], "<a@b.example>: Relay access denied");
}

TEST(ReplyMap, TempfailCarriesItsReply) {
  auto m = map_verdict(MG_TEMPFAIL, smtp::Reply::make(450, "4.7.1", "Greylisted, retry in 5m"));
  EXPECT_EQ(m.status, Status::kTempfail);
  EXPECT_EQ(m.code, "450");
  EXPECT_EQ(m.enhanced, "4.7.1");
  EXPECT_EQ(m.lines[0], "Greylisted, retry in 5m");
}

TEST(ReplyMap, WrongClassGetsTheDefaultForTheAction) {
  auto m = map_verdict(MG_TEMPFAIL, smtp::Reply::make(550, "5.7.1", "no"));
  EXPECT_EQ(m.code, "451");
  EXPECT_EQ(m.enhanced, "4.7.1");
  auto r = map_verdict(MG_REJECT, smtp::Reply{});
  EXPECT_EQ(r.code, "550");
  EXPECT_EQ(r.enhanced, "5.7.1");
}

TEST(ReplyMap, PercentIsDoubledAndLineBreaksDropped) {
  EXPECT_EQ(escape_percent("100% spam\r\nx"), "100%% spam  x");
  auto m = map_verdict(MG_REJECT, smtp::Reply::make(550, "5.7.0", "score 99% > 50%"));
  EXPECT_EQ(m.lines[0], "score 99%% > 50%%");
}

TEST(ReplyMap, MultilineRepliesKeepEveryLine) {
  smtp::Reply r;
  r.code = 550;
  r.lines = {"5.7.1 first line", "5.7.1 second line"};
  auto m = map_verdict(MG_REJECT, r);
  EXPECT_EQ(m.enhanced, "5.7.1");
  ASSERT_EQ(m.lines.size(), 2u);
  EXPECT_EQ(m.lines[1], "second line");
}

TEST(ReplyMap, ReplyWithoutEnhancedCode) {
  auto m = map_verdict(MG_REJECT, smtp::Reply::make(550, "", "go away"));
  EXPECT_TRUE(m.enhanced.empty());
  EXPECT_EQ(m.lines[0], "go away");
}

}  // namespace
}  // namespace mailgate::milter
