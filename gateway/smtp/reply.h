// smtp/reply.h — an SMTP reply: a three-digit code and one or more text lines.
// Owns: reply values and their wire encoding (RFC 5321 §4.2). Used by the server side,
// the relay (backend replies are parsed into it and passed through unchanged) and the chain.
// Thread-safety: plain value type.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mailgate::smtp {

struct Reply {
  int code = 0;                    // 200..599; 0 means "no reply" (unset)
  std::vector<std::string> lines;  // text after "NNN-"/"NNN "; an enhanced code, if any, leads it

  // A one-line reply "code enhanced text". `enhanced` may be empty (e.g. 220, 354).
  static Reply make(int code, std::string_view enhanced, std::string_view text);

  bool empty() const { return code == 0; }
  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500 && code < 600; }
  // True for 421 (service closing): the sender of it closes the connection.
  bool closes() const { return code == 421; }

  // The enhanced status code of the first line ("5.1.1"), or empty when it has none.
  std::string_view enhanced() const;
  // First line's text after the enhanced code, for logs.
  std::string_view text() const;
  // Appends "NNN-line\r\n"... "NNN line\r\n" to `out`.
  void append_wire(std::string& out) const;
  std::string wire() const;
  // "550 5.1.1 text" on one line (continuation lines joined with " / "), for logs.
  std::string summary() const;
};

}  // namespace mailgate::smtp
