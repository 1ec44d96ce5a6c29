// Tests for plugins/spamscore/mime_scan: the shortcut for messages without MIME structure
// (scan_unstructured) gives exactly what GMime gives for them, and declines every message it
// cannot take as is (so GMime gets those).
#include "mime_scan.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace mailgate::spamscore {
namespace {

void expect_same(const ScannedMessage& a, const ScannedMessage& b, const std::string& message) {
  EXPECT_EQ(a.parsed, b.parsed) << message;
  EXPECT_EQ(a.subject, b.subject) << message;
  EXPECT_EQ(a.texts, b.texts) << message;
  EXPECT_EQ(a.urls, b.urls) << message;
  EXPECT_EQ(a.too_many_urls, b.too_many_urls) << message;
  EXPECT_EQ(a.too_deep || a.too_many_parts || a.too_complex,
            b.too_deep || b.too_many_parts || b.too_complex)
      << message;
}

TEST(ScanUnstructured, GivesWhatGmimeGives) {
  ScanLimits limits;
  limits.max_urls = 3;
  const std::vector<std::string> messages = {
      "From: <a@example.org>\r\nTo: <b@example.test>\r\nSubject: Hello there\r\n\r\n"
      "Line one\r\nvisit http://example.com/x and https://www.example.net/y?z=1.\r\n",
      "Subject:   padded subject\t \r\nX-Folded: a\r\n b\r\n\r\nbody\r\n",
      "From: <a@example.org>\r\n\r\n",                  // empty body
      "From: <a@example.org>\r\n\r\n\r\n\r\nafter blank lines\r\n",
      "From: <a@example.org>\n\nbare LF line ends\nsecond\n",
      "X-A: 1\r\n\r\nraw 8-bit \xc3\xa9t\xc3\xa9 and \xe9\r\nno final line end",
      "Subject: urls\r\n\r\nhttp://a.example/1 http://b.example/2 http://c.example/3 "
      "http://d.example/4\r\n",                        // more than max_urls
      "MIME-Version: 1.0\r\nSubject: MIME version but no type\r\n\r\n.leading dot\r\n",
  };
  for (const std::string& m : messages) {
    std::optional<ScannedMessage> fast = scan_unstructured(m, limits);
    ASSERT_TRUE(fast.has_value()) << m;
    expect_same(*fast, scan_with_gmime(m, limits), m);
  }
}

TEST(ScanUnstructured, LeavesEverythingElseToGmime) {
  const std::vector<std::string> declined = {
      "Content-Type: text/plain; charset=iso-8859-1\r\n\r\n\xe9t\xe9\r\n",
      "content-transfer-encoding: base64\r\n\r\naGVsbG8=\r\n",
      "Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\nbody\r\n",
      "Subject: folded\r\n  subject\r\n\r\nbody\r\n",
      "Subject: caf\xc3\xa9\r\n\r\nbody\r\n",
      "Subject: one\r\nSubject: two\r\n\r\nbody\r\n",
      "not a header line\r\n\r\nbody\r\n",
      "Bad Name: x\r\n\r\nbody\r\n",
      "From: <a@example.org>\r\nno end of the header block",
  };
  for (const std::string& m : declined) {
    EXPECT_FALSE(scan_unstructured(m, ScanLimits{}).has_value()) << m;
    // scan_message() still answers, through GMime.
    (void)scan_message(m, ScanLimits{});
  }
  const std::string mime =
      "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: "
      "quoted-printable\r\n\r\nd=E9j=E0\r\n";
  ScannedMessage via = scan_message(mime, ScanLimits{});
  ASSERT_EQ(via.texts.size(), 1u);
  EXPECT_EQ(via.texts[0], "d\xc3\xa9j\xc3\xa0\r\n");
}

}  // namespace
}  // namespace mailgate::spamscore
