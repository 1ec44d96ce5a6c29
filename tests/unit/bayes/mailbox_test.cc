// tests/unit/bayes/mailbox_test.cc — plugins/bayes/lib/bayes/mailbox.cc: message files, mboxes
// (mboxrd unescaping), maildirs and plain directories, as `mailgatectl learn` reads them.
#include "bayes/mailbox.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace mailgate::bayes {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/bayes-mailbox-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    const fs::path p = fs::path(path_) / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<std::pair<std::string, std::string>> collect(const std::string& path,
                                                         std::string* error = nullptr) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string e = for_each_message(
      path,
      [&](const std::string& origin, std::string_view raw) { out.emplace_back(origin, raw); });
  if (error) *error = e;
  return out;
}

TEST(BayesMailbox, SingleFileIsOneMessage) {
  TempDir dir;
  const std::string f = dir.write("one.eml", "Subject: a\n\nFrom here on\n");
  const auto m = collect(f);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].first, f);
  EXPECT_EQ(m[0].second, "Subject: a\n\nFrom here on\n");
}

TEST(BayesMailbox, MboxIsSplitAndUnescaped) {
  TempDir dir;
  const std::string f = dir.write(
      "box.mbox",
      "From a@example.org Mon Jun  1 10:00:00 2026\nSubject: one\n\nline\n>From the start\n\n"
      "From b@example.org Mon Jun  1 10:01:00 2026\nSubject: two\n\nbody two\n");
  const auto m = collect(f);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].first, f + "#1");
  EXPECT_EQ(m[0].second, "Subject: one\n\nline\nFrom the start\n\n");
  EXPECT_EQ(m[1].first, f + "#2");
  EXPECT_EQ(m[1].second, "Subject: two\n\nbody two\n");
}

TEST(BayesMailbox, MaildirReadsCurAndNewOnly) {
  TempDir dir;
  dir.write("md/cur/1:2,S", "Subject: cur\n\nx\n");
  dir.write("md/new/2", "Subject: new\n\ny\n");
  dir.write("md/tmp/3", "Subject: tmp\n\nz\n");
  const auto m = collect(dir.path() + "/md");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_NE(m[0].second.find("cur"), std::string::npos);
  EXPECT_NE(m[1].second.find("new"), std::string::npos);
}

TEST(BayesMailbox, DirectoryOfFilesSkipsDotFilesAndSubdirectories) {
  TempDir dir;
  dir.write("d/b.eml", "Subject: b\n\n");
  dir.write("d/a.eml", "Subject: a\n\n");
  dir.write("d/.hidden", "Subject: h\n\n");
  dir.write("d/sub/c.eml", "Subject: c\n\n");
  const auto m = collect(dir.path() + "/d");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].second, "Subject: a\n\n");  // name order
  EXPECT_EQ(m[1].second, "Subject: b\n\n");
}

TEST(BayesMailbox, MissingPathIsAnErrorNamingIt) {
  std::string e;
  const auto m = collect("/nonexistent/bayes/path", &e);
  EXPECT_TRUE(m.empty());
  EXPECT_NE(e.find("/nonexistent/bayes/path"), std::string::npos) << e;
}

}  // namespace
}  // namespace mailgate::bayes
