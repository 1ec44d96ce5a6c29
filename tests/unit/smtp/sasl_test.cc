// sasl_test.cc — tests gateway/smtp/sasl.cc: mechanism names, strict base64, PLAIN responses.
#include "smtp/sasl.h"

#include <gtest/gtest.h>

namespace mailgate::smtp {
namespace {

TEST(Sasl, Mechanisms) {
  EXPECT_EQ(parse_sasl_mechanism("PLAIN"), SaslMechanism::kPlain);
  EXPECT_EQ(parse_sasl_mechanism("plain"), SaslMechanism::kPlain);
  EXPECT_EQ(parse_sasl_mechanism("Login"), SaslMechanism::kLogin);
  EXPECT_EQ(parse_sasl_mechanism("CRAM-MD5"), SaslMechanism::kUnknown);
  EXPECT_EQ(parse_sasl_mechanism(""), SaslMechanism::kUnknown);
}

TEST(Sasl, Base64RoundTripsRfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (auto [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    if (*encoded != 0) {
      EXPECT_EQ(base64_decode(encoded), std::string(plain)) << encoded;
    }
  }
  EXPECT_EQ(base64_encode(std::string("\0\xff\x10", 3)), "AP8Q");
  EXPECT_EQ(base64_decode("AP8Q"), std::string("\0\xff\x10", 3));
  EXPECT_EQ(base64_decode("="), std::string());  // RFC 4954: an empty initial response
}

TEST(Sasl, Base64IsStrict) {
  EXPECT_FALSE(base64_decode("Zm9"));        // length not a multiple of 4
  EXPECT_FALSE(base64_decode("Zm 9v"));      // white space
  EXPECT_FALSE(base64_decode("Zm9v\r\n"));
  EXPECT_FALSE(base64_decode("Z==="));
  EXPECT_FALSE(base64_decode("Zg==Zm9v"));   // padding in the middle
  EXPECT_FALSE(base64_decode("Zm=v"));       // pad then data
  EXPECT_FALSE(base64_decode("Zm9v!A=="));   // outside the alphabet
  EXPECT_FALSE(base64_decode("Zm9-"));       // base64url is not base64
}

TEST(Sasl, PlainResponse) {
  auto r = parse_plain_response(std::string("\0alice\0secret", 13));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->authzid, "");
  EXPECT_EQ(r->authcid, "alice");
  EXPECT_EQ(r->password, "secret");
  r = parse_plain_response(std::string("admin\0alice\0pw", 14));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->authzid, "admin");
  EXPECT_FALSE(parse_plain_response("alice"));
  EXPECT_FALSE(parse_plain_response(std::string("\0alice", 6)));
  EXPECT_FALSE(parse_plain_response(std::string("\0\0pw", 4)));          // no user
  EXPECT_FALSE(parse_plain_response(std::string("\0alice\0", 7)));       // no password
  EXPECT_FALSE(parse_plain_response(std::string("\0alice\0pw\0x", 11)));  // three NULs
}

TEST(Sasl, WipeClears) {
  std::string s = "secret";
  wipe(s);
  EXPECT_TRUE(s.empty());
}

}  // namespace
}  // namespace mailgate::smtp
