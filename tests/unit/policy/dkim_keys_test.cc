// tests/unit/policy/dkim_keys_test.cc — DKIM signing keys in the policy (gateway/policy/
// dkim_key.h and the dkim_keys part of snapshot.h): selector and key rules, key generation and
// the published TXT record (the public key checked against the private one with OpenSSL), and
// the snapshot's lookup("dkim_keys", domain): enabled keys only, newest first, bad rows refused
// with a message naming the row.
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "policy/dkim_key.h"
#include "policy/snapshot.h"
#include "policy_test_util.h"

namespace mailgate::policy {
namespace {

using testing::make_db;
using testing::raw_connection;
using testing::sql;
using testing::TempDir;

std::string read_test_key(const std::string& name) {
  std::ifstream in(std::string(MAILGATE_TEST_DATA_DIR) + "/plugins/dkim_keys/" + name);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string quote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

// Base64 decoding for the checks below (OpenSSL's, padding removed from the length).
std::string unbase64(const std::string& b64) {
  std::string out(b64.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  if (n < 0) return "";
  size_t pad = 0;
  while (pad < 2 && pad < b64.size() && b64[b64.size() - 1 - pad] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

// The public key in SubjectPublicKeyInfo DER form, derived by OpenSSL from the private PEM.
std::string spki_of(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) return "";
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  EVP_PKEY_free(key);
  return out;
}

TEST(DkimKey, Selectors) {
  EXPECT_FALSE(check_dkim_selector("sel1"));
  EXPECT_FALSE(check_dkim_selector("2026-a.mail_x"));
  EXPECT_EQ(*check_dkim_selector(""), "'' is not a valid DKIM selector: is empty");
  EXPECT_EQ(*check_dkim_selector("a..b"),
            "'a..b' is not a valid DKIM selector: has an empty label");
  EXPECT_EQ(*check_dkim_selector("-x"),
            "'-x' is not a valid DKIM selector: label '-x' starts or ends with '-'");
  EXPECT_EQ(*check_dkim_selector("a b"),
            "'a b' is not a valid DKIM selector: label 'a b' has a "
            "character other than a-z, 0-9, '-', '_'");
  EXPECT_TRUE(check_dkim_selector(std::string(64, 'a')));
  EXPECT_EQ(*check_dkim_algorithm("rsa-sha1"),
            "must be rsa-sha256 or ed25519-sha256 (got 'rsa-sha1')");
}

TEST(DkimKey, GeneratedRsaKeyPublishesItsPublicHalf) {
  auto pair = generate_dkim_key("rsa-sha256", 1024);
  ASSERT_TRUE(pair) << pair.error();
  EXPECT_TRUE(pair->private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
  EXPECT_FALSE(check_dkim_private_key("rsa-sha256", pair->private_pem));
  EXPECT_EQ(*check_dkim_private_key("ed25519-sha256", pair->private_pem),
            "is an RSA key, but algorithm is ed25519-sha256");
  EXPECT_EQ(unbase64(pair->public_b64), spki_of(pair->private_pem));
  auto again = dkim_public_key("rsa-sha256", pair->private_pem);
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(*again, pair->public_b64);

  // 1024 bits: "v=DKIM1; k=rsa; p=" + 216 base64 characters fit one string.
  std::string record = dkim_txt_record("Example.COM", "Sel1", "rsa-sha256", pair->public_b64);
  EXPECT_EQ(record, "sel1._domainkey.example.com. IN TXT ( \"v=DKIM1; k=rsa; p=" +
                        pair->public_b64 + "\" )");
}

TEST(DkimKey, LongRecordsAreSplitInto255ByteStrings) {
  auto pair = generate_dkim_key("rsa-sha256", 2048);
  ASSERT_TRUE(pair) << pair.error();
  const std::string value = "v=DKIM1; k=rsa; p=" + pair->public_b64;
  ASSERT_GT(value.size(), 255u);
  ASSERT_LE(value.size(), 510u);
  EXPECT_EQ(dkim_txt_value("rsa-sha256", pair->public_b64), value);
  EXPECT_EQ(dkim_txt_record("example.com", "s", "rsa-sha256", pair->public_b64),
            "s._domainkey.example.com. IN TXT ( \"" + value.substr(0, 255) + "\" \"" +
                value.substr(255) + "\" )");
}

TEST(DkimKey, GeneratedEd25519KeyPublishesTheRawKey) {
  auto pair = generate_dkim_key("ed25519-sha256", 0);
  ASSERT_TRUE(pair) << pair.error();
  EXPECT_FALSE(check_dkim_private_key("ed25519-sha256", pair->private_pem));
  EXPECT_EQ(*check_dkim_private_key("rsa-sha256", pair->private_pem),
            "is an ed25519 key, but algorithm is rsa-sha256");
  // RFC 8463: p= is the 32-byte key itself, the last 32 bytes of its SubjectPublicKeyInfo.
  const std::string raw = unbase64(pair->public_b64);
  ASSERT_EQ(raw.size(), 32u);
  const std::string spki = spki_of(pair->private_pem);
  ASSERT_EQ(spki.size(), 44u);
  EXPECT_EQ(spki.substr(12), raw);
  EXPECT_EQ(
      dkim_txt_record("example.com", "ed", "ed25519-sha256", pair->public_b64),
      "ed._domainkey.example.com. IN TXT ( \"v=DKIM1; k=ed25519; p=" + pair->public_b64 + "\" )");
}

TEST(DkimKey, BadKeysAndSizesAreRefused) {
  EXPECT_EQ(generate_dkim_key("rsa-sha256", 512).error(),
            "RSA keys must have 1024..4096 bits (RFC 8301; got 512)");
  EXPECT_EQ(generate_dkim_key("rsa-sha256", 8192).error(),
            "RSA keys must have 1024..4096 bits (RFC 8301; got 8192)");
  EXPECT_EQ(generate_dkim_key("dsa", 1024).error(),
            "algorithm must be rsa-sha256 or ed25519-sha256 (got 'dsa')");
  const std::string weak = read_test_key("rsa512.pem");
  ASSERT_FALSE(weak.empty());
  EXPECT_EQ(*check_dkim_private_key("rsa-sha256", weak),
            "is a 512-bit RSA key; DKIM needs 1024..4096 bits (RFC 8301)");
  EXPECT_EQ(*check_dkim_private_key("rsa-sha256", "-----BEGIN PRIVATE KEY-----\nAAAA\n"),
            "is not a valid RSA PEM key (an unencrypted PEM private key)");
  EXPECT_EQ(*check_dkim_private_key("ed25519-sha256", "hello"),
            "is not a valid ed25519 PEM key (an unencrypted PEM private key)");
  // PKCS#1 ("BEGIN RSA PRIVATE KEY") is fine too.
  const std::string pkcs1 = read_test_key("rsa1024.pem");
  ASSERT_FALSE(pkcs1.empty());
  EXPECT_FALSE(check_dkim_private_key("rsa-sha256", pkcs1));
}

class DkimKeysSnapshotTest : public ::testing::Test {
 protected:
  DkimKeysSnapshotTest() : path_(dir_.file("policy.db")), db_(make_db(path_)) {}

  void insert(const std::string& domain, const std::string& selector, const std::string& algorithm,
              const std::string& pem, int enabled, int created, sqlite3* db = nullptr) {
    sql(db != nullptr ? db : db_.get(),
        "INSERT INTO dkim_keys (domain, selector, algorithm, private_key, enabled, created) "
        "VALUES (" +
            quote(domain) + ", " + quote(selector) + ", " + quote(algorithm) + ", " + quote(pem) +
            ", " + std::to_string(enabled) + ", " + std::to_string(created) + ")");
  }

  TempDir dir_;
  std::string path_;
  DbHandle db_;
};

TEST_F(DkimKeysSnapshotTest, LookupGivesTheEnabledKeysNewestFirst) {
  auto rsa = generate_dkim_key("rsa-sha256", 1024);
  auto ed = generate_dkim_key("ed25519-sha256", 0);
  auto old = generate_dkim_key("rsa-sha256", 1024);
  ASSERT_TRUE(rsa && ed && old);
  insert("Example.com", "rsa1", "rsa-sha256", rsa->private_pem, 1, 2000);
  insert("example.com", "ed1", "ed25519-sha256", ed->private_pem, 1, 3000);
  insert("example.com", "old", "rsa-sha256", old->private_pem, 0, 1000);
  insert("other.example", "only-disabled", "rsa-sha256", old->private_pem, 0, 1000);
  auto s = load_snapshot(path_);
  ASSERT_TRUE(s) << s.error();

  std::string out;
  ASSERT_TRUE((*s)->lookup("dkim_keys", "EXAMPLE.com", &out));
  const auto keys = nlohmann::json::parse(out);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0]["selector"], "ed1");
  EXPECT_EQ(keys[0]["algorithm"], "ed25519-sha256");
  EXPECT_EQ(keys[0]["private_key"], ed->private_pem);
  EXPECT_EQ(keys[1]["selector"], "rsa1");
  EXPECT_EQ(keys[1]["algorithm"], "rsa-sha256");
  EXPECT_EQ(keys[1]["private_key"], rsa->private_pem);
  EXPECT_EQ(keys[0].size(), 3u);

  out = "untouched";
  EXPECT_FALSE((*s)->lookup("dkim_keys", "other.example", &out));    // only a disabled key
  EXPECT_FALSE((*s)->lookup("dkim_keys", "sub.example.com", &out));  // no parent fallback
  EXPECT_FALSE((*s)->lookup("dkim_keys", "", &out));
  EXPECT_EQ(out, "untouched");

  // Every row is listed, the disabled ones too; domains lower-cased.
  ASSERT_EQ((*s)->dkim_keys().size(), 4u);
  EXPECT_EQ((*s)->dkim_keys()[0].domain, "example.com");
  EXPECT_EQ((*s)->dkim_keys()[0].selector, "ed1");
  EXPECT_FALSE((*s)->dkim_keys()[2].enabled);
}

TEST_F(DkimKeysSnapshotTest, BadRowsAreRefusedByName) {
  auto rsa = generate_dkim_key("rsa-sha256", 1024);
  ASSERT_TRUE(rsa);
  const std::string weak = read_test_key("rsa512.pem");
  insert("example.com", "ok", "rsa-sha256", rsa->private_pem, 1, 1);
  insert("example.com", "sel1", "rsa-sha256", "-----BEGIN PRIVATE KEY-----\nnope\n", 1, 1);
  insert("example.com", "ed", "ed25519-sha256", rsa->private_pem, 0, 1);  // disabled: checked too
  insert("example.com", "weak", "rsa-sha256", weak, 1, 1);
  auto s = load_snapshot(path_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(),
            "dkim_keys row 'example.com/ed': private_key is an RSA key, but algorithm is "
            "ed25519-sha256; "
            "dkim_keys row 'example.com/sel1': private_key is not a valid RSA PEM key (an "
            "unencrypted PEM private key); "
            "dkim_keys row 'example.com/weak': private_key is a 512-bit RSA key; DKIM needs "
            "1024..4096 bits (RFC 8301)");
}

TEST_F(DkimKeysSnapshotTest, RowsPastTheCheckConstraintsAreStillRefused) {
  auto rsa = generate_dkim_key("rsa-sha256", 1024);
  ASSERT_TRUE(rsa);
  auto raw = raw_connection(path_);
  insert("example.com", "a b", "rsa-sha256", rsa->private_pem, 1, 1, raw.get());
  insert("example.com", "s2", "rsa-sha1", rsa->private_pem, 1, 1, raw.get());
  insert("bad_domain", "s3", "rsa-sha256", rsa->private_pem, 2, 1, raw.get());
  auto s = load_snapshot(path_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(),
            "dkim_keys row 'bad_domain/s3': domain 'bad_domain' is not a valid domain name: "
            "label 'bad_domain' has a character other than a-z, 0-9 and '-'; "
            "dkim_keys row 'bad_domain/s3': enabled must be 0 or 1 (got 2); "
            "dkim_keys row 'example.com/a b': selector 'a b' is not a valid DKIM selector: "
            "label 'a b' has a character other than a-z, 0-9, '-', '_'; "
            "dkim_keys row 'example.com/s2': algorithm must be rsa-sha256 or ed25519-sha256 "
            "(got 'rsa-sha1')");
}

TEST_F(DkimKeysSnapshotTest, TheSchemaRefusesObviousMistakes) {
  EXPECT_FALSE(exec(db_.get(),
                    "INSERT INTO dkim_keys (domain, selector, algorithm, private_key) VALUES "
                    "('example.com', 's', 'rsa-sha1', '-----BEGIN PRIVATE KEY-----')"));
  EXPECT_FALSE(exec(db_.get(),
                    "INSERT INTO dkim_keys (domain, selector, algorithm, private_key) VALUES "
                    "('example.com', 's', 'rsa-sha256', 'not pem')"));
  sql(db_.get(),
      "INSERT INTO dkim_keys (domain, selector, algorithm, private_key) VALUES "
      "('example.com', 's', 'rsa-sha256', '-----BEGIN PRIVATE KEY-----')");
  // Primary key (domain, selector), case-insensitive.
  EXPECT_FALSE(exec(db_.get(),
                    "INSERT INTO dkim_keys (domain, selector, algorithm, private_key) VALUES "
                    "('EXAMPLE.COM', 'S', 'rsa-sha256', '-----BEGIN PRIVATE KEY-----')"));
  // created defaults to now.
  EXPECT_GT(*query_int(db_.get(), "SELECT created FROM dkim_keys"), 1700000000);
  EXPECT_EQ(*query_int(db_.get(), "SELECT enabled FROM dkim_keys"), 1);
}

}  // namespace
}  // namespace mailgate::policy
