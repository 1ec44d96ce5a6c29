// smtp_command_fuzz.cc — one SMTP command line through the server-side parser: the verb split,
// MAIL and RCPT arguments (paths, ESMTP parameters, with and without SMTPUTF8) and the HELO
// argument check. Properties: no crash or sanitizer report; every refusal is a 5xx reply with an
// enhanced code and no CR/LF/NUL in its text; an accepted path never carries CR, LF or NUL
// (it is written back to the backend in MAIL/RCPT and into headers; '<' and '>' are legal
// inside a quoted local part), and a path with 8-bit octets is accepted only when SMTPUTF8 is
// in force.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "smtp/command_parser.h"

namespace {

using mailgate::smtp::Path;
using mailgate::smtp::Reply;

// A refusal is 5xx with a 5.x.x enhanced code leading its text, and no line of it can break
// the reply apart (some echo what the client wrote).
void check_refusal(const Reply& r) {
  FUZZ_CHECK(r.permanent());
  FUZZ_CHECK(!r.lines.empty() && r.lines[0].size() >= 6 && r.lines[0].compare(0, 2, "5.") == 0);
  for (const auto& l : r.lines)
    for (char c : l) FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
}

void check_path(const Path& p, bool smtputf8) {
  for (char c : p.address) {
    FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
    if (static_cast<unsigned char>(c) >= 0x80) FUZZ_CHECK(smtputf8 && p.utf8);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const mailgate::smtp::Command cmd = mailgate::smtp::parse_command(line);
  FUZZ_CHECK(cmd.argument.size() <= line.size());
  switch (cmd.verb) {
    case mailgate::smtp::Verb::kMail: {
      auto mail = mailgate::smtp::parse_mail_args(cmd.argument);
      if (mail)
        check_path(mail->reverse_path, mail->smtputf8);
      else
        check_refusal(mail.error());
      break;
    }
    case mailgate::smtp::Verb::kRcpt:
      for (bool smtputf8 : {false, true}) {
        auto rcpt = mailgate::smtp::parse_rcpt_args(cmd.argument, smtputf8);
        if (rcpt)
          check_path(rcpt->forward_path, smtputf8);
        else
          check_refusal(rcpt.error());
      }
      break;
    case mailgate::smtp::Verb::kHelo:
    case mailgate::smtp::Verb::kEhlo: {
      const Reply r = mailgate::smtp::check_helo_argument(cmd.argument);
      if (!r.empty()) check_refusal(r);
      break;
    }
    default:
      break;
  }
  return 0;
}
