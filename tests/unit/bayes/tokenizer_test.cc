// tests/unit/bayes/tokenizer_test.cc — plugins/bayes/lib/bayes/tokenizer.cc: which features a
// message yields and how they are spelled.
#include "bayes/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace mailgate::bayes {
namespace {

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::vector<std::string> tokens_of(const std::string& raw) { return tokenize(parse_message(raw)); }

TEST(BayesTokenizer, BodyWordsLowerCasedTrimmedAndSummarised) {
  const auto t =
      tokens_of("Subject: hi\n\nFREE money!!! (act) now, ok supercalifragilistic a an\n");
  EXPECT_TRUE(has(t, "free"));
  EXPECT_TRUE(has(t, "money"));
  EXPECT_TRUE(has(t, "act"));
  EXPECT_TRUE(has(t, "now"));
  EXPECT_FALSE(has(t, "ok"));  // shorter than 3
  EXPECT_FALSE(has(t, "an"));
  EXPECT_TRUE(has(t, "skip:s 20"));  // 21 letters
  EXPECT_TRUE(std::is_sorted(t.begin(), t.end()));
  EXPECT_EQ(std::adjacent_find(t.begin(), t.end()), t.end());  // each once
}

TEST(BayesTokenizer, UrlsAndAddresses) {
  const auto t = tokens_of(
      "Subject: x\n\nsee http://Deals.Example.BIZ/buy/now?id=1 or mail sales@shop.example.net\n");
  EXPECT_TRUE(has(t, "proto:http"));
  EXPECT_TRUE(has(t, "url:deals"));
  EXPECT_TRUE(has(t, "url:example"));
  EXPECT_TRUE(has(t, "url:biz"));
  EXPECT_TRUE(has(t, "url-path:buy"));
  EXPECT_TRUE(has(t, "url-path:now"));
  EXPECT_TRUE(has(t, "email name:sales"));
  EXPECT_TRUE(has(t, "email addr:shop"));
  EXPECT_FALSE(has(t, "http://deals.example.biz/buy/now?id=1"));
}

TEST(BayesTokenizer, HeaderFeatures) {
  const auto t = tokens_of(
      "From: \"Big Winner\" <prize@lottery.example.biz>\n"
      "To: a@example.org, b@example.org, c@example.org\n"
      "Subject: =?utf-8?B?WW91IHdvbiE=?= $$$ !!!\n"
      "Received: from mx.sender.example (mx.sender.example [192.0.2.55]) by gw.example.org\n"
      "Received: from inner by gw.example.org\n"
      "Message-ID: <abc@mailer.example.biz>\n"
      "X-Mailer: BulkBlaster 3.0\n"
      "X-Spam-Status: Yes, score=99\n"
      "\nbody\n");
  EXPECT_TRUE(has(t, "from:big"));
  EXPECT_TRUE(has(t, "from:winner"));
  EXPECT_TRUE(has(t, "from:name:prize"));
  EXPECT_TRUE(has(t, "from:addr:lottery"));
  EXPECT_TRUE(has(t, "to:count:4"));
  EXPECT_TRUE(has(t, "subject:you"));
  EXPECT_TRUE(has(t, "subject:won"));
  EXPECT_TRUE(has(t, "subject:$$$"));
  EXPECT_TRUE(has(t, "subject:!!!"));
  EXPECT_TRUE(has(t, "received:mx.sender.example"));
  EXPECT_TRUE(has(t, "received:sender.example"));
  EXPECT_TRUE(has(t, "received:ip:192.0.2"));
  EXPECT_FALSE(has(t, "header:received:2"));  // field counts are not features
  EXPECT_TRUE(has(t, "message-id:@mailer.example.biz"));
  EXPECT_TRUE(has(t, "x-mailer:bulkblaster 3.0"));
  EXPECT_TRUE(has(t, "date:missing"));
  // the gateway's own verdict headers never become features
  for (const std::string& token : t) EXPECT_EQ(token.find("x-spam"), std::string::npos) << token;
  EXPECT_FALSE(has(t, "score"));
}

TEST(BayesTokenizer, DecodesBase64HtmlAndCountsStructure) {
  const auto t = tokens_of(
      "Subject: x\nContent-Type: text/html; charset=iso-8859-1\n"
      "Content-Transfer-Encoding: base64\n\n"
      "PGZvbnQgY29sb3I9cmVkPlZJQUdSQTwvZm9udD4=\n");  // <font color=red>VIAGRA</font>
  EXPECT_TRUE(has(t, "viagra"));
  EXPECT_TRUE(has(t, "content-type:text/html"));
  EXPECT_TRUE(has(t, "charset:iso-8859-1"));
  EXPECT_TRUE(has(t, "cte:base64"));
  EXPECT_FALSE(has(t, "font"));
}

TEST(BayesTokenizer, SameMessageSameTokens) {
  const std::string raw = "Subject: a b c\nFrom: x@y.example\n\nsome words here and there\n";
  EXPECT_EQ(tokens_of(raw), tokens_of(raw));
  EXPECT_NE(tokens_of(raw), tokens_of(raw + "another sentence\n"));
}

}  // namespace
}  // namespace mailgate::bayes
