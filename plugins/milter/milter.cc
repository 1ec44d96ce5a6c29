// plugins/milter/milter.cc — the `milter` plugin: the gateway as a milter *client* (the MTA
// side of the protocol, as Postfix's smtpd/cleanup are), so that external milters (opendkim,
// rspamd, clamav-milter, ...) filter the mail the proxy relays to any backend MTA.
//
// Owns: the stage mapping below, the macros (session items under sendmail's macro names), the
// per-milter fail mode, turning milter replies into actions with their reply text, and
// applying end-of-message modifications through the SDK's header and envelope edits.
// Must not touch: the wire protocol (protocol.h), sockets (connection.h), the per-milter
// conversation (client.h). Not the milter *mode* of the gateway (gateway/milter/).
//
//   CONNECT  open a connection to each milter, negotiate (version 6), send 'C'
//   HELO     'H'          MAIL 'M' <sender> + ESMTP parameters     RCPT 'R' <recipient>
//   DATA     'T'
//   EOH      'L' for each header field as it will be relayed (the value after the colon, one
//            leading space removed unless the milter asked for HDR_LEADSPC, folding as "\n" +
//            white space as sendmail sends it), then 'N'
//   BODY     'B' chunks of at most 65535 bytes
//   EOM      'E', then the milter's modifications, applied in order: add/insert/change/delete
//            header, add/delete recipient, change sender
//   RESET    'A' when the milter still has a transaction open      CLOSE 'Q' and close
// Milters are asked in the order listed; the first refusal (reject, tempfail, discard) is the
// plugin's answer. A milter's ACCEPT only ends that milter's part. A milter that cannot be used
// (connect failure, timeout, protocol breach) gets its fail mode: "tempfail" answers 451 4.7.1
// (from MAIL on: a failure at CONNECT or HELO is reported at the next MAIL, so the client
// sees a per-transaction 4xx, not a refused greeting), "reject" 550 5.7.1, "continue" goes on
// without it for the rest of the session.
//
// Threads: blocking (runs on the gateway's worker pool). The plugin object is immutable after
// construction; each session's connections live in its session data slot.
#include <mailgate/plugin.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client.h"
#include "settings.h"

namespace {

using mailgate::Action;
using mailgate::Item;
using mailgate::LogLevel;
using mailgate::Scope;
using mailgate::Session;
using namespace mailgate::milter_client;

// One session's milters. The gateway may abandon a callback that overruns the plugin row's
// timeout and go on with the session while that call still runs on its worker: every callback
// therefore holds `mu` for its whole run (the next one waits until the abandoned one, bounded
// by the milters' own timeouts, is done) and a reference, so that the session's end cannot free
// the connections under a call still using them.
struct SessionMilters {
  std::mutex mu;
  bool connected = false;  // connect() was run for each milter
  std::vector<std::unique_ptr<MilterClient>> clients;
  std::vector<bool> failure_logged;
  std::vector<Verdict> connect_verdicts;  // what each said at CONNECT (answered by on_connect)
};

// What the session's data slot holds.
struct SessionSlot {
  std::shared_ptr<SessionMilters> milters = std::make_shared<SessionMilters>();
};

// The session's milters, kept alive and locked for one callback.
class LockedMilters {
 public:
  explicit LockedMilters(std::shared_ptr<SessionMilters> m) : m_(std::move(m)), lock_(m_->mu) {}
  SessionMilters& operator*() const noexcept { return *m_; }
  SessionMilters* operator->() const noexcept { return m_.get(); }

 private:
  std::shared_ptr<SessionMilters> m_;
  std::unique_lock<std::mutex> lock_;
};

// The sendmail macro `name` from the session's items; nullopt when not known.
std::optional<std::string> macro_value(const Session& s, std::string_view name) {
  const auto item = [&](Item i) -> std::optional<std::string> {
    const std::optional<std::string_view> v = s.find(i);
    if (!v || v->empty()) return std::nullopt;
    return std::string(*v);
  };
  const auto local = [&](bool want_port) -> std::optional<std::string> {
    const std::optional<std::string> v = item(Item::kLocalAddr);
    if (!v) return std::nullopt;
    const std::size_t colon = v->rfind(':');
    if (colon == std::string::npos) return want_port ? std::nullopt : v;
    if (want_port) return v->substr(colon + 1);
    std::string host = v->substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    return host;
  };
  if (name == "j") return item(Item::kHostname);
  if (name == "{daemon_name}" || name == "v") return std::string("mailgate");
  if (name == "{daemon_addr}" || name == "{if_addr}") return local(false);
  if (name == "{daemon_port}") return local(true);
  if (name == "{client_addr}") return item(Item::kClientAddr);
  if (name == "{client_port}") return item(Item::kClientPort);
  if (name == "{client_name}" || name == "{client_ptr}") return item(Item::kClientName);
  if (name == "_") {
    const std::optional<std::string> addr = item(Item::kClientAddr);
    if (!addr) return std::nullopt;
    return item(Item::kClientName).value_or("unknown") + " [" + *addr + "]";
  }
  if (name == "{tls_version}") return item(Item::kTlsVersion);
  if (name == "{cipher}") return item(Item::kTlsCipher);
  if (name == "{auth_authen}") return item(Item::kAuthUser);
  if (name == "i") return item(Item::kTxId);
  if (name == "{mail_addr}") {
    const std::optional<std::string_view> v = s.find(Item::kSender);
    if (!v) return std::nullopt;
    return std::string(*v);
  }
  if (name == "{rcpt_addr}") return item(Item::kCurrentRcpt);
  return std::nullopt;
}

// Line breaks of a header value from a milter ("\n" or "\r\n" before white space) as the
// message has them ("\r\n").
std::string crlf_value(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 8);
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\r' && i + 1 < value.size() && value[i + 1] == '\n') continue;
    if (value[i] == '\n') {
      out += "\r\n";
      continue;
    }
    out += value[i];
  }
  return out;
}

// A header value as received ("\r\n" folding) as milters are sent it ("\n" folding).
std::string lf_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\r' && i + 1 < value.size() && value[i + 1] == '\n') continue;
    out += value[i];
  }
  return out;
}

class MilterPlugin final : public mailgate::Plugin {
 public:
  explicit MilterPlugin(const mailgate::PluginContext& context)
      : Plugin(context), milters_(parse_settings(context.settings_json)) {}

  Action on_connect(Session& s) override {
    const LockedMilters locked = milters(s);
    SessionMilters& m = *locked;
    for (std::size_t i = 0; i < m.clients.size(); ++i) {
      const std::optional<Action> a = decide(s, m, i, m.connect_verdicts[i], true);
      if (a) return *a;
    }
    return Action::kContinue;
  }

  Action on_helo(Session& s, std::string_view helo) override {
    const LockedMilters locked = milters(s);
    SessionMilters& m = *locked;
    const MacroSource macros = source(s);
    for (std::size_t i = 0; i < m.clients.size(); ++i) {
      const std::optional<Action> a = decide(s, m, i, m.clients[i]->helo(macros, helo), true);
      if (a) return *a;
    }
    return Action::kContinue;
  }

  Action on_mail(Session& s, std::string_view sender) override {
    const LockedMilters locked = milters(s);
    SessionMilters& m = *locked;
    const MacroSource macros = source(s);
    std::vector<std::string> args{"<" + std::string(sender) + ">"};
    for (const char* keyword : {"SIZE", "BODY", "SMTPUTF8", "RET", "ENVID", "AUTH", "REQUIRETLS"}) {
      const std::optional<std::string_view> v = s.mail_param(keyword);
      if (v) args.push_back(v->empty() ? std::string(keyword) : keyword + ("=" + std::string(*v)));
    }
    for (std::size_t i = 0; i < m.clients.size(); ++i) {
      const std::optional<Action> a = decide(s, m, i, m.clients[i]->mail(macros, args), false);
      if (a) return *a;
    }
    return Action::kContinue;
  }

  Action on_rcpt(Session& s, std::string_view recipient) override {
    return each(s, [&](MilterClient& c, const MacroSource& macros) {
      return c.rcpt(macros, {"<" + std::string(recipient) + ">"});
    });
  }

  Action on_data(Session& s) override {
    return each(s, [&](MilterClient& c, const MacroSource& macros) { return c.data(macros); });
  }

  // The header fields go at EOH, read as they will be relayed (header_raw_at), so that a milter
  // sees each value exactly: the white space after the colon and the folding included (a
  // signing milter with simple canonicalization depends on it).
  Action on_eoh(Session& s) override {
    std::vector<std::pair<std::string, std::string>> fields;
    const std::vector<Session::Header> parsed = s.headers();
    for (std::size_t i = 0; i < parsed.size(); ++i) {
      std::string name(parsed[i].name);
      std::string value = " " + std::string(parsed[i].value);
      if (const std::optional<std::string_view> raw = s.header_raw(i); raw) {
        const std::size_t colon = raw->find(':');
        if (colon != std::string_view::npos) {
          name.assign(raw->substr(0, colon));
          std::string_view rest = raw->substr(colon + 1);
          if (rest.size() >= 2 && rest.substr(rest.size() - 2) == "\r\n") rest.remove_suffix(2);
          value.assign(rest);
        }
      }
      fields.emplace_back(std::move(name), lf_value(value));
    }
    return each(s, [&](MilterClient& c, const MacroSource& macros) {
      for (const auto& [name, value] : fields) {
        Verdict v = c.header(name, value);
        if (v.kind != Verdict::Kind::kContinue) return v;
      }
      return c.end_of_header(macros);
    });
  }

  Action on_body(Session& s, std::string_view chunk) override {
    return each(s, [&](MilterClient& c, const MacroSource&) { return c.body(chunk); });
  }

  Action on_eom(Session& s) override {
    const LockedMilters locked = milters(s);
    SessionMilters& m = *locked;
    const MacroSource macros = source(s);
    // A milter's REPLBODY chunks make one body; a later milter's body replaces an earlier one's
    // (every milter is sent the body as received). Given to the gateway once, at the end.
    std::optional<std::string> new_body;
    std::size_t body_from = 0;
    for (std::size_t i = 0; i < m.clients.size(); ++i) {
      MilterClient& c = *m.clients[i];
      std::vector<Response> mods;
      Verdict v = c.end_of_message(macros, &mods);
      if (v.kind == Verdict::Kind::kContinue || v.kind == Verdict::Kind::kAccept) {
        if (take_body(mods, &new_body)) body_from = i;
        if (std::string e = apply(s, c, mods); !e.empty()) {
          v = Verdict{};
          v.kind = Verdict::Kind::kFailed;
          v.error = e;
        }
      }
      const std::optional<Action> a = decide(s, m, i, v, false);
      if (a) return *a;
    }
    if (new_body && !s.body_replace(*new_body)) {
      Verdict v;
      v.kind = Verdict::Kind::kFailed;
      v.error = "the gateway refused the modification REPLBODY (" +
                std::to_string(new_body->size()) + " octets; over --max_message_size?)";
      const std::optional<Action> a = decide(s, m, body_from, v, false);
      if (a) return *a;
    }
    return Action::kContinue;
  }

  void on_reset(Session& s) override {
    const SessionSlot* slot = s.data<SessionSlot>(Scope::kSession);
    if (slot == nullptr) return;
    const LockedMilters m(slot->milters);
    for (auto& c : m->clients) c->end_transaction();
  }

  void on_close(Session& s) override {
    const SessionSlot* slot = s.data<SessionSlot>(Scope::kSession);
    if (slot == nullptr) return;
    const LockedMilters m(slot->milters);
    for (auto& c : m->clients) c->quit();
  }

 private:
  static MacroSource source(const Session& s) {
    return [s](std::string_view name) { return macro_value(s, name); };
  }

  // The session's milters, connected (and told about the client) on first use.
  LockedMilters milters(Session& s) {
    SessionSlot* slot = s.data<SessionSlot>(Scope::kSession);
    if (slot == nullptr) {
      s.set_data(std::make_unique<SessionSlot>(), Scope::kSession);
      slot = s.data<SessionSlot>(Scope::kSession);
    }
    LockedMilters locked(slot->milters);
    SessionMilters& m = *locked;
    if (m.connected) return locked;
    m.connected = true;
    const std::string addr(s.get(Item::kClientAddr));
    const std::string name(s.get(Item::kClientName));
    const std::string port_text(s.get(Item::kClientPort));
    unsigned long port = 0;
    for (char ch : port_text) port = ch >= '0' && ch <= '9' ? port * 10 + (ch - '0') : 0;
    const char family = addr.empty() ? 'U' : (addr.find(':') != std::string::npos ? '6' : '4');
    const std::string hostname = name.empty() || name == "unknown" ? "[" + addr + "]" : name;
    const MacroSource macros = source(s);
    for (const MilterConfig& config : milters_) {
      // Body replacement and quarantine are offered when the host can apply them (ABI 1.3).
      const std::uint32_t offered =
          MG_HOST_HAS(host(), quarantine) ? act::kOfferedWithBody : act::kOffered;
      m.clients.push_back(std::make_unique<MilterClient>(config, offered));
      m.failure_logged.push_back(false);
      const std::size_t i = m.clients.size() - 1;
      const Verdict v = m.clients[i]->connect(macros, hostname, family,
                                              static_cast<std::uint16_t>(port & 0xffff), addr);
      m.connect_verdicts.push_back(v);
    }
    return locked;
  }

  template <class F>
  Action each(Session& s, F&& f) {
    const LockedMilters locked = milters(s);
    SessionMilters& m = *locked;
    const MacroSource macros = source(s);
    for (std::size_t i = 0; i < m.clients.size(); ++i) {
      const std::optional<Action> a = decide(s, m, i, f(*m.clients[i], macros), false);
      if (a) return *a;
    }
    return Action::kContinue;
  }

  void log_failure(Session& s, SessionMilters& m, std::size_t i, const std::string& error) {
    if (m.failure_logged[i]) return;
    m.failure_logged[i] = true;
    const MilterConfig& c = m.clients[i]->config();
    s.log(LogLevel::kWarning, "milter \"" + c.name + "\" (" + c.endpoint.text +
                                  ") unusable for this session: " + error + "; fail mode " +
                                  fail_mode_name(c.fail_mode));
  }

  // The action for milter i's verdict, or nullopt to go on with the next milter.
  std::optional<Action> decide(Session& s, SessionMilters& m, std::size_t i, const Verdict& v,
                               bool before_mail) {
    const MilterConfig& c = m.clients[i]->config();
    switch (v.kind) {
      case Verdict::Kind::kContinue:
      case Verdict::Kind::kAccept:
        return std::nullopt;
      case Verdict::Kind::kReject:
        s.log(LogLevel::kInfo,
              "milter \"" + c.name + "\" rejects" +
                  (v.code != 0 ? ": " + std::to_string(v.code) + " " + v.text : ""));
        if (v.code != 0)
          s.set_reply(v.code, v.enhanced, v.text);
        else
          s.set_reply(550, "5.7.1", "Command rejected");
        return Action::kReject;
      case Verdict::Kind::kTempFail:
        s.log(LogLevel::kInfo,
              "milter \"" + c.name + "\" tempfails" +
                  (v.code != 0 ? ": " + std::to_string(v.code) + " " + v.text : ""));
        if (v.code != 0)
          s.set_reply(v.code, v.enhanced, v.text);
        else
          s.set_reply(451, "4.7.1", "Service unavailable - try again later");
        return Action::kTempFail;
      case Verdict::Kind::kDiscard:
        s.log(LogLevel::kInfo, "milter \"" + c.name + "\" discards the message");
        return Action::kDiscard;
      case Verdict::Kind::kFailed:
        log_failure(s, m, i, v.error);
        switch (c.fail_mode) {
          case FailMode::kContinue:
            return std::nullopt;
          case FailMode::kTempFail:
            if (before_mail) return std::nullopt;  // answered at MAIL
            s.set_reply(451, "4.7.1", "Service unavailable - try again later");
            return Action::kTempFail;
          case FailMode::kReject:
            if (before_mail) return std::nullopt;
            s.set_reply(550, "5.7.1", "Command rejected");
            return Action::kReject;
        }
        return Action::kFailed;
    }
    return Action::kFailed;
  }

  // Moves one milter's REPLBODY chunks, joined, into *body (replacing what an earlier milter
  // gave); true when it had any.
  static bool take_body(std::vector<Response>& mods, std::optional<std::string>* body) {
    bool found = false;
    for (const Response& r : mods) {
      if (r.kind != ResponseKind::kReplaceBody) continue;
      if (!found) body->emplace();
      found = true;
      (*body)->append(r.value);
    }
    std::erase_if(mods, [](const Response& r) { return r.kind == ResponseKind::kReplaceBody; });
    return found;
  }

  // Applies one milter's end-of-message modifications; "" or what the host refused.
  static std::string apply(Session& s, const MilterClient& c, const std::vector<Response>& mods) {
    // The gateway writes an edited field as "Name: value": a milter with HDR_LEADSPC gives the
    // value with its own leading space, which that space replaces.
    const auto field_value = [&](const std::string& value) {
      std::string_view v = value;
      if (c.leading_space() && !v.empty() && v.front() == ' ') v.remove_prefix(1);
      return crlf_value(v);
    };
    for (const Response& r : mods) {
      bool ok = true;
      std::string what = response_name(r.kind);
      switch (r.kind) {
        case ResponseKind::kAddHeader:
          ok = s.header_add(r.name, field_value(r.value));
          what += " " + r.name;
          break;
        case ResponseKind::kInsertHeader:
          ok = s.header_insert(r.index, r.name, field_value(r.value));
          what += " " + r.name;
          break;
        case ResponseKind::kChangeHeader:
          if (r.value.empty()) {
            ok = s.header_remove(r.name, r.index);
          } else {
            ok = s.header_change(r.name, r.index, field_value(r.value));
            // sendmail and Postfix add the field when there is no such occurrence.
            if (!ok) ok = s.header_add(r.name, field_value(r.value));
          }
          what += " " + r.name;
          break;
        case ResponseKind::kAddRcpt:
        case ResponseKind::kAddRcptPar:
          ok = s.rcpt_add(strip_brackets(r.address));
          what += " " + r.address;
          if (ok && !r.args.empty())
            s.log(LogLevel::kWarning,
                  "milter \"" + c.config().name +
                      "\": ESMTP parameters of an added recipient ignored: " + r.args);
          break;
        case ResponseKind::kDeleteRcpt:
          ok = s.rcpt_remove(strip_brackets(r.address));
          what += " " + r.address;
          break;
        case ResponseKind::kChangeFrom:
          ok = s.set_sender(strip_brackets(r.address));
          what += " " + r.address;
          if (ok && !r.args.empty())
            s.log(LogLevel::kWarning,
                  "milter \"" + c.config().name +
                      "\": ESMTP parameters of the new sender ignored: " + r.args);
          break;
        case ResponseKind::kQuarantine:
          // The reason is required by the gateway; sendmail's milters always give one.
          ok = s.quarantine(r.value.empty() ? "milter " + c.config().name : r.value);
          what += " " + r.value;
          break;
        default:
          ok = false;
          break;
      }
      if (!ok) return "the gateway refused the modification " + what;
      s.log(LogLevel::kDebug, "milter \"" + c.config().name + "\": " + what);
    }
    return "";
  }

  std::vector<MilterConfig> milters_;
};

}  // namespace

MAILGATE_PLUGIN(MilterPlugin, "milter", "1.0", 0);
