// obs/recent_refusals.h — the last refusals the gateway made, for the status page's table.
// Owns: a fixed ring of kCapacity entries behind a mutex. Written when the gateway refuses
// something (not on the path of an accepted message), read per status request.
// Must not touch: the transaction trace (obs/trace_*), which keeps every transaction.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::obs {

struct Refusal {
  int64_t time_ms = 0;  // Unix time
  std::string session;  // "6A1F00000001"
  std::string client;   // client address
  std::string stage;    // "RCPT", "EOM", ...
  std::string reply;    // "550 5.7.1 ..."
  std::string plugin;   // who decided, if a plugin did
  std::string detail;   // from=<...> to=<...>
};

class RecentRefusals {
 public:
  static constexpr size_t kCapacity = 100;
  void add(Refusal r);
  // Newest first.
  std::vector<Refusal> list() const;

 private:
  mutable std::mutex mu_;
  std::vector<Refusal> ring_;
  size_t next_ = 0;
};

RecentRefusals& recent_refusals();

// One-line hook: records a refusal (stage as the session logs it) and, when a plugin made it,
// counts it in mailgate_refusals_total. An empty plugin means the backend refused.
void note_refusal(std::string_view stage, const std::string& session, const std::string& client,
                  const std::string& reply, const std::string& plugin, const std::string& detail);

}  // namespace mailgate::obs
