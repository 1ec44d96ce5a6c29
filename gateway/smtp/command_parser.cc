// smtp/command_parser.cc — see command_parser.h. Owns RFC 5321 §4.1 command syntax: the verb
// table, the Path grammar (§4.1.2, with RFC 6531 UTF-8 extensions), ESMTP parameters
// (RFC 1870 SIZE, RFC 6152/3030 BODY, RFC 6531 SMTPUTF8) and the EHLO/HELO argument.
// Every function here is pure: no I/O, no session state, no exceptions.
#include "smtp/command_parser.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>

#include "util/ascii.h"

namespace mailgate::smtp {
namespace {

// ---------------------------------------------------------------------------------------------
// Character classes and small string helpers.

bool is_alpha(unsigned char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_alnum(unsigned char c) { return is_alpha(c) || is_digit(c); }
bool is_hex(unsigned char c) {
  return is_digit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// atext (RFC 5322 §3.2.3): letters, digits and these specials.
bool is_atext(unsigned char c) {
  constexpr std::string_view kSpecials = "!#$%&'*+-/=?^_`{|}~";
  return is_alnum(c) || kSpecials.find(static_cast<char>(c)) != std::string_view::npos;
}

// Strips trailing SP/HTAB: RFC 5321 has no room for them, but clients send them.
std::string_view trim_trailing_blanks(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view trim_leading_spaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

// Length of the well-formed UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most
// U+10FFFF) starting at s[i], whose first octet is >= 0x80; 0 when it is not well-formed.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = at(i);
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second octet
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Address literals (RFC 5321 §4.1.3), the text between '[' and ']'.

// IPv4-address-literal: Snum 3("." Snum), Snum = 1*3DIGIT with a value 0..255.
bool valid_ipv4_literal(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (true) {
    size_t start = i;
    unsigned value = 0;
    while (i < s.size() && is_digit(static_cast<unsigned char>(s[i])) && i - start < 3) {
      value = value * 10 + static_cast<unsigned>(s[i] - '0');
      ++i;
    }
    if (i == start || value > 255) return false;
    ++parts;
    if (i == s.size()) return parts == 4;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
}

// "IPv6:" IPv6-addr; the forms RFC 5321 allows are exactly what inet_pton(AF_INET6) accepts
// (full, compressed, and with a trailing IPv4 part); zone ids are not allowed.
bool valid_ipv6_literal(std::string_view s) {
  constexpr std::string_view kTag = "IPv6:";
  if (!istarts_with(s, kTag)) return false;
  std::string_view addr = s.substr(kTag.size());
  std::array<char, 64> text{};
  if (addr.empty() || addr.size() >= text.size()) return false;
  for (char c : addr) {
    if (!is_hex(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
  }
  addr.copy(text.data(), addr.size());
  unsigned char out[16];
  return inet_pton(AF_INET6, text.data(), out) == 1;
}

// The contents of an address literal. General-address-literal tags other than IPv6 must be
// registered with IANA and none are, so they are refused.
bool valid_address_literal(std::string_view inner) {
  return valid_ipv4_literal(inner) || valid_ipv6_literal(inner);
}

// ---------------------------------------------------------------------------------------------
// Path parsing (RFC 5321 §4.1.2):
//   Path = "<" [ A-d-l ":" ] Mailbox ">"        A-d-l = At-domain *( "," At-domain )
//   Mailbox = Local-part "@" ( Domain / address-literal )
//   Local-part = Dot-string / Quoted-string     Domain = sub-domain *("." sub-domain)
// RFC 6531 adds UTF-8 to atext, qtextSMTP and sub-domain (U-labels).

constexpr size_t kMaxLocalPart = 64;  // §4.5.3.1.1
constexpr size_t kMaxDomain = 255;    // §4.5.3.1.2
constexpr size_t kMaxPath = 256;      // §4.5.3.1.3, including the angle brackets
constexpr size_t kMaxLabel = 63;      // RFC 1035 §2.3.4

enum class PathError {
  kNone,
  kSyntax,         // does not match the grammar
  kBadUtf8,        // non-ASCII octets that are not well-formed UTF-8
  kNoDomain,       // "<local>" without "@domain" (only "<postmaster>" may do that)
  kLocalTooLong,   // local part > 64 octets
  kDomainTooLong,  // domain > 255 octets
  kPathTooLong,    // "<" mailbox ">" > 256 octets
};

class PathScanner {
 public:
  explicit PathScanner(std::string_view s) : s_(s) {}

  size_t pos() const { return pos_; }

  // Parses a path starting at '<'. On success fills `out` and leaves pos() after the '>'.
  PathError parse(bool allow_null, Path& out) {
    if (!take('<')) return PathError::kSyntax;
    if (take('>')) {
      if (!allow_null) return PathError::kSyntax;
      out = Path{};
      return PathError::kNone;
    }
    if (peek() == '@') {
      // Source route: parsed for syntax, then dropped (RFC 5321 §4.1.2, appendix C).
      do {
        if (!take('@')) return PathError::kSyntax;
        size_t start = pos_;
        if (PathError e = domain(); e != PathError::kNone) return e;
        if (pos_ - start > kMaxDomain) return PathError::kDomainTooLong;
      } while (take(','));
      if (!take(':')) return PathError::kSyntax;
      utf8_ = false;  // the route is dropped: only the mailbox decides whether SMTPUTF8 is needed
    }
    size_t mailbox_start = pos_;
    if (PathError e = local_part(); e != PathError::kNone) return e;
    size_t local_length = pos_ - mailbox_start;
    if (local_length == 0) return PathError::kSyntax;
    size_t domain_length = 0;
    if (take('@')) {
      size_t domain_start = pos_;
      if (peek() == '[') {
        if (PathError e = address_literal(); e != PathError::kNone) return e;
      } else if (PathError e = domain(); e != PathError::kNone) {
        return e;
      }
      domain_length = pos_ - domain_start;
    }
    size_t mailbox_end = pos_;
    if (!take('>')) return PathError::kSyntax;
    // Lengths are checked after the syntax so that garbage is reported as garbage.
    if (local_length > kMaxLocalPart) return PathError::kLocalTooLong;
    if (domain_length > kMaxDomain) return PathError::kDomainTooLong;
    if (mailbox_end - mailbox_start + 2 > kMaxPath) return PathError::kPathTooLong;
    out.address.assign(s_.substr(mailbox_start, mailbox_end - mailbox_start));
    out.utf8 = utf8_;
    if (domain_length == 0) return PathError::kNoDomain;
    return PathError::kNone;
  }

 private:
  int peek() const { return pos_ < s_.size() ? static_cast<unsigned char>(s_[pos_]) : -1; }
  bool take(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  // Consumes one UTF-8 sequence at pos_ (whose first octet is >= 0x80).
  PathError take_utf8() {
    size_t n = utf8_sequence_length(s_, pos_);
    if (n == 0) return PathError::kBadUtf8;
    pos_ += n;
    utf8_ = true;
    return PathError::kNone;
  }

  PathError local_part() {
    if (peek() == '"') return quoted_string();
    // Dot-string = Atom *("." Atom): no leading, trailing or doubled dots.
    while (true) {
      size_t atom_start = pos_;
      while (pos_ < s_.size()) {
        unsigned char c = static_cast<unsigned char>(s_[pos_]);
        if (c >= 0x80) {
          if (PathError e = take_utf8(); e != PathError::kNone) return e;
        } else if (is_atext(c)) {
          ++pos_;
        } else {
          break;
        }
      }
      if (pos_ == atom_start) return PathError::kSyntax;
      if (!take('.')) return PathError::kNone;
    }
  }

  // Quoted-string = DQUOTE *QcontentSMTP DQUOTE; qtextSMTP = %d32-33 / %d35-91 / %d93-126;
  // quoted-pairSMTP = "\" %d32-126. Control characters (and NUL) are never allowed.
  PathError quoted_string() {
    take('"');
    while (pos_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return PathError::kNone;
      }
      if (c == '\\') {
        ++pos_;
        if (pos_ >= s_.size()) return PathError::kSyntax;
        unsigned char q = static_cast<unsigned char>(s_[pos_]);
        if (q < 32 || q > 126) return PathError::kSyntax;
        ++pos_;
      } else if (c >= 0x80) {
        if (PathError e = take_utf8(); e != PathError::kNone) return e;
      } else if (c >= 32 && c <= 126) {
        ++pos_;
      } else {
        return PathError::kSyntax;
      }
    }
    return PathError::kSyntax;  // unterminated
  }

  // sub-domain = Let-dig [Ldh-str] (letters, digits, inner hyphens) or a U-label. An ASCII
  // label is at most 63 octets; a U-label's limit applies to its A-label form, which we do not
  // compute, so only the domain's total length bounds it.
  PathError domain() {
    while (true) {
      size_t label_start = pos_;
      bool non_ascii = false;
      while (pos_ < s_.size()) {
        unsigned char c = static_cast<unsigned char>(s_[pos_]);
        if (c >= 0x80) {
          if (PathError e = take_utf8(); e != PathError::kNone) return e;
          non_ascii = true;
        } else if (is_alnum(c) || c == '-') {
          ++pos_;
        } else {
          break;
        }
      }
      std::string_view label = s_.substr(label_start, pos_ - label_start);
      if (label.empty() || label.front() == '-' || label.back() == '-') return PathError::kSyntax;
      if (!non_ascii && label.size() > kMaxLabel) return PathError::kSyntax;
      if (!take('.')) return PathError::kNone;
    }
  }

  PathError address_literal() {
    take('[');
    size_t close = s_.find(']', pos_);
    if (close == std::string_view::npos) return PathError::kSyntax;
    if (!valid_address_literal(s_.substr(pos_, close - pos_))) return PathError::kSyntax;
    pos_ = close + 1;
    return PathError::kNone;
  }

  std::string_view s_;
  size_t pos_ = 0;
  bool utf8_ = false;
};

// ---------------------------------------------------------------------------------------------
// ESMTP parameters: esmtp-param = esmtp-keyword ["=" esmtp-value]
//   esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
//   esmtp-value = 1*(%d33-60 / %d62-126)  (RFC 6531: or UTF-8)

struct Param {
  std::string_view keyword;
  std::string_view value;
  bool has_value = false;
};

bool valid_keyword(std::string_view k) {
  if (k.empty() || !is_alnum(static_cast<unsigned char>(k.front()))) return false;
  for (char c : k) {
    if (!is_alnum(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

bool valid_value(std::string_view v) {
  if (v.empty()) return false;
  for (size_t i = 0; i < v.size();) {
    unsigned char c = static_cast<unsigned char>(v[i]);
    if (c >= 0x80) {
      size_t n = utf8_sequence_length(v, i);
      if (n == 0) return false;
      i += n;
    } else if (c >= 33 && c <= 126 && c != '=') {
      ++i;
    } else {
      return false;
    }
  }
  return true;
}

// Splits "A=1 B  C=2" at runs of spaces into parameters; false when one is malformed.
template <typename Fn>
bool for_each_param(std::string_view params, Fn&& fn) {
  while (true) {
    params = trim_leading_spaces(params);
    if (params.empty()) return true;
    size_t end = params.find(' ');
    std::string_view token = params.substr(0, end);
    params = end == std::string_view::npos ? std::string_view{} : params.substr(end);
    Param p;
    size_t eq = token.find('=');
    p.keyword = token.substr(0, eq);
    if (eq != std::string_view::npos) {
      p.has_value = true;
      p.value = token.substr(eq + 1);
      if (!valid_value(p.value)) return false;
    }
    if (!valid_keyword(p.keyword)) return false;
    if (!fn(p)) return true;  // the callback recorded an error and wants to stop
  }
}

Reply bad_parameter_syntax() { return Reply::make(501, "5.5.4", "Bad parameter syntax"); }

Reply unsupported_parameter(std::string_view keyword) {
  std::string text = "Unsupported parameter: ";
  text.append(keyword);
  return Reply::make(555, "5.5.4", text);
}

// SIZE=1*20DIGIT (RFC 1870); a value that does not fit 64 bits is refused.
bool parse_size(std::string_view v, uint64_t& out) {
  if (v.empty()) return false;
  uint64_t n = 0;
  for (char c : v) {
    if (!is_digit(static_cast<unsigned char>(c))) return false;
    unsigned d = static_cast<unsigned>(c - '0');
    if (n > (UINT64_MAX - d) / 10) return false;
    n = n * 10 + d;
  }
  out = n;
  return true;
}

// What the address is for: selects the enhanced code and the wording of replies.
struct Role {
  std::string_view enhanced;  // "5.1.7" sender, "5.1.3" recipient
  std::string_view noun;      // "sender" / "recipient"
};
constexpr Role kSender{"5.1.7", "sender"};
constexpr Role kRecipient{"5.1.3", "recipient"};

Reply address_reply(const Role& role, std::string_view detail) {
  std::string text = "Bad ";
  text.append(role.noun);
  text.append(" address syntax");
  if (!detail.empty()) {
    text.append(": ");
    text.append(detail);
  }
  return Reply::make(501, role.enhanced, text);
}

Reply path_error_reply(const Role& role, PathError e) {
  switch (e) {
    case PathError::kLocalTooLong:
      return address_reply(role, "local part longer than 64 octets");
    case PathError::kDomainTooLong:
      return address_reply(role, "domain longer than 255 octets");
    case PathError::kPathTooLong:
      return address_reply(role, "path longer than 256 octets");
    case PathError::kBadUtf8:
      return address_reply(role, "invalid UTF-8");
    case PathError::kNone:  // not an error: a caller bug; answer as a syntax error
    case PathError::kSyntax:
    case PathError::kNoDomain:
      break;
  }
  return address_reply(role, "");
}

Reply utf8_not_declared(const Role& role) {
  std::string text = "Non-ASCII ";
  text.append(role.noun);
  text.append(" address requires SMTPUTF8");
  return Reply::make(553, "5.6.7", text);
}

// Strips "FROM:"/"TO:" (case-insensitive) and the one space clients may put after the colon.
// Returns false when the keyword is missing.
bool strip_path_keyword(std::string_view& argument, std::string_view keyword) {
  if (!istarts_with(argument, keyword)) return false;
  argument.remove_prefix(keyword.size());
  if (!argument.empty() && argument.front() == ' ') argument.remove_prefix(1);
  return true;
}

// Parses "<path>" followed by nothing or by SP and parameters. `params` receives the rest.
PathError parse_path_and_rest(std::string_view s, bool allow_null, Path& out,
                              std::string_view& params) {
  PathScanner scanner(s);
  PathError e = scanner.parse(allow_null, out);
  if (e != PathError::kNone && e != PathError::kNoDomain) return e;
  std::string_view rest = s.substr(scanner.pos());
  if (!rest.empty() && rest.front() != ' ') return PathError::kSyntax;
  params = rest;
  return e;
}

// The verb table: the name as the RFCs spell it and the enum value.
struct VerbEntry {
  std::string_view name;
  Verb verb;
};
constexpr VerbEntry kVerbs[] = {
    {"HELO", Verb::kHelo},          //
    {"EHLO", Verb::kEhlo},          //
    {"MAIL", Verb::kMail},          //
    {"RCPT", Verb::kRcpt},          //
    {"DATA", Verb::kData},          //
    {"BDAT", Verb::kBdat},          //
    {"RSET", Verb::kRset},          //
    {"NOOP", Verb::kNoop},          //
    {"QUIT", Verb::kQuit},          //
    {"VRFY", Verb::kVrfy},          //
    {"EXPN", Verb::kExpn},          //
    {"HELP", Verb::kHelp},          //
    {"STARTTLS", Verb::kStarttls},  //
    {"AUTH", Verb::kAuth},          //
};

constexpr std::string_view kPostmaster = "postmaster";

}  // namespace

Command parse_command(std::string_view line) {
  Command cmd;
  line = trim_trailing_blanks(line);
  size_t space = line.find(' ');
  cmd.verb_text = line.substr(0, space);
  if (space != std::string_view::npos) {
    cmd.argument = trim_trailing_blanks(trim_leading_spaces(line.substr(space + 1)));
  }
  for (const VerbEntry& e : kVerbs) {
    if (iequals(cmd.verb_text, e.name)) {
      cmd.verb = e.verb;
      break;
    }
  }
  return cmd;
}

Expected<MailArgs, Reply> parse_mail_args(std::string_view argument) {
  argument = trim_trailing_blanks(argument);
  if (!strip_path_keyword(argument, "FROM:")) {
    return unexpected(Reply::make(501, "5.5.4", "Syntax: MAIL FROM:<address>"));
  }
  MailArgs args;
  std::string_view params;
  PathError e = parse_path_and_rest(argument, /*allow_null=*/true, args.reverse_path, params);
  if (e != PathError::kNone) return unexpected(path_error_reply(kSender, e));

  bool seen_size = false, seen_body = false, seen_smtputf8 = false;
  Reply error;
  auto duplicate = [&](std::string_view keyword) {
    std::string text = "Duplicate ";
    text.append(keyword);
    text.append(" parameter");
    error = Reply::make(501, "5.5.4", text);
    return false;
  };
  bool well_formed = for_each_param(params, [&](const Param& p) {
    if (iequals(p.keyword, "SIZE")) {
      if (seen_size) return duplicate("SIZE");
      seen_size = true;
      uint64_t size = 0;
      if (!p.has_value || !parse_size(p.value, size)) {
        error = Reply::make(501, "5.5.4", "Bad SIZE parameter");
        return false;
      }
      args.size = size;
    } else if (iequals(p.keyword, "BODY")) {
      if (seen_body) return duplicate("BODY");
      seen_body = true;
      if (p.has_value && iequals(p.value, "7BIT")) {
        args.body = BodyType::k7Bit;
      } else if (p.has_value && iequals(p.value, "8BITMIME")) {
        args.body = BodyType::k8BitMime;
      } else if (p.has_value && iequals(p.value, "BINARYMIME")) {
        args.body = BodyType::kBinaryMime;
      } else {
        error = Reply::make(501, "5.5.4", "Bad BODY parameter");
        return false;
      }
    } else if (iequals(p.keyword, "SMTPUTF8")) {
      if (seen_smtputf8) return duplicate("SMTPUTF8");
      seen_smtputf8 = true;
      if (p.has_value) {
        error = Reply::make(501, "5.5.4", "SMTPUTF8 takes no value");
        return false;
      }
      args.smtputf8 = true;
    } else {
      error = unsupported_parameter(p.keyword);
      return false;
    }
    return true;
  });
  if (!well_formed) return unexpected(bad_parameter_syntax());
  if (!error.empty()) return unexpected(std::move(error));
  if (args.reverse_path.utf8 && !args.smtputf8) return unexpected(utf8_not_declared(kSender));
  return args;
}

Expected<RcptArgs, Reply> parse_rcpt_args(std::string_view argument, bool smtputf8) {
  argument = trim_trailing_blanks(argument);
  if (!strip_path_keyword(argument, "TO:")) {
    return unexpected(Reply::make(501, "5.5.4", "Syntax: RCPT TO:<address>"));
  }
  RcptArgs args;
  std::string_view params;
  if (iequals(argument, kPostmaster)) {
    // A bare "postmaster" without brackets: tolerated like "<postmaster>" (§4.1.1.3).
    args.forward_path.address = kPostmaster;
  } else {
    PathError e = parse_path_and_rest(argument, /*allow_null=*/false, args.forward_path, params);
    if (e == PathError::kNoDomain && iequals(args.forward_path.address, kPostmaster)) {
      args.forward_path.address = kPostmaster;  // "<Postmaster>" (§4.1.1.3)
    } else if (e != PathError::kNone) {
      return unexpected(path_error_reply(kRecipient, e));
    }
  }
  Reply error;
  bool well_formed = for_each_param(params, [&](const Param& p) {
    error = unsupported_parameter(p.keyword);
    return false;
  });
  if (!well_formed) return unexpected(bad_parameter_syntax());
  if (!error.empty()) return unexpected(std::move(error));
  if (args.forward_path.utf8 && !smtputf8) return unexpected(utf8_not_declared(kRecipient));
  return args;
}

// Lenient like Postfix's default: a hostname (with or without dots, labels of letters, digits,
// hyphens, underscores or UTF-8, at most 63 octets each, an optional final dot) or an IPv4 /
// IPv6 address literal. Spaces, control characters and other punctuation are refused.
Reply check_helo_argument(std::string_view argument) {
  if (argument.empty()) return Reply::make(501, "5.5.4", "Syntax: EHLO hostname");
  Reply invalid = Reply::make(501, "5.5.4", "Invalid EHLO hostname");
  if (argument.front() == '[') {
    if (argument.size() < 2 || argument.back() != ']') return invalid;
    return valid_address_literal(argument.substr(1, argument.size() - 2)) ? Reply{} : invalid;
  }
  if (argument.size() > kMaxDomain) return invalid;
  std::string_view name = argument;
  if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
  size_t label_length = 0;
  bool label_ascii = true;
  for (size_t i = 0; i < name.size();) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (c == '.') {
      if (label_length == 0) return invalid;
      label_length = 0;
      label_ascii = true;
      ++i;
      continue;
    }
    size_t n = 1;
    if (c >= 0x80) {
      n = utf8_sequence_length(name, i);
      if (n == 0) return invalid;
      label_ascii = false;
    } else if (!is_alnum(c) && c != '-' && c != '_') {
      return invalid;
    }
    label_length += n;
    if (label_ascii && label_length > kMaxLabel) return invalid;
    i += n;
  }
  if (label_length == 0) return invalid;
  return Reply{};
}

}  // namespace mailgate::smtp
