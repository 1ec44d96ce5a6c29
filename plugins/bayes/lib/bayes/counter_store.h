// plugins/bayes/lib/bayes/counter_store.h — token counts in the gateway's shared counters
// (mg_host.counter_add with window 0, i.e. no expiry): with --redis every gateway, and
// `mailgatectl learn --redis`, read and write the same counts.
//
// Owns: the key layout, under a prefix (default "bayes"):
//   <prefix>:t:<token>    one counter per token: spam count · 2^32 + ham count, so that one
//                         round trip reads or changes both
//   <prefix>:n            the totals, packed the same way
//   <prefix>:seen:<digest> 1 = learned as ham, 2 = learned as spam (learn's bookkeeping)
// Reading a counter is an add of 0. Two learners of one message at the same instant may both
// count it (the seen counter is read, then changed): a rare double count, never corruption.
// Tokens whose key would pass the store's 512 bytes are skipped (the tokenizer keeps them far
// shorter). Counts above 2^31 per class are not supported (the packing's limit).
// Threading: as the counter function it is given; the gateway's is thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "bayes/token_store.h"

namespace mailgate::bayes {

// Adds delta to the counter at key (no expiry); the new value, or nullopt when the store is
// unavailable.
using CounterAdd =
    std::function<std::optional<std::int64_t>(std::string_view key, std::int64_t delta)>;

class CounterTokenStore final : public TokenStore {
 public:
  CounterTokenStore(CounterAdd add, std::string prefix, std::string description);

  std::string lookup(const std::vector<std::string>& tokens, std::vector<TokenCounts>& counts,
                     Totals& totals) override;
  std::string totals(Totals& totals) override;
  std::string learn(const std::vector<std::string>& tokens, Label label, const std::string& digest,
                    LearnOutcome& outcome) override;
  std::string describe() const override { return description_; }

  static constexpr std::int64_t kSpamUnit = std::int64_t{1} << 32;
  static TokenCounts unpack(std::int64_t packed);

 private:
  std::string add_all(const std::vector<std::string>& tokens, std::int64_t delta);
  std::string unavailable() const;

  CounterAdd add_;
  std::string prefix_;
  std::string description_;
};

}  // namespace mailgate::bayes
