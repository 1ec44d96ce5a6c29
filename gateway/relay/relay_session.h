// relay/relay_session.h — RelaySession, the real BackendSession, and the pool internals it uses
// (UpstreamPool::Impl). Private to relay/: the rest of the gateway sees only backend.h/pool.h.
// Owns: the upstream connection of one client session between mail() and release(); the
// choice of XCLIENT or XFORWARD; the transparent retry of a stale pooled connection; turning
// failures into the gateway's 4xx replies; MAIL deferred to the first RCPT.
// A backend that offers PIPELINING gets MAIL (with XFORWARD) in one group with the first
// RCPT: mail() answers 250 itself once a connection is in hand (and XCLIENT, a round trip of
// its own, has introduced the client where it is used), and a refusal of MAIL by the
// backend becomes the answer to every RCPT of the transaction, as Postfix's own
// smtpd_delay_reject reports sender refusals. One round trip to the backend fewer per
// message; nothing is accepted that the backend did not accept.
// Must not touch: the client side (replies are returned, never written), the spool's storage.
// Thread-safety: a pool and all its sessions run on one io_context thread; no locks.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string_view>

#include "relay/backend.h"
#include "relay/pool.h"
#include "relay/relay_config.h"
#include "relay/upstream.h"

namespace mailgate::relay {

struct UpstreamPool::Impl {
  Impl(asio::any_io_executor executor, RelayConfig config);
  ~Impl();

  // An idle connection that is young enough, still alive and can carry a transaction for
  // `client`, most recently used first; null when there is none. Unusable ones are closed.
  std::unique_ptr<Upstream> acquire(const ClientInfo& client);
  // Takes back a connection after a session: kept when healthy, outside a transaction and
  // re-usable for another client (evicting the oldest beyond pool_max_idle); otherwise closed.
  void give_back(std::unique_ptr<Upstream> upstream);
  // Closes a connection politely: QUIT in a detached coroutine.
  void retire(std::unique_ptr<Upstream> upstream);
  void close_idle();
  size_t idle_count() const;

  asio::any_io_executor executor;
  std::shared_ptr<const RelayConfig> config;

  // The idle list lives in a shared block so the expiry timer's handler can outlive the pool.
  struct Idle;

 private:
  std::shared_ptr<Idle> idle_;
};

class RelaySession final : public BackendSession {
 public:
  explicit RelaySession(UpstreamPool::Impl& pool) : pool_(pool) {}
  ~RelaySession() override;
  RelaySession(const RelaySession&) = delete;
  RelaySession& operator=(const RelaySession&) = delete;

  asio::awaitable<smtp::Reply> mail(const ClientInfo& client, const smtp::MailArgs& mail) override;
  asio::awaitable<smtp::Reply> rcpt(const std::string& address) override;
  asio::awaitable<smtp::Reply> data(const std::string& prepend, const spool::Spool& message,
                                    uint64_t skip) override;
  asio::awaitable<void> reset() override;
  void release() override;
  asio::awaitable<smtp::Reply> authenticate(const ClientInfo& client,
                                            const Credentials& credentials) override;

 private:
  asio::awaitable<smtp::Reply> start_transaction(const ClientInfo& client,
                                                 const smtp::MailArgs& mail);
  // A new connection in upstream_, opened (greeting, EHLO); counted in the metrics.
  asio::awaitable<Step> open_new();
  // Opens the transaction on upstream_ (held or, when null, a fresh connection): the client's
  // introduction, MAIL and, when given, the first RCPT — or, with `introduce_only`, only the
  // introduction (its reply is `mail`). A stale pooled connection (`reused`) is replaced once,
  // transparently.
  asio::awaitable<Upstream::Opening> begin(const ClientInfo& client, const smtp::MailArgs& mail,
                                           bool reused, std::optional<std::string_view> rcpt,
                                           bool introduce_only = false);
  // The first RCPT of a transaction whose MAIL was deferred: both go now.
  asio::awaitable<smtp::Reply> rcpt_with_deferred_mail(const std::string& address);
  // The RCPT reply as the client gets it: a lost connection becomes the transaction's 4xx.
  smtp::Reply rcpt_outcome(Step step);
  // XCLIENT (unless the same client is still in effect) or XFORWARD, as configured and
  // offered. A non-positive reply is what the client should get for its MAIL.
  asio::awaitable<Step> introduce(const ClientInfo& client);
  // What introduce() does for `client` on upstream_.
  enum class Introduction { kPinned, kSameClient, kXclient, kXforward, kNotOffered };
  Introduction introduction_for(const ClientInfo& client) const;
  // Once per process: the backend will see the gateway as the client (kNotOffered).
  void warn_not_introduced() const;
  asio::awaitable<void> reset_upstream();
  // The reply for rcpt()/data() when no transaction is open on a live connection.
  smtp::Reply no_transaction_reply() const;
  void drop();  // closes the connection now (not pooled)

  // MAIL answered by mail(), to go with the first RCPT.
  struct DeferredMail {
    ClientInfo client;
    smtp::MailArgs mail;
    bool reused = false;  // upstream_ was not opened for this transaction
  };

  UpstreamPool::Impl& pool_;
  std::unique_ptr<Upstream> upstream_;
  std::optional<DeferredMail> deferred_;
  // Set when the connection broke inside a transaction, or the backend refused a deferred
  // MAIL: later steps of that transaction get the same reply instead of a sequence error.
  smtp::Reply lost_reply_;
  // The session authenticated on upstream_ itself (the backend has no XCLIENT LOGIN): its
  // transactions must use that connection; when it is gone they fail (421, the client
  // reconnects and authenticates again).
  bool pinned_auth_ = false;
};

}  // namespace mailgate::relay
