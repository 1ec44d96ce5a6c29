// plugins/bayes/lib/bayes/digest.cc — message_digest() (token_store.h).
#include <cstdio>

#include "bayes/token_store.h"

namespace mailgate::bayes {
namespace {

void fnv1a(std::uint64_t& h, std::string_view bytes) {
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
}

}  // namespace

std::string message_digest(const Message& message) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const HeaderField& f : message.headers) {
    if (ascii_lower(f.name) == "message-id") {
      fnv1a(h, f.value);
      break;
    }
  }
  fnv1a(h, "\n");
  fnv1a(h, std::string_view(message.body).substr(0, 64 * 1024));
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

}  // namespace mailgate::bayes
