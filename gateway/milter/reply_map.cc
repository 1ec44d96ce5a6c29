// milter/reply_map.cc — see reply_map.h.
#include "milter/reply_map.h"

namespace mailgate::milter {
namespace {

// The enhanced code of a reply line and the text after it ("5.7.1 Relay denied").
void split_enhanced(std::string_view line, std::string* enhanced, std::string* text) {
  size_t space = line.find(' ');
  std::string_view first = line.substr(0, space);
  bool looks = first.size() >= 5 && first[1] == '.' &&
               first.find_first_not_of("0123456789.") == std::string_view::npos;
  if (looks) {
    *enhanced = std::string(first);
    *text = space == std::string_view::npos ? std::string() : std::string(line.substr(space + 1));
  } else {
    enhanced->clear();
    *text = std::string(line);
  }
}

}  // namespace

std::string escape_percent(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '%') out.push_back('%');
    // libmilter refuses CR and LF in reply text; the chain never makes them, but be safe.
    out.push_back(c == '\r' || c == '\n' ? ' ' : c);
  }
  return out;
}

MilterReply map_verdict(mg_action action, const smtp::Reply& reply) {
  MilterReply m;
  switch (action) {
    case MG_CONTINUE:
      m.status = Status::kContinue;
      return m;
    case MG_ACCEPT:
      m.status = Status::kAccept;
      return m;
    case MG_DISCARD:
      m.status = Status::kDiscard;
      return m;
    case MG_TEMPFAIL:
      m.status = Status::kTempfail;
      break;
    case MG_REJECT:
      m.status = Status::kReject;
      break;
    case MG_FAILED:
    case MG_RETRY_BLOCKING:  // never a verdict (the chain runs such a call again)
      m.status = Status::kTempfail;
      break;  // not expected: be safe
  }
  const bool temp = m.status == Status::kTempfail;
  int code = reply.code;
  bool right_class = temp ? (code >= 400 && code < 500) : (code >= 500 && code < 600);
  if (!right_class) {
    m.code = temp ? "451" : "550";
    m.enhanced = temp ? "4.7.1" : "5.7.1";
    m.lines = {temp ? "Temporarily rejected by policy, try again later" : "Rejected by policy"};
    return m;
  }
  m.code = std::to_string(code);
  for (size_t i = 0; i < reply.lines.size(); ++i) {
    std::string enhanced, text;
    split_enhanced(reply.lines[i], &enhanced, &text);
    if (i == 0) m.enhanced = enhanced;
    m.lines.push_back(escape_percent(text));
  }
  if (m.lines.empty()) m.lines.push_back(temp ? "Try again later" : "Rejected");
  // libmilter wants the enhanced code's class to match the reply's.
  if (!m.enhanced.empty() && m.enhanced[0] != m.code[0]) m.enhanced.clear();
  return m;
}

int to_sfsistat(Status status) { return static_cast<int>(status); }

}  // namespace mailgate::milter
