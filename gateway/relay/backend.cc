// relay/backend.cc — see backend.h: the parts of the interface every backend shares.
#include "relay/backend.h"

#include "smtp/sasl.h"

namespace mailgate::relay {

Credentials::~Credentials() { smtp::wipe(password); }

asio::awaitable<smtp::Reply> BackendSession::authenticate(const ClientInfo&, const Credentials&) {
  // A backend that cannot check credentials: the client may try again later.
  co_return smtp::Reply::make(454, "4.7.0", "Temporary authentication failure");
}

}  // namespace mailgate::relay
