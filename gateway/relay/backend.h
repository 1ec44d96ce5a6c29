// relay/backend.h — what a session needs from the backend MTA, as one interface.
// Owns: the contract between the SMTP server side (smtp/session.cc) and the relay. The real
// implementation (relay/relay_session.h) talks SMTP to the backend over pooled connections;
// unit tests substitute an in-process backend to drive golden transcripts.
// Every method returns the reply the client should see for that step: the backend's own
// reply when it answered, or a gateway-made 4xx (421/451 with a 4.x.x code) when the backend
// could not be reached, timed out or broke the connection. No method throws.
// Thread-safety: one BackendSession per client session, used from its strand only.
#pragma once

#include <cstdint>
#include <string>

#include <asio/awaitable.hpp>

#include "smtp/command.h"
#include "smtp/reply.h"

namespace mailgate::spool {
class Spool;
}

namespace mailgate::relay {

// The real client, passed to the backend with XCLIENT or XFORWARD.
struct ClientInfo {
  std::string addr;         // "192.0.2.1" or "2001:db8::1" (no brackets)
  uint16_t port = 0;
  std::string name;         // verified reverse name, or "unknown"
  std::string helo;         // HELO/EHLO argument as given; empty before HELO
  bool esmtp = false;       // client used EHLO
  std::string login;        // authenticated user, empty when none
};

// What a client sent with AUTH, decoded; checked by the backend's SASL (the backend decides).
// The password is wiped when the value goes; it is never logged.
struct Credentials {
  std::string authzid;   // PLAIN's authorization identity; usually empty
  std::string user;      // authentication identity
  std::string password;
  Credentials() = default;
  Credentials(const Credentials&) = delete;
  Credentials& operator=(const Credentials&) = delete;
  ~Credentials();
};

class BackendSession {
 public:
  virtual ~BackendSession() = default;

  // Checks `credentials` with the backend's own AUTH (PLAIN, else LOGIN) on a connection of
  // its own, opened for `client` (introduced with XCLIENT first when offered, so the backend
  // sees the real client). Returns 235 when the backend accepted them, the backend's 535 when
  // it did not, and a 454 4.7.0 when it could not say (unreachable, no AUTH offered). After a
  // 235, this session's transactions carry the login: with XCLIENT LOGIN= where offered,
  // otherwise on that authenticated connection, kept for this session alone.
  virtual asio::awaitable<smtp::Reply> authenticate(const ClientInfo& client,
                                                    const Credentials& credentials);

  // Starts a transaction: takes (or opens) a backend connection, introduces the client, sends
  // MAIL FROM built from `mail` with the parameters the backend supports.
  virtual asio::awaitable<smtp::Reply> mail(const ClientInfo& client,
                                            const smtp::MailArgs& mail) = 0;
  // Sends RCPT TO:<address>. Only valid after a positive mail().
  virtual asio::awaitable<smtp::Reply> rcpt(const std::string& address) = 0;
  // Sends DATA, then `prepend` (already CRLF-terminated header lines, e.g. Received, or a
  // whole edited header block) and the spooled message without its first `skip` octets (the
  // original header block when `prepend` replaces it), dot-stuffed, then CRLF.CRLF; returns
  // the final reply. The transaction is over afterwards whatever the reply.
  virtual asio::awaitable<smtp::Reply> data(const std::string& prepend,
                                            const spool::Spool& message, uint64_t skip) = 0;
  // Abandons the current transaction (RSET upstream, or drops a broken connection).
  virtual asio::awaitable<void> reset() = 0;
  // The session is over: returns a healthy idle connection to the pool, closes others.
  virtual void release() = 0;
};

}  // namespace mailgate::relay
