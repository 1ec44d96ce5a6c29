// obs/session_trace.cc — see session_trace.h.
#include "obs/session_trace.h"

#include <chrono>
#include <mutex>

#include "message/header_parser.h"
#include "obs/metrics.h"
#include "obs/recent_refusals.h"
#include "obs/trace_writer.h"
#include "util/ascii.h"

namespace mailgate::obs {
namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string message_id_in(const std::vector<chain::HeaderField>& fields) {
  for (const chain::HeaderField& f : fields)
    if (iequals(f.name, "Message-ID")) return normalize_message_id(f.value);
  return {};
}

// The text of `key<...>` in a log extra such as "from=<a@b> to=<c@d>"; empty when absent.
std::string bracketed(std::string_view extra, std::string_view key) {
  size_t at = extra.find(key);
  if (at == std::string_view::npos) return {};
  std::string_view rest = extra.substr(at + key.size());
  size_t end = rest.find('>');
  return std::string(rest.substr(0, end));
}

std::string session_name(const TransactionFacts& f) {
  std::string s(f.session);
  if (f.number > 0) s += "." + std::to_string(f.number);
  return s;
}

// Fills the fields every record has, and takes the plugin calls and symbols.
TraceRecord base_record(const TransactionFacts& f, chain::TxContext& tx,
                        std::vector<chain::TraceEntry>& calls) {
  TraceRecord r;
  r.time_ms = now_ms();
  r.session = session_name(f);
  r.profile = std::string(f.profile);
  r.client_ip = f.client.addr;
  r.client_name = f.client.name;
  r.helo = f.client.helo;
  r.sender = std::string(f.sender);
  r.recipients = f.recipients;
  r.status = std::string(f.status);
  r.reply = f.reply.empty() ? std::string() : f.reply.summary();
  r.size = f.size;
  r.delay_ms = static_cast<int64_t>(f.delay_seconds * 1000);
  for (const chain::TraceEntry& c : calls) {
    if (c.stage == MG_STAGE_RESET || c.stage == MG_STAGE_CLOSE) continue;
    TraceAction a;
    a.plugin = c.plugin;
    a.stage = chain::stage_name(c.stage);
    a.action = chain::action_name(c.action);
    if (!c.reply.empty()) a.reply = c.reply.summary();
    a.note = c.note;
    a.ms = c.milliseconds;
    r.actions.push_back(std::move(a));
  }
  calls.clear();
  std::lock_guard lock(tx.mu);
  r.score = tx.score();
  for (const chain::Symbol& s : tx.symbols)
    r.symbols.push_back({s.name, s.score, s.detail, s.plugin});
  r.message_id = message_id_in(tx.headers);
  return r;
}

}  // namespace

void trace_transaction(const TransactionFacts& facts, chain::TxContext& tx,
                       const spool::Spool* spool, std::vector<chain::TraceEntry>& plugin_calls) {
  count_transaction(facts.status, facts.delay_seconds);
  if (facts.status == "rejected" || facts.status == "tempfail") {
    Refusal ref;
    ref.time_ms = now_ms();
    ref.session = session_name(facts);
    ref.client = facts.client.addr;
    ref.stage = "END-OF-DATA";
    ref.reply = facts.reply.summary();
    if (facts.extra.rfind("plugin=", 0) == 0) ref.plugin = std::string(facts.extra.substr(7));
    ref.detail = "from=<" + std::string(facts.sender) + ">";
    recent_refusals().add(std::move(ref));
  }
  TraceWriter* writer = trace_writer();
  if (writer == nullptr) return;
  TraceRecord r = base_record(facts, tx, plugin_calls);
  r.stage = "data";
  if (facts.status == "accepted") r.queue_id = queue_id_from_reply(r.reply);
  if (facts.extra.rfind("plugin=", 0) == 0) r.decided_by = std::string(facts.extra.substr(7));
  if (r.message_id.empty() && spool != nullptr && spool->size() > 0) {
    // No plugin parsed the header: read the spooled header block for the Message-ID.
    message::HeaderParser parser;
    spool::Spool::Reader reader(*spool);
    std::string chunk;
    while (!parser.done() && reader.next(chunk)) parser.feed(chunk);
    parser.finish();
    r.message_id = message_id_in(parser.fields());
  }
  writer->submit(std::move(r));
}

void trace_refusal(std::string_view what, const TransactionFacts& facts, std::string_view plugin,
                   chain::TxContext& tx, std::vector<chain::TraceEntry>& plugin_calls) {
  note_refusal(what, session_name(facts), facts.client.addr, facts.reply.summary(),
               std::string(plugin), std::string(facts.extra));
  TraceWriter* writer = trace_writer();
  if (writer == nullptr) {
    plugin_calls.clear();
    return;
  }
  TraceRecord r = base_record(facts, tx, plugin_calls);
  r.stage = std::string(what);
  r.status = facts.reply.transient() ? "tempfail" : "rejected";
  for (char& c : r.stage) c = static_cast<char>(c | 0x20);  // "RCPT" -> "rcpt"
  r.decided_by = std::string(plugin);
  std::string from = bracketed(facts.extra, "from=<");
  if (r.sender.empty()) r.sender = from;
  std::string to = bracketed(facts.extra, "to=<");
  if (!to.empty()) r.recipients = {to};
  writer->submit(std::move(r));
}

}  // namespace mailgate::obs
