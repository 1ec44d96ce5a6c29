// header_edits_test.cc — milter/header_edits: the original and the edited header list give
// the smfi_chgheader / smfi_insheader / smfi_addheader operations that turn one into the
// other; each case is checked by replaying the operations on the original list the way an
// MTA applies them (occurrence indexes renumbered after a deletion).
#include "milter/header_edits.h"

#include <gtest/gtest.h>
#include <strings.h>

namespace mailgate::milter {
namespace {

using chain::HeaderField;
using Kind = HeaderOp::Kind;

HeaderField orig(const std::string& name, const std::string& value) {
  return HeaderField{name, value, name + ": " + value + "\r\n"};
}
HeaderField fresh(const std::string& name, const std::string& value) {
  return HeaderField{name, value, {}};
}

// What an MTA does with the operations, in order (Postfix renumbers after a deletion).
std::vector<std::pair<std::string, std::string>> replay(std::vector<HeaderField> h,
                                                        const std::vector<HeaderOp>& ops) {
  for (const HeaderOp& op : ops) {
    switch (op.kind) {
      case Kind::kChange:
      case Kind::kDelete: {
        int n = 0;
        for (size_t i = 0; i < h.size(); ++i) {
          if (strcasecmp(h[i].name.c_str(), op.name.c_str()) != 0 || ++n != op.index) continue;
          if (op.kind == Kind::kDelete) {
            h.erase(h.begin() + static_cast<long>(i));
          } else {
            h[i].value = op.value;
          }
          break;
        }
        break;
      }
      case Kind::kInsert:
        h.insert(h.begin() + std::min<long>(op.index, static_cast<long>(h.size())),
                 fresh(op.name, op.value));
        break;
      case Kind::kAdd:
        h.push_back(fresh(op.name, op.value));
        break;
    }
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const HeaderField& f : h) out.emplace_back(f.name, f.value);
  return out;
}

std::vector<std::pair<std::string, std::string>> names_values(const std::vector<HeaderField>& h) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const HeaderField& f : h) out.emplace_back(f.name, f.value);
  return out;
}

const std::vector<HeaderField> kOriginal = {
    orig("Received", "from a"), orig("Received", "from b"), orig("From", "x@example.org"),
    orig("Subject", "hello"),   orig("X-Spam", "old"),      orig("To", "y@example.test")};

TEST(HeaderEdits, NothingEditedGivesNoOperations) {
  EXPECT_TRUE(diff_headers(kOriginal, kOriginal).empty());
}

TEST(HeaderEdits, AppendedFieldsAreAdds) {
  auto edited = kOriginal;
  edited.push_back(fresh("X-Mailgate", "yes"));
  edited.push_back(fresh("X-Spam-Score", "1.5"));
  auto ops = diff_headers(kOriginal, edited);
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0], (HeaderOp{Kind::kAdd, "X-Mailgate", 0, "yes"}));
  EXPECT_EQ(ops[1], (HeaderOp{Kind::kAdd, "X-Spam-Score", 0, "1.5"}));
}

TEST(HeaderEdits, InsertedAtTopIsAnInsertAtZero) {
  auto edited = kOriginal;
  edited.insert(edited.begin(), fresh("Authentication-Results", "mx; spf=pass"));
  auto ops = diff_headers(kOriginal, edited);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0], (HeaderOp{Kind::kInsert, "Authentication-Results", 0, "mx; spf=pass"}));
  EXPECT_EQ(replay(kOriginal, ops), names_values(edited));
}

TEST(HeaderEdits, ChangedFieldKeepsItsPlaceAndOccurrence) {
  auto edited = kOriginal;
  edited[1] = fresh("Received", "from b (rewritten)");
  auto ops = diff_headers(kOriginal, edited);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0], (HeaderOp{Kind::kChange, "Received", 2, "from b (rewritten)"}));
}

TEST(HeaderEdits, RemovalsOfOneNameGoFromLastToFirst) {
  std::vector<HeaderField> original = {orig("X-Spam", "1"), orig("Subject", "s"),
                                       orig("X-Spam", "2"), orig("X-Spam", "3")};
  std::vector<HeaderField> edited = {original[1], original[2]};  // first and last removed
  auto ops = diff_headers(original, edited);
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0], (HeaderOp{Kind::kDelete, "X-Spam", 3, ""}));
  EXPECT_EQ(ops[1], (HeaderOp{Kind::kDelete, "X-Spam", 1, ""}));
  EXPECT_EQ(replay(original, ops), names_values(edited));
}

TEST(HeaderEdits, MixedEditsReplayToTheEditedList) {
  auto edited = kOriginal;
  edited.erase(edited.begin() + 4);                             // X-Spam removed
  edited[3] = fresh("Subject", "[external] hello");             // Subject changed
  edited.insert(edited.begin() + 2, fresh("X-Inserted", "1"));  // between Received and From
  edited.erase(edited.begin());                                 // first Received removed
  edited.push_back(fresh("X-Spam", "new"));                     // appended
  auto ops = diff_headers(kOriginal, edited);
  EXPECT_EQ(replay(kOriginal, ops), names_values(edited));
  // Deletions and changes come before insertions and appends.
  bool seen_insert = false;
  for (const HeaderOp& op : ops) {
    if (op.kind == Kind::kInsert || op.kind == Kind::kAdd) seen_insert = true;
    if (op.kind == Kind::kChange || op.kind == Kind::kDelete) {
      EXPECT_FALSE(seen_insert);
    }
  }
}

TEST(HeaderEdits, IdenticalDuplicateFieldsAreInterchangeable) {
  std::vector<HeaderField> original = {orig("X-A", "same"), orig("X-B", "b"), orig("X-A", "same")};
  std::vector<HeaderField> edited = {original[1], original[2]};  // the first X-A removed
  auto ops = diff_headers(original, edited);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].kind, Kind::kDelete);
  EXPECT_EQ(replay(original, ops), names_values(edited));
}

TEST(HeaderEdits, EverythingRemoved) {
  auto ops = diff_headers(kOriginal, {});
  EXPECT_EQ(ops.size(), kOriginal.size());
  EXPECT_TRUE(replay(kOriginal, ops).empty());
}

}  // namespace
}  // namespace mailgate::milter
