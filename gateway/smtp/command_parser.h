// smtp/command_parser.h — turns one command line into a Command and its arguments.
// Owns: RFC 5321 syntax (verbs, paths, ESMTP parameters) and the replies for syntax errors.
// Must not touch: session state (sequence checks live in session.cc) or any I/O.
// Thread-safety: pure functions.
#pragma once

#include <string_view>

#include "smtp/command.h"
#include "smtp/reply.h"
#include "util/expected.h"

namespace mailgate::smtp {

// Splits `line` (without its CRLF) into verb and argument. Never fails: an unrecognised verb
// is Verb::kUnknown.
Command parse_command(std::string_view line);

// Parses the argument of MAIL ("FROM:<a@b> SIZE=123 BODY=8BITMIME SMTPUTF8").
// Accepts "FROM:" case-insensitively, an optional single space after the colon (common
// client quirk), source routes (stripped, RFC 5321 §4.1.2), quoted local parts, address
// literals. Errors are complete replies: 501 5.5.4 for bad parameters, 501 5.1.7 for a bad
// sender address, 555 5.5.4 for an unknown parameter. Non-ASCII in the address is only
// accepted together with the SMTPUTF8 parameter (otherwise 553 5.6.7).
Expected<MailArgs, Reply> parse_mail_args(std::string_view argument);

// Parses the argument of RCPT ("TO:<a@b>"). Errors: 501 5.1.3 for a bad recipient address,
// 555 5.5.4 for any parameter (none are advertised). `smtputf8` says whether the transaction
// declared SMTPUTF8: non-ASCII in the address without it is 553 5.6.7.
Expected<RcptArgs, Reply> parse_rcpt_args(std::string_view argument, bool smtputf8);

// Validates an EHLO/HELO argument: a domain name or an address literal ("[1.2.3.4]",
// "[IPv6:...]"). Returns an empty Reply when acceptable, else 501 5.5.4.
Reply check_helo_argument(std::string_view argument);

}  // namespace mailgate::smtp
