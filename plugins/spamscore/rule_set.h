// plugins/spamscore/rule_set.h — the content rules from the policy's spam_rules table
// (policy_lookup("spam_rules", "*")), compiled together: one RE2::Set per kind (and per header
// field name for kind 'header'), so each piece of text is matched against every rule of its
// kind in one pass, however many rules there are.
// Owns: reading the rule rows' JSON, compiling, matching. A row that is malformed or whose
// pattern does not compile makes compile() fail with a message naming the row
// ("spam_rules row 'FOO': pattern does not compile: missing ): (abc"); the caller then keeps the
// rule set it had.
// Threading: a compiled RuleSet is immutable; match() from any number of threads at once.
#pragma once

#include <re2/set.h>

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::spamscore {

enum class RuleKind { kHeader, kSubject, kBody, kUrl, kRaw };
inline constexpr std::size_t kRuleKinds = 5;

struct Rule {
  std::string name;  // the symbol
  RuleKind kind = RuleKind::kBody;
  std::string header;  // lower-case field name, kind header only
  std::string pattern;
  double score = 0;
  std::string description;
};

class RuleSet {
 public:
  struct Compiled;  // the result of compile()
  // Parses the lookup's JSON array and compiles it. Never throws.
  static Compiled compile(std::string_view json);

  const std::vector<Rule>& rules() const { return rules_; }
  bool empty() const { return rules_.empty(); }
  // Marks in *hits (indexed like rules(), sized by the caller) the rules of `kind` matching
  // `text`; for kind header, `field` is the header field's name. Returns false when RE2 gave up
  // (its memory budget), which leaves those rules unmarked.
  bool match(RuleKind kind, std::string_view field, std::string_view text,
             std::vector<bool>* hits) const;
  // Whether any rule of `kind` exists (saves building text nobody matches).
  bool has(RuleKind kind) const;

 private:
  struct Group {
    std::unique_ptr<RE2::Set> set;
    std::vector<std::size_t> rule_index;  // set index -> rules_ index
  };
  std::vector<Rule> rules_;
  Group by_kind_[kRuleKinds];               // kind header unused here
  std::map<std::string, Group> by_header_;  // lower-case field name
};

struct RuleSet::Compiled {
  std::shared_ptr<const RuleSet> rules;  // null on error
  std::string error;                     // names the row
};

}  // namespace mailgate::spamscore
