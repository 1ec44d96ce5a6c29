// plugins/milter/client.cc — see client.h.
#include "client.h"

namespace mailgate::milter_client {
namespace {

// The macros sent when a milter gives no list for a stage (Postfix's milter_*_macros).
const std::vector<std::string>& default_macros(MacroStage stage) {
  static const std::vector<std::string> kConnect = {
      "j", "{daemon_name}", "{daemon_addr}", "v",
      "_", "{client_addr}", "{client_port}", "{client_name}"};
  static const std::vector<std::string> kHelo = {"{tls_version}", "{cipher}"};
  static const std::vector<std::string> kMail = {"i", "{auth_type}", "{auth_authen}",
                                                 "{mail_addr}"};
  static const std::vector<std::string> kRcpt = {"{rcpt_addr}"};
  static const std::vector<std::string> kQueueId = {"i"};
  switch (stage) {
    case MacroStage::kConnect:
      return kConnect;
    case MacroStage::kHelo:
      return kHelo;
    case MacroStage::kMail:
      return kMail;
    case MacroStage::kRcpt:
      return kRcpt;
    case MacroStage::kData:
    case MacroStage::kEndOfMessage:
    case MacroStage::kEndOfHeader:
    case MacroStage::kCount:
      return kQueueId;
  }
  return kQueueId;
}

// The action flag a modification needs, or 0 for one this client never accepts.
std::uint32_t action_needed(ResponseKind kind) {
  switch (kind) {
    case ResponseKind::kAddHeader:
      return act::kAddHeaders;
    case ResponseKind::kInsertHeader:
    case ResponseKind::kChangeHeader:
      return act::kChangeHeaders;
    case ResponseKind::kAddRcpt:
      return act::kAddRcpt;
    case ResponseKind::kDeleteRcpt:
      return act::kDeleteRcpt;
    case ResponseKind::kAddRcptPar:
      return act::kAddRcptPar;
    case ResponseKind::kChangeFrom:
      return act::kChangeFrom;
    case ResponseKind::kReplaceBody:
      return act::kChangeBody;
    case ResponseKind::kQuarantine:
      return act::kQuarantine;
    default:
      return 0;
  }
}

bool is_modification(ResponseKind kind) {
  switch (kind) {
    case ResponseKind::kAddHeader:
    case ResponseKind::kInsertHeader:
    case ResponseKind::kChangeHeader:
    case ResponseKind::kAddRcpt:
    case ResponseKind::kDeleteRcpt:
    case ResponseKind::kAddRcptPar:
    case ResponseKind::kChangeFrom:
    case ResponseKind::kReplaceBody:
    case ResponseKind::kQuarantine:
      return true;
    default:
      return false;
  }
}

Verdict with_reply(Verdict::Kind kind, const Response& r) {
  Verdict v;
  v.kind = kind;
  v.code = r.code;
  v.enhanced = r.enhanced;
  v.text = r.text;
  return v;
}

}  // namespace

const char* state_name(MilterClient::State state) {
  switch (state) {
    case MilterClient::State::kIdle:
      return "idle";
    case MilterClient::State::kSession:
      return "session";
    case MilterClient::State::kTransaction:
      return "transaction";
    case MilterClient::State::kSkipBody:
      return "skip-body";
    case MilterClient::State::kTxDone:
      return "transaction-done";
    case MilterClient::State::kSessionDone:
      return "session-done";
    case MilterClient::State::kFailed:
      return "failed";
  }
  return "?";
}

Verdict MilterClient::fail(std::string reason) {
  conn_.close();
  state_ = State::kFailed;
  failure_ = std::move(reason);
  Verdict v;
  v.kind = Verdict::Kind::kFailed;
  v.error = failure_;
  return v;
}

bool MilterClient::active_in_transaction() const {
  switch (state_) {
    case State::kTransaction:
    case State::kSkipBody:
      return true;
    case State::kIdle:
    case State::kSession:
    case State::kTxDone:
    case State::kSessionDone:
    case State::kFailed:
      return false;
  }
  return false;
}

std::string MilterClient::macro_packet(MacroStage stage, char for_command,
                                       const MacroSource& macros) const {
  const int i = static_cast<int>(stage);
  const std::vector<std::string>& names =
      negotiated_.has_macros[i] ? negotiated_.macros[i] : default_macros(stage);
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const std::string& name : names) {
    std::optional<std::string> value = macros(name);
    if (value) pairs.emplace_back(name, std::move(*value));
  }
  if (pairs.empty()) return "";
  return encode_macros(for_command, pairs);
}

Verdict MilterClient::read_reply(bool session_stage, bool body_stage) {
  for (;;) {
    Packet packet;
    if (std::string e = conn_.read(&packet, config_.timeout); !e.empty()) return fail(e);
    Response r;
    if (std::string e = decode_response(packet, &r); !e.empty()) return fail(e);
    switch (r.kind) {
      case ResponseKind::kProgress:
        continue;  // still working: wait again, with a fresh timeout
      case ResponseKind::kContinue:
        return Verdict{};
      case ResponseKind::kAccept:
        state_ = session_stage ? State::kSessionDone : State::kTxDone;
        return with_reply(Verdict::Kind::kAccept, r);
      case ResponseKind::kReject:
      case ResponseKind::kTempFail:
      case ResponseKind::kReplyCode:
      case ResponseKind::kConnFail:
      case ResponseKind::kShutdown: {
        Verdict v = with_reply(Verdict::Kind::kReject, r);
        if (r.kind == ResponseKind::kTempFail || r.kind == ResponseKind::kConnFail)
          v.kind = Verdict::Kind::kTempFail;
        if (r.kind == ResponseKind::kReplyCode && r.code < 500) v.kind = Verdict::Kind::kTempFail;
        if (r.kind == ResponseKind::kShutdown) {
          v = Verdict{Verdict::Kind::kTempFail, 421, "4.7.0", "Service shutting down", ""};
          conn_.close();
          state_ = State::kSessionDone;
          return v;
        }
        // A refusal ends the transaction for this milter (rcpt() reopens it: a refused
        // recipient is only that one); a refused connection ends the session's conversation
        // (helo() reopens it: a refused HELO is only that command).
        state_ = session_stage ? State::kSessionDone : State::kTxDone;
        return v;
      }
      case ResponseKind::kDiscard:
        if (session_stage) return fail("DISCARD before MAIL FROM");
        state_ = State::kTxDone;
        return Verdict{Verdict::Kind::kDiscard, 0, "", "", ""};
      case ResponseKind::kSkip:
        if (!body_stage) return fail("SKIP outside the body");
        if ((negotiated_.protocol & proto::kSkip) == 0) return fail("SKIP without negotiating it");
        state_ = State::kSkipBody;
        return Verdict{};
      case ResponseKind::kNegotiate:
        return fail("option negotiation answer outside the negotiation");
      case ResponseKind::kAddHeader:
      case ResponseKind::kInsertHeader:
      case ResponseKind::kChangeHeader:
      case ResponseKind::kAddRcpt:
      case ResponseKind::kDeleteRcpt:
      case ResponseKind::kAddRcptPar:
      case ResponseKind::kChangeFrom:
      case ResponseKind::kReplaceBody:
      case ResponseKind::kQuarantine:
        return fail(std::string("modification ") + response_name(r.kind) +
                    " before the end of the message");
    }
    return fail("unhandled response");
  }
}

Verdict MilterClient::command(std::string_view packet, MacroStage stage, char for_command,
                              const MacroSource* macros, std::uint32_t no_flag,
                              std::uint32_t nr_flag, bool session_stage, bool body_stage) {
  if ((negotiated_.protocol & no_flag) != 0) return Verdict{};
  // The macros and their command in one write: two small writes and a wait for the answer
  // would meet Nagle's algorithm and the peer's delayed ACK (40 ms a command).
  std::string out = macros != nullptr ? macro_packet(stage, for_command, *macros) : "";
  out.append(packet);
  if (std::string e = conn_.write(out, config_.timeout); !e.empty()) return fail(e);
  if ((negotiated_.protocol & nr_flag) != 0) return Verdict{};
  return read_reply(session_stage, body_stage);
}

Verdict MilterClient::connect(const MacroSource& macros, std::string_view hostname, char family,
                              std::uint16_t port, std::string_view address) {
  switch (state_) {
    case State::kIdle:
      break;
    case State::kFailed:
      return fail(failure_);
    case State::kSession:
    case State::kTransaction:
    case State::kSkipBody:
    case State::kTxDone:
    case State::kSessionDone:
      return fail(std::string("connect in state ") + state_name(state_));
  }
  if (std::string e = conn_.open(config_.endpoint, config_.connect_timeout); !e.empty())
    return fail(e);
  if (std::string e = conn_.write(encode_optneg(kProtocolVersion, offered_actions_, proto::kOffered),
                                  config_.timeout);
      !e.empty())
    return fail(e);
  Packet packet;
  if (std::string e = conn_.read(&packet, config_.timeout); !e.empty()) {
    if (e == "the milter closed the connection")
      e += " during option negotiation (a milter needing an action this client does not offer, "
           "such as replacing the body or quarantine, does that)";
    return fail(e);
  }
  Response r;
  if (std::string e = decode_response(packet, &r); !e.empty()) return fail(e);
  if (r.kind != ResponseKind::kNegotiate)
    return fail(std::string("answered option negotiation with ") + response_name(r.kind));
  negotiated_ = r.negotiation;
  if (negotiated_.version < 2 || negotiated_.version > kProtocolVersion)
    return fail("milter protocol version " + std::to_string(negotiated_.version) +
                " (this client speaks 2 to 6)");
  if ((negotiated_.actions & ~offered_actions_) != 0)
    return fail("milter asks for actions " + std::to_string(negotiated_.actions) +
                " beyond those offered (" + std::to_string(offered_actions_) +
                (offered_actions_ & act::kChangeBody
                     ? ")"
                     : "; body replacement and quarantine need a gateway of SDK ABI 1.3)"));
  negotiated_.protocol &= ~proto::kInternal;
  if ((negotiated_.protocol & ~proto::kOffered) != 0)
    return fail("milter asks for protocol flags not offered (" +
                std::to_string(negotiated_.protocol & ~proto::kOffered) + ")");
  state_ = State::kSession;
  return command(encode_connect(hostname, family, port, address), MacroStage::kConnect,
                 cmd::kConnect, &macros, proto::kNoConnect, proto::kNrConnect, true, false);
}

Verdict MilterClient::helo(const MacroSource& macros, std::string_view name) {
  switch (state_) {
    case State::kSession: {
      Verdict v = command(encode_helo(name), MacroStage::kHelo, cmd::kHelo, &macros, proto::kNoHelo,
                          proto::kNrHelo, true, false);
      // A refused HELO refuses that command only: the client may send another.
      if ((v.kind == Verdict::Kind::kReject || v.kind == Verdict::Kind::kTempFail) &&
          state_ == State::kSessionDone && conn_.is_open())
        state_ = State::kSession;
      return v;
    }
    case State::kFailed:
      return fail(failure_);
    case State::kSessionDone:
      return Verdict{};
    case State::kIdle:
    case State::kTransaction:
    case State::kSkipBody:
    case State::kTxDone:
      return fail(std::string("HELO in state ") + state_name(state_));
  }
  return fail("HELO in an unknown state");
}

Verdict MilterClient::mail(const MacroSource& macros, const std::vector<std::string>& args) {
  switch (state_) {
    case State::kSession:
      state_ = State::kTransaction;
      return command(encode_args(cmd::kMail, args), MacroStage::kMail, cmd::kMail, &macros,
                     proto::kNoMail, proto::kNrMail, false, false);
    case State::kFailed:
      return fail(failure_);
    case State::kSessionDone:
      return Verdict{};
    case State::kTransaction:
    case State::kSkipBody:
    case State::kTxDone:
      // A new MAIL while the milter still has a transaction (a stage was refused by another
      // plugin and no RESET reached us): abort the old one first, as after RSET.
      end_transaction();
      if (state_ != State::kSession) return fail(failure_);
      return mail(macros, args);
    case State::kIdle:
      return fail(std::string("MAIL in state ") + state_name(state_));
  }
  return fail("MAIL in an unknown state");
}

Verdict MilterClient::rcpt(const MacroSource& macros, const std::vector<std::string>& args) {
  if (state_ == State::kFailed) return fail(failure_);
  if (!active_in_transaction()) return Verdict{};
  Verdict v = command(encode_args(cmd::kRcpt, args), MacroStage::kRcpt, cmd::kRcpt, &macros,
                      proto::kNoRcpt, proto::kNrRcpt, false, false);
  // A refused recipient is only that recipient: the milter keeps the transaction.
  if ((v.kind == Verdict::Kind::kReject || v.kind == Verdict::Kind::kTempFail) &&
      state_ == State::kTxDone)
    state_ = State::kTransaction;
  return v;
}

Verdict MilterClient::data(const MacroSource& macros) {
  if (state_ == State::kFailed) return fail(failure_);
  if (!active_in_transaction()) return Verdict{};
  return command(encode_simple(cmd::kData), MacroStage::kData, cmd::kData, &macros, proto::kNoData,
                 proto::kNrData, false, false);
}

Verdict MilterClient::header(std::string_view name, std::string_view value) {
  if (state_ == State::kFailed) return fail(failure_);
  if (!active_in_transaction()) return Verdict{};
  if (!leading_space() && !value.empty() && value.front() == ' ') value.remove_prefix(1);
  return command(encode_header(name, value), MacroStage::kCount, cmd::kHeader, nullptr,
                 proto::kNoHeaders, proto::kNrHeader, false, false);
}

Verdict MilterClient::end_of_header(const MacroSource& macros) {
  if (state_ == State::kFailed) return fail(failure_);
  if (!active_in_transaction()) return Verdict{};
  return command(encode_simple(cmd::kEndOfHeader), MacroStage::kEndOfHeader, cmd::kEndOfHeader,
                 &macros, proto::kNoEoh, proto::kNrEoh, false, false);
}

Verdict MilterClient::body(std::string_view chunk) {
  if (state_ == State::kFailed) return fail(failure_);
  if (state_ != State::kTransaction) return Verdict{};  // also kSkipBody
  while (!chunk.empty()) {
    const std::string_view part = chunk.substr(0, kMaxBodyChunk);
    chunk.remove_prefix(part.size());
    Verdict v = command(encode_body(part), MacroStage::kCount, cmd::kBody, nullptr, proto::kNoBody,
                        proto::kNrBody, false, true);
    if (v.kind != Verdict::Kind::kContinue || state_ != State::kTransaction) return v;
  }
  return Verdict{};
}

Verdict MilterClient::end_of_message(const MacroSource& macros, std::vector<Response>* mods) {
  mods->clear();
  if (state_ == State::kFailed) return fail(failure_);
  if (!active_in_transaction()) return Verdict{};
  std::string out = macro_packet(MacroStage::kEndOfMessage, cmd::kEndOfBody, macros);
  out.append(encode_simple(cmd::kEndOfBody));
  if (std::string e = conn_.write(out, config_.timeout); !e.empty()) return fail(e);
  for (;;) {
    Packet packet;
    if (std::string e = conn_.read(&packet, config_.timeout); !e.empty()) return fail(e);
    Response r;
    if (std::string e = decode_response(packet, &r); !e.empty()) return fail(e);
    if (is_modification(r.kind)) {
      const std::uint32_t needed = action_needed(r.kind);
      if (needed == 0)
        return fail(std::string("modification ") + response_name(r.kind) +
                    " is not supported (not offered in the negotiation)");
      if ((negotiated_.actions & needed) == 0)
        return fail(std::string("modification ") + response_name(r.kind) +
                    " without negotiating it");
      mods->push_back(std::move(r));
      continue;
    }
    state_ = State::kSession;  // the transaction is over for the milter either way
    Verdict v;
    switch (r.kind) {
      case ResponseKind::kProgress:
        state_ = State::kTransaction;
        continue;
      case ResponseKind::kContinue:
        return v;
      case ResponseKind::kAccept:
        return with_reply(Verdict::Kind::kAccept, r);
      case ResponseKind::kDiscard:
        v.kind = Verdict::Kind::kDiscard;
        break;
      case ResponseKind::kReject:
      case ResponseKind::kReplyCode:
        v = with_reply(r.kind == ResponseKind::kReplyCode && r.code < 500 ? Verdict::Kind::kTempFail
                                                                          : Verdict::Kind::kReject,
                       r);
        break;
      case ResponseKind::kTempFail:
      case ResponseKind::kConnFail:
        v.kind = Verdict::Kind::kTempFail;
        break;
      case ResponseKind::kShutdown:
        conn_.close();
        state_ = State::kSessionDone;
        v = Verdict{Verdict::Kind::kTempFail, 421, "4.7.0", "Service shutting down", ""};
        break;
      case ResponseKind::kSkip:
        return fail("SKIP at the end of the message");
      case ResponseKind::kNegotiate:
        return fail("option negotiation answer outside the negotiation");
      default:
        return fail(std::string("unexpected ") + response_name(r.kind) +
                    " at the end of the message");
    }
    mods->clear();  // a refused or dropped message is not edited
    return v;
  }
}

void MilterClient::end_transaction() {
  switch (state_) {
    case State::kTransaction:
    case State::kSkipBody:
    case State::kTxDone:
      // No reply to ABORT. A write error surfaces at the next command.
      if (!conn_.write(encode_simple(cmd::kAbort), config_.timeout).empty()) {
        fail("write of ABORT failed");
        return;
      }
      state_ = State::kSession;
      return;
    case State::kIdle:
    case State::kSession:
    case State::kSessionDone:
    case State::kFailed:
      return;
  }
}

void MilterClient::quit() {
  if (conn_.is_open()) (void)conn_.write(encode_simple(cmd::kQuit), config_.timeout);
  conn_.close();
  if (state_ != State::kFailed) state_ = State::kIdle;
}

}  // namespace mailgate::milter_client
