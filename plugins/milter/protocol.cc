// plugins/milter/protocol.cc — see protocol.h.
#include "protocol.h"

namespace mailgate::milter_client {
namespace {

void put_u32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

std::uint32_t get_u32(std::string_view bytes) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[0])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[3]));
}

void put_cstring(std::string& out, std::string_view text) {
  // An embedded NUL would split the field on the milter's side: cut the text there.
  const std::size_t nul = text.find('\0');
  out.append(text.substr(0, nul));
  out.push_back('\0');
}

// Reads the fields of a response's data in order; every read checks the bounds.
class Cursor {
 public:
  explicit Cursor(std::string_view data) : data_(data) {}
  bool u32(std::uint32_t* out) {
    if (data_.size() - pos_ < 4) return false;
    *out = get_u32(data_.substr(pos_, 4));
    pos_ += 4;
    return true;
  }
  // A NUL-terminated string; false when no NUL follows inside the packet.
  bool cstring(std::string* out) {
    const std::size_t nul = data_.find('\0', pos_);
    if (nul == std::string_view::npos) return false;
    out->assign(data_.substr(pos_, nul - pos_));
    pos_ = nul + 1;
    return true;
  }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "5.7.1" of class `klass`: digit, '.', 1-3 digits, '.', 1-3 digits.
bool enhanced_code(std::string_view text, char klass) {
  if (text.size() < 5 || text[0] != klass || text[1] != '.') return false;
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    const std::size_t start = i;
    while (i < text.size() && is_digit(text[i])) ++i;
    if (i == start || i - start > 3) return false;
    if (part == 0) {
      if (i >= text.size() || text[i] != '.') return false;
      ++i;
    }
  }
  return i == text.size();
}

std::string decode_negotiation(Cursor& c, Negotiation* n) {
  if (!c.u32(&n->version) || !c.u32(&n->actions) || !c.u32(&n->protocol))
    return "option negotiation shorter than 12 bytes";
  while (!c.at_end()) {
    std::uint32_t stage = 0;
    std::string names;
    if (!c.u32(&stage) || !c.cstring(&names)) return "malformed macro list in option negotiation";
    if (stage >= static_cast<std::uint32_t>(MacroStage::kCount))
      return "macro list for unknown stage " + std::to_string(stage);
    n->has_macros[stage] = true;
    std::vector<std::string>& list = n->macros[stage];
    list.clear();
    std::size_t pos = 0;
    while (pos < names.size()) {
      std::size_t end = names.find_first_of(" ,", pos);
      if (end == std::string::npos) end = names.size();
      if (end > pos) list.push_back(names.substr(pos, end - pos));
      pos = end + 1;
    }
  }
  return "";
}

}  // namespace

std::string encode_packet(char command, std::string_view data) {
  std::string out;
  out.reserve(5 + data.size());
  put_u32(out, static_cast<std::uint32_t>(data.size() + 1));
  out.push_back(command);
  out.append(data);
  return out;
}

std::string encode_optneg(std::uint32_t version, std::uint32_t actions, std::uint32_t protocol) {
  std::string data;
  put_u32(data, version);
  put_u32(data, actions);
  put_u32(data, protocol);
  return encode_packet(cmd::kOptNeg, data);
}

std::string encode_connect(std::string_view hostname, char family, std::uint16_t port,
                           std::string_view address) {
  std::string data;
  put_cstring(data, hostname);
  data.push_back(family);
  if (family != 'U') {
    data.push_back(static_cast<char>((port >> 8) & 0xff));
    data.push_back(static_cast<char>(port & 0xff));
    put_cstring(data, address);
  }
  return encode_packet(cmd::kConnect, data);
}

std::string encode_helo(std::string_view name) {
  std::string data;
  put_cstring(data, name);
  return encode_packet(cmd::kHelo, data);
}

std::string encode_args(char command, const std::vector<std::string>& args) {
  std::string data;
  for (const std::string& a : args) put_cstring(data, a);
  return encode_packet(command, data);
}

std::string encode_macros(char for_command,
                          const std::vector<std::pair<std::string, std::string>>& macros) {
  std::string data(1, for_command);
  for (const auto& [name, value] : macros) {
    put_cstring(data, name);
    put_cstring(data, value);
  }
  return encode_packet(cmd::kMacro, data);
}

std::string encode_header(std::string_view name, std::string_view value) {
  std::string data;
  put_cstring(data, name);
  put_cstring(data, value);
  return encode_packet(cmd::kHeader, data);
}

std::string encode_simple(char command) { return encode_packet(command, {}); }

std::string encode_body(std::string_view chunk) {
  return encode_packet(cmd::kBody, chunk.substr(0, kMaxBodyChunk));
}

PacketReader::Status PacketReader::next(Packet* out) {
  if (failed_) return Status::kError;
  const std::string_view pending = std::string_view(buffer_).substr(start_);
  if (pending.size() < 4) return Status::kNeedMore;
  const std::uint32_t length = get_u32(pending);
  if (length == 0 || length > max_packet_) {
    failed_ = true;
    error_ = length == 0 ? "packet of length 0 (no command byte)"
                         : "packet of " + std::to_string(length) + " bytes exceeds the limit of " +
                               std::to_string(max_packet_);
    buffer_.clear();
    start_ = 0;
    return Status::kError;
  }
  if (pending.size() - 4 < length) return Status::kNeedMore;
  out->command = pending[4];
  out->data.assign(pending.substr(5, length - 1));
  start_ += 4 + static_cast<std::size_t>(length);
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  } else if (start_ > 65536 && start_ * 2 > buffer_.size()) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  return Status::kPacket;
}

std::string parse_reply_text(std::string_view text, int* code, std::string* enhanced,
                             std::string* rest) {
  // A libmilter multi-line reply: "550-5.7.1 first\r\n550 5.7.1 last"; every line must carry
  // the same code. The texts are joined with a space (the SDK reply is one line).
  int first_code = 0;
  std::string first_enhanced;
  std::string joined;
  std::size_t pos = 0;
  for (;;) {
    std::size_t eol = text.find("\r\n", pos);
    const bool last = eol == std::string_view::npos;
    std::string_view line = text.substr(pos, last ? std::string_view::npos : eol - pos);
    if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]))
      return "reply text does not start with a 3-digit code";
    const int c = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (c < 400 || c > 599) return "reply code " + std::to_string(c) + " is not 4xx or 5xx";
    if (first_code != 0 && c != first_code) return "multi-line reply with different codes";
    first_code = c;
    if (line.size() > 3 && line[3] != ' ' && line[3] != '-')
      return "reply code not followed by a space";
    if (line.size() > 3 && line[3] == '-' && last) return "multi-line reply without a last line";
    if (line.size() > 3 && line[3] == ' ' && !last) return "reply line after the last one";
    std::string_view body = line.size() > 4 ? line.substr(4) : std::string_view();
    const std::size_t sp = body.find(' ');
    const std::string_view word = body.substr(0, sp);
    if (enhanced_code(word, line[0])) {
      if (first_enhanced.empty()) first_enhanced.assign(word);
      body = sp == std::string_view::npos ? std::string_view() : body.substr(sp + 1);
    }
    for (char ch : body)
      if (ch == '\r' || ch == '\n' || ch == '\0') return "reply text holds a bare CR or LF";
    if (!body.empty()) {
      if (!joined.empty()) joined += ' ';
      joined.append(body);
    }
    if (last) break;
    pos = eol + 2;
  }
  *code = first_code;
  *enhanced = first_enhanced;
  *rest = joined;
  return "";
}

std::string strip_brackets(std::string_view address) {
  while (!address.empty() && (address.front() == ' ' || address.front() == '\t'))
    address.remove_prefix(1);
  while (!address.empty() && (address.back() == ' ' || address.back() == '\t'))
    address.remove_suffix(1);
  if (address.size() >= 2 && address.front() == '<' && address.back() == '>')
    address = address.substr(1, address.size() - 2);
  return std::string(address);
}

std::string decode_response(const Packet& packet, Response* out) {
  *out = Response{};
  Cursor c(packet.data);
  const auto no_data = [&](ResponseKind kind) -> std::string {
    out->kind = kind;
    return packet.data.empty()
               ? ""
               : std::string("unexpected data after response '") + packet.command + "'";
  };
  const auto strings = [&](ResponseKind kind, std::string* a, std::string* b,
                           bool b_optional) -> std::string {
    out->kind = kind;
    if (!c.cstring(a)) return std::string("response '") + packet.command + "' is truncated";
    if (b != nullptr && !(b_optional && c.at_end()) && !c.cstring(b))
      return std::string("response '") + packet.command + "' is truncated";
    if (!c.at_end()) return std::string("unexpected data after response '") + packet.command + "'";
    return "";
  };
  switch (packet.command) {
    case 'O': {
      out->kind = ResponseKind::kNegotiate;
      return decode_negotiation(c, &out->negotiation);
    }
    case 'c':
      return no_data(ResponseKind::kContinue);
    case 'a':
      return no_data(ResponseKind::kAccept);
    case 'd':
      return no_data(ResponseKind::kDiscard);
    case 'r':
      return no_data(ResponseKind::kReject);
    case 't':
      return no_data(ResponseKind::kTempFail);
    case 'p':
      return no_data(ResponseKind::kProgress);
    case 's':
      return no_data(ResponseKind::kSkip);
    case 'f':
      return no_data(ResponseKind::kConnFail);
    case '4':
      return no_data(ResponseKind::kShutdown);
    case 'y': {
      std::string text;
      if (std::string e = strings(ResponseKind::kReplyCode, &text, nullptr, false); !e.empty())
        return e;
      return parse_reply_text(text, &out->code, &out->enhanced, &out->text);
    }
    case 'h': {
      std::string e = strings(ResponseKind::kAddHeader, &out->name, &out->value, false);
      if (e.empty() && out->name.empty()) e = "header modification without a header name";
      return e;
    }
    case 'i':
    case 'm': {
      out->kind = packet.command == 'i' ? ResponseKind::kInsertHeader : ResponseKind::kChangeHeader;
      if (!c.u32(&out->index)) return std::string("response '") + packet.command + "' is truncated";
      if (!c.cstring(&out->name) || !c.cstring(&out->value))
        return std::string("response '") + packet.command + "' is truncated";
      if (!c.at_end())
        return std::string("unexpected data after response '") + packet.command + "'";
      if (out->name.empty()) return "header modification without a header name";
      if (out->kind == ResponseKind::kChangeHeader && out->index == 0) out->index = 1;
      return "";
    }
    case '+':
      return strings(ResponseKind::kAddRcpt, &out->address, nullptr, false);
    case '-':
      return strings(ResponseKind::kDeleteRcpt, &out->address, nullptr, false);
    case '2':
      return strings(ResponseKind::kAddRcptPar, &out->address, &out->args, true);
    case 'e':
      return strings(ResponseKind::kChangeFrom, &out->address, &out->args, true);
    case 'q':
      return strings(ResponseKind::kQuarantine, &out->value, nullptr, false);
    case 'b':
      out->kind = ResponseKind::kReplaceBody;
      out->value = packet.data;
      return "";
    default: {
      const unsigned char u = static_cast<unsigned char>(packet.command);
      return "unknown response command 0x" + std::string(1, "0123456789abcdef"[u >> 4]) +
             std::string(1, "0123456789abcdef"[u & 15]);
    }
  }
}

const char* response_name(ResponseKind kind) {
  switch (kind) {
    case ResponseKind::kNegotiate:
      return "OPTNEG";
    case ResponseKind::kContinue:
      return "CONTINUE";
    case ResponseKind::kAccept:
      return "ACCEPT";
    case ResponseKind::kDiscard:
      return "DISCARD";
    case ResponseKind::kReject:
      return "REJECT";
    case ResponseKind::kTempFail:
      return "TEMPFAIL";
    case ResponseKind::kReplyCode:
      return "REPLYCODE";
    case ResponseKind::kProgress:
      return "PROGRESS";
    case ResponseKind::kSkip:
      return "SKIP";
    case ResponseKind::kConnFail:
      return "CONN_FAIL";
    case ResponseKind::kShutdown:
      return "SHUTDOWN";
    case ResponseKind::kAddHeader:
      return "ADDHEADER";
    case ResponseKind::kInsertHeader:
      return "INSHEADER";
    case ResponseKind::kChangeHeader:
      return "CHGHEADER";
    case ResponseKind::kAddRcpt:
      return "ADDRCPT";
    case ResponseKind::kDeleteRcpt:
      return "DELRCPT";
    case ResponseKind::kAddRcptPar:
      return "ADDRCPT_PAR";
    case ResponseKind::kChangeFrom:
      return "CHGFROM";
    case ResponseKind::kReplaceBody:
      return "REPLBODY";
    case ResponseKind::kQuarantine:
      return "QUARANTINE";
  }
  return "?";
}

}  // namespace mailgate::milter_client
