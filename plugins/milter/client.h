// plugins/milter/client.h — the conversation with one milter for one SMTP session, as an MTA
// holds it: option negotiation when the session starts, one command per stage (with the
// macros the milter asked for, skipping what its protocol flags ask us not to send, not
// waiting where it asked not to reply), an abort when a transaction ends early, and QUIT.
//
// Owns: the milter's per-session state machine (below), the negotiated flags, the decoding of
// each stage's replies into a Verdict, and the end-of-message modifications collected for the
// caller to apply. Every protocol breach (unknown or malformed response, a modification the
// milter did not negotiate or outside end of message, oversized packet, timeout, early close)
// ends the conversation: the state becomes kFailed and the verdict kFailed with the reason.
// Must not touch: the plugin SDK (milter.cc maps verdicts to actions, applies fail modes and
// the modifications), sockets directly (connection.h).
// Threads: one client per session and milter, used by one thread at a time.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connection.h"
#include "protocol.h"

namespace mailgate::milter_client {

// What to do when a milter cannot be used (unreachable, timed out, broke the protocol).
enum class FailMode {
  kTempFail,  // the transaction gets 451 4.7.1 (Postfix's milter_default_action=tempfail)
  kContinue,  // go on without this milter for the rest of the session
  kReject,    // the transaction gets 550 5.7.1
};

struct MilterConfig {
  std::string name;  // for logs
  Endpoint endpoint;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds timeout{3000};  // for each reply (a 'p' progress restarts it)
  FailMode fail_mode = FailMode::kTempFail;
};

// A milter's decision at one stage.
struct Verdict {
  enum class Kind {
    kContinue,  // no objection (also: not sent because the milter opted out, or it is done)
    kAccept,    // the milter accepts: no more commands for this transaction (or session)
    kReject,    // 5xx; code/enhanced/text set when the milter gave them ('y')
    kTempFail,  // 4xx; likewise
    kDiscard,   // accept and drop the message
    kFailed,    // the milter is unusable: `error` says why; apply the fail mode
  };
  Kind kind = Kind::kContinue;
  int code = 0;  // 0 = the milter gave no reply text
  std::string enhanced;
  std::string text;
  std::string error;
};

// Macro values by name ("j", "{client_addr}", "i"); nullopt when unknown (not sent).
using MacroSource = std::function<std::optional<std::string>(std::string_view name)>;

class MilterClient {
 public:
  // The conversation's states. Every handler switches on it; default is a bug.
  enum class State {
    kIdle,         // not connected yet
    kSession,      // negotiated, between transactions
    kTransaction,  // MAIL sent (or skipped by flags): a transaction is open
    kSkipBody,     // in a transaction, the milter answered 's': no more body chunks
    kTxDone,       // the milter decided for this transaction (accept, reject, ...): quiet
                   // until the transaction ends
    kSessionDone,  // the milter accepted or refused the connection: quiet until QUIT
    kFailed,       // unusable for the rest of the session (the socket is closed)
  };

  // offered_actions: the SMFIF_* actions offered at negotiation (act::kOffered, or
  // act::kOfferedWithBody when the host can replace the body and quarantine).
  explicit MilterClient(const MilterConfig& config,
                        std::uint32_t offered_actions = act::kOffered)
      : config_(config), offered_actions_(offered_actions) {}
  MilterClient(const MilterClient&) = delete;
  MilterClient& operator=(const MilterClient&) = delete;

  const MilterConfig& config() const noexcept { return config_; }
  State state() const noexcept { return state_; }
  // The reason the milter failed (kFailed), "" otherwise.
  const std::string& failure() const noexcept { return failure_; }
  const Negotiation& negotiated() const noexcept { return negotiated_; }

  // Connects, negotiates, and sends the connection's details. family: '4', '6', 'L', 'U'.
  Verdict connect(const MacroSource& macros, std::string_view hostname, char family,
                  std::uint16_t port, std::string_view address);
  Verdict helo(const MacroSource& macros, std::string_view name);
  // args: "<sender>" then ESMTP parameters.
  Verdict mail(const MacroSource& macros, const std::vector<std::string>& args);
  Verdict rcpt(const MacroSource& macros, const std::vector<std::string>& args);
  Verdict data(const MacroSource& macros);
  // `value`: everything after the colon, leading white space included, folding as "\n" + white
  // space. Without HDR_LEADSPC the milter gets it with one leading space removed (sendmail's
  // and Postfix's convention); with it, as is.
  Verdict header(std::string_view name, std::string_view value);
  // True when the milter negotiated HDR_LEADSPC: its header values carry their own leading
  // space, in what it is sent and in the modifications it asks for.
  bool leading_space() const noexcept {
    return (negotiated_.protocol & proto::kHeaderLeadingSpace) != 0;
  }
  Verdict end_of_header(const MacroSource& macros);
  Verdict body(std::string_view chunk);
  // End of message: the modifications the milter asked for, in order, go to *mods (only when
  // the verdict is kContinue or kAccept; an empty list otherwise).
  Verdict end_of_message(const MacroSource& macros, std::vector<Response>* mods);
  // The transaction ended (RSET, after a message, or dropped): ABORT when one is open.
  void end_transaction();
  // The session ends: QUIT and close.
  void quit();

 private:
  Verdict fail(std::string reason);
  bool active_in_transaction() const;
  // The 'D' packet for `for_command` with the macros the milter wants; "" when none has a value.
  std::string macro_packet(MacroStage stage, char for_command, const MacroSource& macros) const;
  // Sends `packet` (after its macros) unless `no_flag` was negotiated, then reads the reply
  // unless `nr_flag` was; `final_stage` true for connect/helo (accept ends the session).
  Verdict command(std::string_view packet, MacroStage stage, char for_command,
                  const MacroSource* macros, std::uint32_t no_flag, std::uint32_t nr_flag,
                  bool session_stage, bool body_stage);
  Verdict read_reply(bool session_stage, bool body_stage);

  MilterConfig config_;
  std::uint32_t offered_actions_;
  State state_ = State::kIdle;
  std::string failure_;
  Negotiation negotiated_;
  Connection conn_;
};

const char* state_name(MilterClient::State state);

}  // namespace mailgate::milter_client
