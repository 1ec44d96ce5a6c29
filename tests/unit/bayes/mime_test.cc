// tests/unit/bayes/mime_test.cc — plugins/bayes/lib/bayes/mime.cc: splitting, the MIME walk and
// the decoders the Bayes tokenizer reads text through.
#include "bayes/mime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace mailgate::bayes {
namespace {

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(BayesMime, ParseMessageSkipsMboxLineAndKeepsFolding) {
  const Message m = parse_message(
      "From someone@example.org Mon Jun  1 10:00:00 2026\r\n"
      "Subject: one\r\n  two\r\nX-Empty:\r\n\r\nbody line\r\n");
  ASSERT_EQ(m.headers.size(), 2u);
  EXPECT_EQ(m.headers[0].name, "Subject");
  EXPECT_EQ(m.headers[0].value, "one\n  two");
  EXPECT_EQ(m.headers[1].value, "");
  EXPECT_EQ(m.body, "body line\r\n");
}

TEST(BayesMime, MessageWithoutBlankLineIsAllHeader) {
  const Message m = parse_message("Subject: x\nFrom: a@b\n");
  EXPECT_EQ(m.headers.size(), 2u);
  EXPECT_TRUE(m.body.empty());
}

TEST(BayesMime, Base64) {
  EXPECT_EQ(decode_base64("aGVsbG8gd29y\r\nbGQ="), "hello world");
  EXPECT_EQ(decode_base64("aGk"), "hi");       // no padding
  EXPECT_EQ(decode_base64("!!aGk=!!"), "hi");  // junk skipped
}

TEST(BayesMime, QuotedPrintable) {
  EXPECT_EQ(decode_quoted_printable("caf=C3=A9 soft=\r\nbreak =3D"), "caf\xC3\xA9 softbreak =");
  EXPECT_EQ(decode_quoted_printable("a=\nb"), "ab");
  EXPECT_EQ(decode_quoted_printable("stray = sign =Z1"), "stray = sign =Z1");
}

TEST(BayesMime, EncodedWordsInHeaders) {
  EXPECT_EQ(decode_header_value("=?UTF-8?B?Q2hlYXA=?= =?utf-8?Q?_pills?= now"), "Cheap pills now");
  EXPECT_EQ(decode_header_value("plain\r\n\tfolded"), "plain folded");
  EXPECT_EQ(decode_header_value("=?broken"), "=?broken");
}

TEST(BayesMime, ContentTypeParameters) {
  const ContentType ct = parse_content_type("Multipart/Mixed; boundary=\"a b;c\"; CHARSET=utf-8");
  EXPECT_EQ(ct.type, "multipart/mixed");
  EXPECT_EQ(ct.param("boundary"), "a b;c");
  EXPECT_EQ(ct.param("charset"), "utf-8");
  EXPECT_EQ(parse_content_type("garbage").type, "text/plain");
  EXPECT_EQ(parse_content_type("").type, "text/plain");
}

TEST(BayesMime, HtmlToTextDropsTagsScriptsAndKeepsLinks) {
  const std::string text = html_to_text(
      "<html><script>var hidden=1;</script><style>p{}</style><p>Buy&nbsp;n&#111;w</p>"
      "<!-- comment words --><a href=\"http://spam.example.biz/x\">here</a>"
      "<img src='http://img.example.biz/a.gif'></html>");
  EXPECT_NE(text.find("Buy now"), std::string::npos);
  EXPECT_NE(text.find("here"), std::string::npos);
  EXPECT_NE(text.find("http://spam.example.biz/x"), std::string::npos);
  EXPECT_NE(text.find("http://img.example.biz/a.gif"), std::string::npos);
  EXPECT_EQ(text.find("hidden"), std::string::npos);
  EXPECT_EQ(text.find("comment"), std::string::npos);
  EXPECT_EQ(text.find("<p>"), std::string::npos);
}

TEST(BayesMime, WalksMultipartDecodingTextPartsOnly) {
  const Message m = parse_message(
      "Content-Type: multipart/mixed; boundary=\"outer\"\n\n"
      "preamble is not a part\n"
      "--outer\n"
      "Content-Type: multipart/alternative; boundary=inner\n\n"
      "--inner\n"
      "Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
      "plain=20text\n"
      "--inner\n"
      "Content-Type: text/html; charset=\"KOI8-R\"\nContent-Transfer-Encoding: base64\n\n"
      "PGI+aHRtbCB0ZXh0PC9iPg==\n"
      "--inner--\n"
      "--outer\n"
      "Content-Type: image/gif\nContent-Transfer-Encoding: base64\n"
      "Content-Disposition: attachment; filename=\"pic.GIF\"\n\n"
      "R0lGODlh\n"
      "--outer\n"
      "Content-Type: message/rfc822\n\n"
      "Subject: inner subject\n\ninner body\n"
      "--outer--\n"
      "epilogue\n");
  const MimeScan scan = scan_mime(m, 1 << 20);
  std::string all;
  for (const TextPart& p : scan.texts) all += p.text + "|";
  EXPECT_NE(all.find("plain text"), std::string::npos) << all;
  EXPECT_NE(all.find("html text"), std::string::npos) << all;
  EXPECT_NE(all.find("inner subject"), std::string::npos) << all;
  EXPECT_NE(all.find("inner body"), std::string::npos) << all;
  EXPECT_EQ(all.find("preamble"), std::string::npos) << all;
  EXPECT_EQ(all.find("epilogue"), std::string::npos) << all;
  EXPECT_EQ(all.find("R0lGOD"), std::string::npos) << all;
  EXPECT_TRUE(has(scan.structure, "content-type:image/gif"));
  EXPECT_TRUE(has(scan.structure, "filename:.gif"));
  EXPECT_TRUE(has(scan.structure, "charset:koi8-r"));
  EXPECT_TRUE(has(scan.structure, "cte:base64"));
}

TEST(BayesMime, TextBudgetBoundsDecodedText) {
  Message m;
  m.body = std::string(10000, 'a');
  const MimeScan scan = scan_mime(m, 100);
  std::size_t total = 0;
  for (const TextPart& p : scan.texts) total += p.text.size();
  EXPECT_EQ(total, 100u);
}

TEST(BayesMime, DeepNestingStops) {
  std::string raw;
  for (int i = 0; i < 50; ++i)
    raw += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\n\n--b" +
           std::to_string(i) + "\n";
  raw += "Content-Type: text/plain\n\ndeep\n";
  const MimeScan scan = scan_mime(parse_message(raw), 1 << 20);  // returns, bounded
  EXPECT_LE(scan.structure.size(), 3 * (kMaxParts + 1));
}

}  // namespace
}  // namespace mailgate::bayes
