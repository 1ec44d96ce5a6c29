// smtp/command.h — parsed forms of SMTP commands (RFC 5321 §4.1, RFC 1870, 6152, 6531).
// Owns: the value types the command parser produces and the session consumes.
// Views (std::string_view) point into the caller's line buffer: they live as long as it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::smtp {

// Every verb the gateway recognises. kUnknown covers anything else (answered 502).
enum class Verb {
  kHelo,
  kEhlo,
  kMail,
  kRcpt,
  kData,
  kBdat,
  kRset,
  kNoop,
  kQuit,
  kVrfy,
  kExpn,
  kHelp,
  kStarttls,
  kAuth,
  kUnknown,
};

std::string_view verb_name(Verb v);

// One command line, split at the first space: verb (case-insensitive) and the rest.
struct Command {
  Verb verb = Verb::kUnknown;
  std::string_view verb_text;  // as the client wrote it
  std::string_view argument;   // after the first space; may be empty
};

// BODY= values (RFC 6152, RFC 3030).
enum class BodyType { kUnspecified, k7Bit, k8BitMime, kBinaryMime };

// A reverse-path or forward-path, without the angle brackets.
struct Path {
  std::string address;  // "local@domain"; empty for the null path "<>"
  std::string_view local_part() const;
  std::string_view domain() const;
  bool is_null() const { return address.empty(); }
  bool utf8 = false;  // contains non-ASCII octets (needs SMTPUTF8)
};

struct MailArgs {
  Path reverse_path;
  std::optional<uint64_t> size;  // SIZE=
  BodyType body = BodyType::kUnspecified;
  bool smtputf8 = false;  // SMTPUTF8 (no value)
};

struct RcptArgs {
  Path forward_path;  // "postmaster" alone (RFC 5321 §4.1.1.3) is returned as "postmaster"
};

}  // namespace mailgate::smtp
