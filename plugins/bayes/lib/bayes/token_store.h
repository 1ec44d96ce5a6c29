// plugins/bayes/lib/bayes/token_store.h — where token counts live: the interface the classifier
// and the learners use, with two implementations — SqliteTokenStore (sqlite_store.h, one file,
// the default) and CounterTokenStore (counter_store.h, on the gateway's shared counters, so
// several gateways pointed at one Redis share what any of them learned).
//
// Owns: the meaning of the counts. A token's counts are the number of learned spam and ham
// messages that contained it; the totals are the numbers of learned spam and ham messages. A
// message is identified by a digest (message_digest()): learning it again with the same label
// changes nothing, learning it with the other label moves its counts over (a correction).
// Errors are returned as text naming the store; they are never thrown after construction.
// Threading: an implementation says whether one object may be used from several threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bayes/mime.h"

namespace mailgate::bayes {

enum class Label { kHam, kSpam };

struct TokenCounts {
  std::int64_t spam = 0;
  std::int64_t ham = 0;
};

struct Totals {
  std::int64_t spam = 0;  // learned spam messages
  std::int64_t ham = 0;   // learned ham messages
};

enum class LearnOutcome {
  kLearned,       // new: its tokens were counted
  kRelearned,     // it had been learned with the other label: its counts were moved
  kAlreadyKnown,  // it had been learned with this label already: nothing changed
};

class TokenStore {
 public:
  virtual ~TokenStore() = default;
  // Fills `counts` (one per token, same order) and `totals`. Returns "" or the error.
  virtual std::string lookup(const std::vector<std::string>& tokens,
                             std::vector<TokenCounts>& counts, Totals& totals) = 0;
  // The totals alone. Returns "" or the error.
  virtual std::string totals(Totals& totals) = 0;
  // Learns the message with `digest` and `tokens` as `label`. Returns "" or the error.
  virtual std::string learn(const std::vector<std::string>& tokens, Label label,
                            const std::string& digest, LearnOutcome& outcome) = 0;
  // "sqlite:/var/lib/mailgate/bayes.db", "store", for logs and errors.
  virtual std::string describe() const = 0;
};

// A message's identity for learning: 16 hex digits of a 64-bit FNV-1a hash over its
// Message-ID and up to 64 KiB of its body.
std::string message_digest(const Message& message);

}  // namespace mailgate::bayes
