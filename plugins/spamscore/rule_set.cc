// plugins/spamscore/rule_set.cc — see rule_set.h.
#include "rule_set.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace mailgate::spamscore {
namespace {

constexpr std::int64_t kSetMaxMem = 64 << 20;  // per RE2::Set; RE2's default is 8 MiB

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool parse_kind(std::string_view text, RuleKind* kind) {
  static constexpr std::pair<std::string_view, RuleKind> kKinds[] = {
      {"header", RuleKind::kHeader},
      {"subject", RuleKind::kSubject},
      {"body", RuleKind::kBody},
      {"url", RuleKind::kUrl},
      {"raw", RuleKind::kRaw}};
  for (const auto& [name, value] : kKinds) {
    if (text == name) {
      *kind = value;
      return true;
    }
  }
  return false;
}

bool valid_symbol(std::string_view name) {
  return !name.empty() && name.size() <= 64 &&
         name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == std::string_view::npos;
}

RE2::Options set_options() {
  RE2::Options options;  // UTF-8, as the gateway's snapshot validates the patterns
  options.set_log_errors(false);
  options.set_max_mem(kSetMaxMem);
  return options;
}

}  // namespace

RuleSet::Compiled RuleSet::compile(std::string_view json) {
  Compiled result;
  nlohmann::json rows = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!rows.is_array()) {
    result.error = "spam_rules: the policy's answer is not a JSON array";
    return result;
  }
  auto set = std::shared_ptr<RuleSet>(new RuleSet());
  for (const nlohmann::json& row : rows) {
    const std::string name = row.is_object() && row.contains("name") && row["name"].is_string()
                                 ? row["name"].get<std::string>()
                                 : "";
    const std::string label = "spam_rules row '" + name + "'";
    if (!valid_symbol(name)) {
      result.error = label + ": name must match [A-Z0-9_]{1,64}";
      return result;
    }
    Rule rule;
    rule.name = name;
    const auto text_field = [&](const char* key) -> std::string {
      auto it = row.find(key);
      return it != row.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (!parse_kind(text_field("kind"), &rule.kind)) {
      result.error = label + ": kind must be header, subject, body, url or raw";
      return result;
    }
    rule.header = lower(text_field("header"));
    if (rule.kind == RuleKind::kHeader && rule.header.empty()) {
      result.error = label + ": header must name a header field for kind 'header'";
      return result;
    }
    rule.pattern = text_field("pattern");
    if (rule.pattern.empty()) {
      result.error = label + ": pattern must not be empty";
      return result;
    }
    auto score = row.find("score");
    if (score == row.end() || !score->is_number() || !std::isfinite(score->get<double>())) {
      result.error = label + ": score must be a number";
      return result;
    }
    rule.score = score->get<double>();
    rule.description = text_field("description");

    Group& group = rule.kind == RuleKind::kHeader ? set->by_header_[rule.header]
                                                  : set->by_kind_[static_cast<int>(rule.kind)];
    if (!group.set) group.set = std::make_unique<RE2::Set>(set_options(), RE2::UNANCHORED);
    std::string error;
    if (group.set->Add(rule.pattern, &error) < 0) {
      result.error = label + ": pattern does not compile: " + error;
      return result;
    }
    group.rule_index.push_back(set->rules_.size());
    set->rules_.push_back(std::move(rule));
  }
  auto compile_group = [&](Group& group, std::string_view what) {
    if (!group.set || group.set->Compile()) return true;
    result.error = "spam_rules: the " + std::to_string(group.rule_index.size()) + " rules of " +
                   std::string(what) + " do not compile together (RE2 memory budget)";
    return false;
  };
  static constexpr std::string_view kKindNames[kRuleKinds] = {"kind header", "kind subject",
                                                              "kind body", "kind url", "kind raw"};
  for (std::size_t k = 0; k < kRuleKinds; ++k)
    if (!compile_group(set->by_kind_[k], kKindNames[k])) return result;
  for (auto& [field, group] : set->by_header_)
    if (!compile_group(group, "header " + field)) return result;
  result.rules = std::move(set);
  return result;
}

bool RuleSet::has(RuleKind kind) const {
  if (kind == RuleKind::kHeader) return !by_header_.empty();
  return by_kind_[static_cast<int>(kind)].set != nullptr;
}

bool RuleSet::match(RuleKind kind, std::string_view field, std::string_view text,
                    std::vector<bool>* hits) const {
  const Group* group = nullptr;
  if (kind == RuleKind::kHeader) {
    auto it = by_header_.find(lower(field));
    if (it == by_header_.end()) return true;
    group = &it->second;
  } else {
    group = &by_kind_[static_cast<int>(kind)];
  }
  if (!group->set) return true;
  std::vector<int> matched;
  RE2::Set::ErrorInfo info{};
  if (!group->set->Match(re2::StringPiece(text.data(), text.size()), &matched, &info))
    return info.kind == RE2::Set::kNoError;  // no match, or RE2 gave up
  for (int i : matched) (*hits)[group->rule_index[static_cast<std::size_t>(i)]] = true;
  return true;
}

}  // namespace mailgate::spamscore
