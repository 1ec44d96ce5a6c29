// smtp/command.cc — see command.h. Owns the verb names and the split of a path into its
// local part and domain. Pure functions, no state.
#include "smtp/command.h"

namespace mailgate::smtp {

std::string_view verb_name(Verb v) {
  switch (v) {
    case Verb::kHelo:
      return "HELO";
    case Verb::kEhlo:
      return "EHLO";
    case Verb::kMail:
      return "MAIL";
    case Verb::kRcpt:
      return "RCPT";
    case Verb::kData:
      return "DATA";
    case Verb::kBdat:
      return "BDAT";
    case Verb::kRset:
      return "RSET";
    case Verb::kNoop:
      return "NOOP";
    case Verb::kQuit:
      return "QUIT";
    case Verb::kVrfy:
      return "VRFY";
    case Verb::kExpn:
      return "EXPN";
    case Verb::kHelp:
      return "HELP";
    case Verb::kStarttls:
      return "STARTTLS";
    case Verb::kAuth:
      return "AUTH";
    case Verb::kUnknown:
      return "UNKNOWN";
  }
  return "UNKNOWN";
}

// The domain cannot contain '@' (neither a domain name nor an address literal does), so the
// last '@' separates it from the local part, even when a quoted local part contains '@'.
std::string_view Path::local_part() const {
  std::string_view a = address;
  size_t at = a.rfind('@');
  return at == std::string_view::npos ? a : a.substr(0, at);
}

std::string_view Path::domain() const {
  std::string_view a = address;
  size_t at = a.rfind('@');
  return at == std::string_view::npos ? std::string_view{} : a.substr(at + 1);
}

}  // namespace mailgate::smtp
