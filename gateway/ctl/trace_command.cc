// ctl/trace_command.cc — `mailgatectl trace`: finds transactions in the gateway's trace
// database (--trace_db of the daemon) by sender, recipient, client address, Message-ID, queue
// id, status and time range, newest first; prints each with its envelope, plugin actions,
// symbols, score, verdict and backend reply, or a JSON array with --json.
// Reads only; the gateway keeps writing meanwhile (WAL).
#include <fmt/format.h>

#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>

#include "ctl/commands.h"
#include "obs/trace_store.h"

namespace mailgate::ctl {
namespace {

constexpr std::string_view kDefaultTracePath = "/var/lib/mailgate/trace.db";

int64_t now_ms() { return static_cast<int64_t>(std::time(nullptr)) * 1000; }

// "30m", "2h", "7d", "45s" (that long ago); Unix seconds; or UTC "YYYY-MM-DD[THH:MM[:SS]][Z]".
std::optional<int64_t> parse_time(std::string_view text) {
  if (text.empty()) return std::nullopt;
  char unit = text.back();
  if (unit == 's' || unit == 'm' || unit == 'h' || unit == 'd') {
    auto n = parse_int(text.substr(0, text.size() - 1));
    if (!n || *n < 0) return std::nullopt;
    int64_t seconds = *n * (unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 86400);
    return now_ms() - seconds * 1000;
  }
  if (auto n = parse_int(text); n && text.size() >= 9) return *n * 1000;
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char sep = 0;
  std::string t(text);
  if (!t.empty() && t.back() == 'Z') t.pop_back();
  int fields = std::sscanf(t.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d", &y, &mo, &d, &sep, &h, &mi, &s);
  if (fields != 3 && fields < 6) return std::nullopt;
  if (fields > 3 && sep != 'T' && sep != ' ') return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

std::string iso_time(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms % 1000));
}

nlohmann::ordered_json to_json(const obs::TraceRecord& r) {
  nlohmann::ordered_json symbols = nlohmann::ordered_json::array();
  for (const obs::TraceSymbol& s : r.symbols)
    symbols.push_back(
        {{"name", s.name}, {"score", s.score}, {"detail", s.detail}, {"plugin", s.plugin}});
  nlohmann::ordered_json actions = nlohmann::ordered_json::array();
  for (const obs::TraceAction& a : r.actions) {
    nlohmann::ordered_json o = {
        {"plugin", a.plugin}, {"stage", a.stage}, {"action", a.action}, {"ms", a.ms}};
    if (!a.reply.empty()) o["reply"] = a.reply;
    if (!a.note.empty()) o["note"] = a.note;
    actions.push_back(std::move(o));
  }
  return {{"id", r.id},
          {"time", iso_time(r.time_ms)},
          {"time_ms", r.time_ms},
          {"session", r.session},
          {"profile", r.profile},
          {"client_ip", r.client_ip},
          {"client_name", r.client_name},
          {"helo", r.helo},
          {"sender", r.sender},
          {"recipients", r.recipients},
          {"message_id", r.message_id},
          {"queue_id", r.queue_id},
          {"stage", r.stage},
          {"status", r.status},
          {"reply", r.reply},
          {"decided_by", r.decided_by},
          {"score", r.score},
          {"size", r.size},
          {"delay_ms", r.delay_ms},
          {"symbols", std::move(symbols)},
          {"actions", std::move(actions)}};
}

void print_human(Context& ctx, const obs::TraceRecord& r) {
  std::string head = fmt::format("{} {} {}", iso_time(r.time_ms), r.session, r.status);
  if (r.stage != "data") head += " at " + r.stage;
  if (!r.queue_id.empty()) head += " queue_id=" + r.queue_id;
  if (!r.decided_by.empty()) head += " by plugin " + r.decided_by;
  ctx.out << head << "\n";
  ctx.out << fmt::format("  client:     {}[{}] helo=<{}> profile={}\n", r.client_name, r.client_ip,
                         r.helo, r.profile);
  ctx.out << fmt::format("  from:       <{}>\n", r.sender);
  std::string to;
  for (const std::string& a : r.recipients) to += (to.empty() ? "<" : ", <") + a + ">";
  ctx.out << fmt::format("  to:         {}\n", to.empty() ? "(none)" : to);
  if (!r.message_id.empty()) ctx.out << fmt::format("  message-id: <{}>\n", r.message_id);
  ctx.out << fmt::format("  reply:      {}\n", r.reply.empty() ? "(none)" : r.reply);
  ctx.out << fmt::format("  score:      {:.2f}   size: {}   delay: {} ms\n", r.score, r.size,
                         r.delay_ms);
  for (const obs::TraceSymbol& s : r.symbols)
    ctx.out << fmt::format("  symbol:     {} {:+.2f}{}{} ({})\n", s.name, s.score,
                           s.detail.empty() ? "" : " ", s.detail, s.plugin);
  for (const obs::TraceAction& a : r.actions) {
    std::string line =
        fmt::format("  plugin:     {} {} {} {:.3f} ms", a.plugin, a.stage, a.action, a.ms);
    if (!a.reply.empty()) line += " \"" + a.reply + "\"";
    if (!a.note.empty()) line += " (" + a.note + ")";
    ctx.out << line << "\n";
  }
}

}  // namespace

int run_trace(Context& ctx, const Args& args) {
  std::string path;
  if (auto v = args.value("--trace-db")) {
    path = *v;
  } else if (const char* env = std::getenv("MAILGATE_TRACE_DB"); env != nullptr && *env != 0) {
    path = env;
  } else {
    path = std::string(kDefaultTracePath);
  }
  obs::TraceQuery q;
  q.sender = args.value("--from");
  q.recipient = args.value("--to");
  q.client_ip = args.value("--client-ip");
  q.message_id = args.value("--message-id");
  q.queue_id = args.value("--queue-id");
  q.status = args.value("--status");
  if (q.status && *q.status != "accepted" && *q.status != "rejected" && *q.status != "tempfail" &&
      *q.status != "discarded" && *q.status != "aborted")
    return usage_error(ctx, "--status: '" + *q.status +
                                "' is not one of accepted, rejected, tempfail, discarded, aborted");
  for (auto [option, target] :
       {std::pair{"--since", &q.since_ms}, std::pair{"--until", &q.until_ms}}) {
    if (auto v = args.value(option)) {
      auto t = parse_time(*v);
      if (!t)
        return usage_error(ctx, fmt::format("{}: '{}' is not a time (use 30m, 2h, 7d, Unix "
                                            "seconds or 2026-11-22T10:00:00Z)",
                                            option, *v));
      *target = *t;
    }
  }
  if (auto v = args.value("--limit")) {
    int exit = 0;
    auto n = int_arg(ctx, "--limit", *v, &exit);
    if (!n) return exit;
    if (*n < 1 || *n > 100000) return usage_error(ctx, "--limit: must be from 1 to 100000");
    q.limit = static_cast<size_t>(*n);
  }
  auto store = obs::TraceStore::open(path, obs::TraceStore::Mode::kReader);
  if (!store) return fail(ctx, store.error());
  auto found = store->find(q);
  if (!found) return fail(ctx, found.error());
  if (ctx.json) {
    nlohmann::ordered_json array = nlohmann::ordered_json::array();
    for (const obs::TraceRecord& r : *found) array.push_back(to_json(r));
    ctx.out << array.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  if (found->empty()) {
    ctx.out << "no matching transactions in " << path << "\n";
    return kExitOk;
  }
  for (size_t i = 0; i < found->size(); ++i) {
    if (i > 0) ctx.out << "\n";
    print_human(ctx, (*found)[i]);
  }
  return kExitOk;
}

}  // namespace mailgate::ctl
