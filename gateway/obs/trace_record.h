// obs/trace_record.h — one transaction as the trace keeps it: envelope, client, message-id,
// what each plugin did, the score symbols, the verdict, the backend's reply and queue id.
// Owns: the record's fields and their JSON form (shared by the store and mailgatectl).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mailgate::obs {

struct TraceSymbol {
  std::string name;
  double score = 0;
  std::string detail;
  std::string plugin;
};

// One plugin callback: which plugin, at which stage, what it decided and how long it took.
struct TraceAction {
  std::string plugin;
  std::string stage;   // "rcpt", "eom", ...
  std::string action;  // "continue", "reject", ...
  std::string reply;   // for tempfail/reject
  std::string note;    // "timed out after 200 ms; fail mode open", ...
  double ms = 0;
};

struct TraceRecord {
  int64_t id = 0;       // row id (0 before it is stored)
  int64_t time_ms = 0;  // Unix time of the final reply
  std::string session;  // "6A1F00000001.1" (session id . transaction number)
  std::string profile;  // listener profile
  std::string client_ip;
  std::string client_name;
  std::string helo;
  std::string sender;
  std::vector<std::string> recipients;
  std::string message_id;  // without the angle brackets
  std::string queue_id;    // from the backend's 250 reply
  std::string stage;       // where it ended: "data" for a whole message, else the refused stage
  std::string status;      // accepted, rejected, tempfail, discarded, aborted
  std::string reply;       // the client's final reply
  std::string decided_by;  // plugin whose verdict ended it, if any
  double score = 0;
  uint64_t size = 0;
  int64_t delay_ms = 0;
  std::vector<TraceSymbol> symbols;
  std::vector<TraceAction> actions;
};

// "<abc@host>" -> "abc@host" (also trims spaces); the form the trace stores and searches.
std::string normalize_message_id(std::string_view text);
// Postfix's "250 2.0.0 Ok: queued as 4Xyz" -> "4Xyz"; "id=..." forms too; empty when none.
std::string queue_id_from_reply(std::string_view text);

}  // namespace mailgate::obs
