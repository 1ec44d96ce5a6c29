// relay/relay_session.cc — see relay_session.h. Every public method catches what it must not
// let escape (allocation failures and the like) and answers 451 4.3.0 instead.
#include "relay/relay_session.h"

#include <atomic>
#include <exception>
#include <utility>

#include "log/log.h"
#include "obs/metrics.h"
#include "relay/smtp_client_codec.h"

namespace mailgate::relay {
namespace {

std::atomic<bool> g_warned_no_introduction{false};  // said once per process, not per mail

smtp::Reply internal_error(const char* where, const std::exception& e) {
  MG_LOG_ERROR("relay: unexpected error in {}: {}", where, e.what());
  return gateway_reply(Failure{Failure::Kind::kLocal, e.what()});
}

// The outcome of a step on a pooled connection that deserves one more try on a fresh one:
// the connection broke, or the backend said 421 (it had timed the idle connection out),
// before anything else succeeded on it.
bool stale_connection(const Step& step) {
  return step ? step->closes() : step.error().kind == Failure::Kind::kLost;
}

}  // namespace

RelaySession::~RelaySession() { release(); }

void RelaySession::drop() {
  if (upstream_) {
    upstream_->close();
    upstream_.reset();
  }
}

smtp::Reply RelaySession::no_transaction_reply() const {
  if (!lost_reply_.empty()) return lost_reply_;
  return smtp::Reply::make(503, "5.5.1", "Error: need MAIL command");
}

asio::awaitable<smtp::Reply> RelaySession::mail(const ClientInfo& client,
                                                const smtp::MailArgs& mail) {
  try {
    co_return co_await start_transaction(client, mail);
  } catch (const std::exception& e) {
    drop();
    co_return internal_error("MAIL", e);
  }
}

asio::awaitable<smtp::Reply> RelaySession::start_transaction(const ClientInfo& client,
                                                             const smtp::MailArgs& mail) {
  const RelayConfig& config = *pool_.config;
  lost_reply_ = {};
  deferred_.reset();
  if (upstream_ && upstream_->in_transaction()) co_await reset_upstream();
  if (upstream_ && !upstream_->probably_alive()) {
    MG_LOG_DEBUG("relay#{}: held connection no longer usable", upstream_->id());
    drop();
  }
  if (pinned_auth_ && !upstream_) {
    MG_LOG_WARNING("relay: the authenticated backend connection of {}[{}] is gone", client.name,
                   client.addr);
    co_return smtp::Reply::make(421, "4.4.2",
                                "Backend connection lost after authentication, try again");
  }
  if (upstream_ && !pinned_auth_ && !upstream_->can_serve(client, config.use_xclient)) {
    pool_.retire(std::move(upstream_));
  }
  bool reused = true;
  if (!upstream_) upstream_ = pool_.acquire(client);
  if (!upstream_) {
    reused = false;
    Step opened = co_await open_new();
    if (!opened) {
      drop();
      co_return gateway_reply(opened.error());
    }
  }
  if (upstream_->caps().pipelining) {
    // XCLIENT changes the backend's view of the session (and is followed by EHLO): a round
    // trip of its own, now; MAIL still waits for the first RCPT.
    if (introduction_for(client) == Introduction::kXclient) {
      Upstream::Opening introduced = co_await begin(client, mail, reused, std::nullopt, true);
      if (!introduced.mail) {
        drop();
        co_return gateway_reply(introduced.mail.error());
      }
      if (upstream_->broken()) drop();  // a 421, or a refused introduction
      if (!upstream_ || !introduced.mail->positive()) co_return std::move(*introduced.mail);
      reused = false;  // it has answered for this transaction: no transparent retry now
    }
    Expected<std::string, smtp::Reply> line = upstream_->mail_command(mail);
    if (!line) co_return line.error();
    deferred_ = DeferredMail{client, mail, reused};
    co_return smtp::Reply::make(250, "2.1.0", "Ok");
  }
  Upstream::Opening opening = co_await begin(client, mail, reused, std::nullopt);
  Step& step = opening.mail;
  if (!step) {
    drop();
    co_return gateway_reply(step.error());
  }
  if (upstream_->broken()) drop();  // a 421, or a refused introduction
  co_return std::move(*step);
}

asio::awaitable<Step> RelaySession::open_new() {
  upstream_ = std::make_unique<Upstream>(pool_.executor, pool_.config);
  const auto open_started = std::chrono::steady_clock::now();
  Step opened = co_await upstream_->open();
  obs::count_backend_open(opened.has_value(), std::chrono::steady_clock::now() - open_started);
  co_return opened;
}

asio::awaitable<Upstream::Opening> RelaySession::begin(const ClientInfo& client,
                                                       const smtp::MailArgs& mail, bool reused,
                                                       std::optional<std::string_view> rcpt,
                                                       bool introduce_only) {
  for (int attempt = 0;; ++attempt) {
    if (!upstream_) {
      reused = false;
      Step opened = co_await open_new();
      if (!opened) {
        Upstream::Opening failed;
        failed.mail = unexpected(opened.error());
        co_return failed;
      }
    }
    const uint64_t replies_before = upstream_->replies();
    const Introduction introduction = introduction_for(client);
    const bool pipelining = upstream_->caps().pipelining;
    Upstream::Opening opening;
    // XCLIENT, and any introduction without PIPELINING, is a round trip of its own.
    const bool separate = introduction == Introduction::kXclient || !pipelining;
    if (separate || introduce_only) opening.mail = co_await introduce(client);
    // Unless the introduction's reply (or failure) is the answer already: MAIL, and the RCPT.
    const bool go_on =
        !introduce_only && (!separate || (opening.mail && opening.mail->positive()));
    if (go_on && pipelining) {
      if (introduction == Introduction::kNotOffered) warn_not_introduced();
      const ClientInfo* xforward_for = introduction == Introduction::kXforward ? &client : nullptr;
      opening = co_await upstream_->open_transaction(xforward_for, mail, rcpt);
    } else if (go_on) {
      opening.mail = co_await upstream_->mail(mail);
      if (rcpt && opening.mail && opening.mail->positive() && !upstream_->broken()) {
        opening.rcpt = co_await upstream_->rcpt(*rcpt);
      }
    }
    // Retry only when the very first command on a reused connection hit a stale connection:
    // nothing has been accepted on it, so a fresh connection changes nothing for the backend.
    const Step& step = opening.mail;
    const uint64_t answered = upstream_->replies() - replies_before;
    const bool first_command = step ? answered == 1 : answered == 0;
    if (reused && attempt == 0 && first_command && stale_connection(step) && !pinned_auth_) {
      MG_LOG_INFO("relay#{}: pooled connection went stale, retrying with a new one",
                  upstream_->id());
      drop();
      continue;
    }
    co_return opening;
  }
}

RelaySession::Introduction RelaySession::introduction_for(const ClientInfo& client) const {
  const RelayConfig& config = *pool_.config;
  const Upstream& up = *upstream_;
  // Authenticated on this very connection (and introduced before AUTH where XCLIENT was
  // offered): another XCLIENT could reset the backend's authentication state.
  if (pinned_auth_) return Introduction::kPinned;
  if (up.identity() && same_client(*up.identity(), client)) return Introduction::kSameClient;
  if (config.use_xclient && up.caps().xclient) return Introduction::kXclient;
  if (config.use_xforward && up.caps().xforward) return Introduction::kXforward;
  return Introduction::kNotOffered;
}

asio::awaitable<Step> RelaySession::introduce(const ClientInfo& client) {
  Upstream& up = *upstream_;
  switch (introduction_for(client)) {
    case Introduction::kPinned:
      co_return smtp::Reply::make(250, "", "authenticated connection");
    case Introduction::kSameClient:
      co_return smtp::Reply::make(250, "", "client already introduced");  // XCLIENT in effect
    case Introduction::kXclient:
      co_return co_await up.xclient(client);
    case Introduction::kXforward:
      co_return co_await up.xforward(client);
    case Introduction::kNotOffered:
      break;
  }
  warn_not_introduced();
  co_return smtp::Reply::make(250, "", "no client introduction offered");
}

void RelaySession::warn_not_introduced() const {
  const RelayConfig& config = *pool_.config;
  if ((config.use_xclient || config.use_xforward) && !g_warned_no_introduction.exchange(true)) {
    MG_LOG_WARNING(
        "relay {}: backend offers neither XCLIENT nor XFORWARD to us; it will see mail as "
        "coming from the gateway (check smtpd_authorized_xclient_hosts)",
        upstream_->peer());
  }
}

asio::awaitable<smtp::Reply> RelaySession::rcpt(const std::string& address) {
  try {
    if (deferred_) co_return co_await rcpt_with_deferred_mail(address);
    if (!upstream_ || !upstream_->in_transaction()) co_return no_transaction_reply();
    Step step = co_await upstream_->rcpt(address);
    co_return rcpt_outcome(std::move(step));
  } catch (const std::exception& e) {
    drop();
    lost_reply_ = internal_error("RCPT", e);
    co_return lost_reply_;
  }
}

asio::awaitable<smtp::Reply> RelaySession::rcpt_with_deferred_mail(const std::string& address) {
  DeferredMail deferred = std::move(*deferred_);
  deferred_.reset();
  Upstream::Opening opening =
      co_await begin(deferred.client, deferred.mail, deferred.reused, address);
  if (!opening.mail) {
    lost_reply_ = gateway_reply(opening.mail.error());
    drop();
    co_return lost_reply_;
  }
  if (!opening.mail->positive()) {
    // The backend refused the sender (or the introduction): the transaction's answer.
    lost_reply_ = std::move(*opening.mail);
    if (upstream_->broken()) drop();
    co_return lost_reply_;
  }
  if (!opening.rcpt) {  // cannot happen: the connection was open after MAIL was accepted
    lost_reply_ = gateway_reply(Failure{Failure::Kind::kLost, "no reply to RCPT"});
    drop();
    co_return lost_reply_;
  }
  co_return rcpt_outcome(std::move(*opening.rcpt));
}

smtp::Reply RelaySession::rcpt_outcome(Step step) {
  if (!step) {
    lost_reply_ = gateway_reply(step.error());
    drop();
    return lost_reply_;
  }
  if (step->closes()) {
    lost_reply_ = *step;
    drop();
  }
  return std::move(*step);
}

asio::awaitable<smtp::Reply> RelaySession::data(const std::string& prepend,
                                                const spool::Spool& message, uint64_t skip) {
  try {
    if (deferred_) {  // no recipient reached the backend
      deferred_.reset();
      co_return smtp::Reply::make(554, "5.5.1", "Error: no valid recipients");
    }
    if (!upstream_ || !upstream_->in_transaction()) {
      smtp::Reply reply = no_transaction_reply();
      lost_reply_ = {};  // the transaction is over whatever the reply
      co_return reply;
    }
    Step step = co_await upstream_->data(prepend, message, skip);
    if (!step) {
      drop();
      co_return gateway_reply(step.error());
    }
    if (upstream_->broken()) {
      drop();  // 421
    } else if (upstream_->in_transaction()) {
      co_await reset_upstream();  // DATA itself was refused; leave the connection clean
    }
    co_return std::move(*step);
  } catch (const std::exception& e) {
    drop();
    co_return internal_error("DATA", e);
  }
}

asio::awaitable<void> RelaySession::reset() {
  lost_reply_ = {};
  deferred_.reset();
  try {
    co_await reset_upstream();
  } catch (const std::exception& e) {
    drop();
    (void)internal_error("RSET", e);
  }
}

asio::awaitable<void> RelaySession::reset_upstream() {
  if (!upstream_) co_return;
  if (upstream_->broken()) {
    drop();
    co_return;
  }
  if (!upstream_->in_transaction()) co_return;
  Step step = co_await upstream_->rset();
  if (!step || step->code != 250) {
    if (step) {
      MG_LOG_WARNING("relay#{} {}: RSET refused: {}", upstream_->id(), upstream_->peer(),
                     step->summary());
    }
    drop();
  }
}

asio::awaitable<smtp::Reply> RelaySession::authenticate(const ClientInfo& client,
                                                        const Credentials& credentials) {
  const smtp::Reply unavailable =
      smtp::Reply::make(454, "4.7.0", "Temporary authentication failure");
  try {
    const RelayConfig& config = *pool_.config;
    // The caller forbids it inside a transaction.
    if (deferred_ || (upstream_ && upstream_->in_transaction())) co_return unavailable;
    // A connection of its own: the authentication must not leak to a pooled connection.
    if (upstream_) pool_.retire(std::move(upstream_));
    pinned_auth_ = false;
    auto up = std::make_unique<Upstream>(pool_.executor, pool_.config);
    Step opened = co_await up->open();
    if (!opened) co_return unavailable;
    // Decided on the backend's first EHLO: after XCLIENT it may no longer list XCLIENT to us.
    const bool xclient_login = config.use_xclient && up->caps().xclient_offers("LOGIN");
    if (config.use_xclient && up->caps().xclient) {
      ClientInfo anonymous = client;
      anonymous.login.clear();
      Step introduced = co_await up->xclient(anonymous);
      if (!introduced || !introduced->positive()) {
        if (!up->broken()) pool_.retire(std::move(up));
        co_return unavailable;
      }
    }
    if (!up->caps().auth) {
      MG_LOG_WARNING(
          "relay#{} {}: backend offers no AUTH to the gateway (Postfix: smtpd_sasl_auth_enable); "
          "AUTH from {}[{}] cannot be checked",
          up->id(), up->peer(), client.name, client.addr);
      pool_.retire(std::move(up));
      co_return unavailable;
    }
    Step step = co_await up->authenticate(credentials);
    if (!step) co_return unavailable;
    smtp::Reply reply = std::move(*step);
    if (reply.code != 235) {
      if (!up->broken()) pool_.retire(std::move(up));
      co_return reply;
    }
    if (xclient_login) {
      // Transactions go over pooled connections with XCLIENT LOGIN=; this one is done.
      pool_.retire(std::move(up));
    } else {
      upstream_ = std::move(up);
      pinned_auth_ = true;
    }
    co_return reply;
  } catch (const std::exception& e) {
    (void)internal_error("AUTH", e);
    co_return unavailable;
  }
}

void RelaySession::release() {
  lost_reply_ = {};
  deferred_.reset();
  if (!upstream_) return;
  if (upstream_->broken()) {
    upstream_.reset();
  } else if (upstream_->in_transaction() || upstream_->authenticated()) {
    pool_.retire(std::move(upstream_));  // QUIT aborts the backend's transaction
  } else {
    pool_.give_back(std::move(upstream_));
  }
}

}  // namespace mailgate::relay
