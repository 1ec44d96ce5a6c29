// relay/smtp_client_codec.cc — see smtp_client_codec.h. Pure functions: no I/O, no logging.
#include "relay/smtp_client_codec.h"

#include <algorithm>
#include <charconv>

#include "util/ascii.h"

namespace mailgate::relay {
namespace {

constexpr std::string_view kUnavailable = "[UNAVAILABLE]";

char ascii_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_upper(c);
  return out;
}

bool listed(const std::vector<std::string>& list, std::string_view attr) {
  return std::any_of(list.begin(), list.end(),
                     [&](const std::string& s) { return iequals(s, attr); });
}

// Splits on spaces and tabs, dropping empty words.
std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

struct Attribute {
  std::string_view name;
  std::string value;  // already encoded for the wire
};

// "unknown" is how the server side spells an unverified client name (Postfix convention).
std::string name_value(std::string_view name) {
  if (name.empty() || iequals(name, "unknown")) return std::string(kUnavailable);
  return xtext_encode(name);
}

std::string addr_value(std::string_view addr) {
  if (addr.empty()) return std::string(kUnavailable);
  if (addr.find(':') != std::string_view::npos) return xtext_encode("IPV6:" + std::string(addr));
  return xtext_encode(addr);
}

std::string text_value(std::string_view text) {
  return text.empty() ? std::string(kUnavailable) : xtext_encode(text);
}

std::string port_value(uint16_t port) {
  return port == 0 ? std::string(kUnavailable) : std::to_string(port);
}

std::string proto_value(const ClientInfo& client) { return client.esmtp ? "ESMTP" : "SMTP"; }

// Packs "VERB a=1 b=2 ..." lines of at most max_octets - 2 characters (room for CRLF), in
// attribute order. A value that cannot fit even alone becomes [UNAVAILABLE].
std::vector<std::string> pack(std::string_view verb, std::vector<Attribute> attrs,
                              size_t max_octets) {
  std::vector<std::string> out;
  const size_t limit = max_octets > 2 ? max_octets - 2 : 0;
  std::string line(verb);
  for (Attribute& attr : attrs) {
    if (verb.size() + 2 + attr.name.size() + attr.value.size() > limit) {
      attr.value = std::string(kUnavailable);
    }
    size_t piece = 2 + attr.name.size() + attr.value.size();
    if (line.size() > verb.size() && line.size() + piece > limit) {
      out.push_back(std::move(line));
      line.assign(verb);
    }
    line.push_back(' ');
    line.append(attr.name);
    line.push_back('=');
    line.append(attr.value);
  }
  if (line.size() > verb.size()) out.push_back(std::move(line));
  return out;
}

}  // namespace

// --- ReplyParser -------------------------------------------------------------------------

ReplyParser::Status ReplyParser::fail(std::string message) {
  error_ = std::move(message);
  return Status::kError;
}

void ReplyParser::reset() {
  reply_ = smtp::Reply{};
  done_ = false;
  error_.clear();
}

smtp::Reply ReplyParser::take_reply() {
  smtp::Reply out = std::move(reply_);
  reset();
  return out;
}

ReplyParser::Status ReplyParser::parse(std::string_view input, size_t* consumed) {
  *consumed = 0;
  if (!error_.empty()) return Status::kError;
  if (done_) return Status::kComplete;
  size_t pos = 0;
  while (true) {
    size_t lf = input.find('\n', pos);
    if (lf == std::string_view::npos) {
      if (input.size() - pos >= limits_.max_line) return fail("reply line too long");
      *consumed = pos;
      return Status::kNeedMore;
    }
    if (lf + 1 - pos > limits_.max_line) return fail("reply line too long");
    std::string_view line = input.substr(pos, lf - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = lf + 1;

    if (line.size() < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
        line[2] < '0' || line[2] > '9') {
      return fail("malformed reply line (no reply code)");
    }
    char separator = line.size() > 3 ? line[3] : ' ';
    if (separator != ' ' && separator != '-') return fail("malformed reply line (bad separator)");
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (!reply_.lines.empty() && code != reply_.code) {
      return fail("reply code changes within a multi-line reply");
    }
    if (reply_.lines.size() >= limits_.max_lines) return fail("too many reply lines");
    std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view{};
    if (text.find('\0') != std::string_view::npos || text.find('\r') != std::string_view::npos) {
      return fail("NUL or bare CR in reply text");
    }
    reply_.code = code;
    reply_.lines.emplace_back(text);
    if (separator == ' ') {
      done_ = true;
      *consumed = pos;
      return Status::kComplete;
    }
  }
}

// --- Capabilities ------------------------------------------------------------------------

bool Capabilities::xclient_offers(std::string_view attr) const {
  return xclient && listed(xclient_attrs, attr);
}

bool Capabilities::xforward_offers(std::string_view attr) const {
  return xforward && listed(xforward_attrs, attr);
}

bool Capabilities::auth_offers(std::string_view mechanism) const {
  return auth && listed(auth_mechanisms, mechanism);
}

Capabilities parse_ehlo_reply(const smtp::Reply& reply) {
  Capabilities caps;
  caps.esmtp = reply.positive();
  for (size_t i = 1; i < reply.lines.size(); ++i) {
    std::vector<std::string_view> w = words(reply.lines[i]);
    if (w.empty()) continue;
    std::string keyword = upper(w[0]);
    if (keyword == "PIPELINING") {
      caps.pipelining = true;
    } else if (keyword == "SIZE") {
      caps.size = true;
      caps.size_limit = 0;
      if (w.size() > 1) {
        uint64_t n = 0;
        auto [end, ec] = std::from_chars(w[1].data(), w[1].data() + w[1].size(), n);
        if (ec == std::errc() && end == w[1].data() + w[1].size()) caps.size_limit = n;
      }
    } else if (keyword == "8BITMIME") {
      caps.eightbitmime = true;
    } else if (keyword == "SMTPUTF8") {
      caps.smtputf8 = true;
    } else if (keyword == "STARTTLS") {
      caps.starttls = true;
    } else if (keyword == "ENHANCEDSTATUSCODES") {
      caps.enhanced_status_codes = true;
    } else if (keyword == "CHUNKING") {
      caps.chunking = true;
    } else if (keyword == "DSN") {
      caps.dsn = true;
    } else if (keyword == "AUTH") {
      caps.auth = true;
      for (size_t k = 1; k < w.size(); ++k) caps.auth_mechanisms.push_back(upper(w[k]));
    } else if (keyword == "XCLIENT" || keyword == "XFORWARD") {
      std::vector<std::string> attrs;
      for (size_t k = 1; k < w.size(); ++k) attrs.push_back(upper(w[k]));
      if (keyword == "XCLIENT") {
        caps.xclient = true;
        caps.xclient_attrs = std::move(attrs);
      } else {
        caps.xforward = true;
        caps.xforward_attrs = std::move(attrs);
      }
    }
  }
  return caps;
}

// --- xtext and command lines -------------------------------------------------------------

std::string xtext_encode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 33 || c > 126 || c == '+' || c == '=') {
      out.push_back('+');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0x0f]);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

std::vector<std::string> build_xclient_commands(const ClientInfo& client,
                                                const std::vector<std::string>& offered,
                                                size_t max_octets) {
  // Identity-changing attributes last: see the header.
  std::vector<Attribute> attrs;
  if (listed(offered, "PROTO")) attrs.push_back({"PROTO", proto_value(client)});
  if (listed(offered, "HELO")) attrs.push_back({"HELO", text_value(client.helo)});
  if (listed(offered, "LOGIN")) attrs.push_back({"LOGIN", text_value(client.login)});
  if (listed(offered, "PORT")) attrs.push_back({"PORT", port_value(client.port)});
  if (listed(offered, "NAME")) attrs.push_back({"NAME", name_value(client.name)});
  if (listed(offered, "ADDR")) attrs.push_back({"ADDR", addr_value(client.addr)});
  return pack("XCLIENT", std::move(attrs), max_octets);
}

std::vector<std::string> build_xforward_commands(const ClientInfo& client,
                                                 const std::vector<std::string>& offered,
                                                 size_t max_octets) {
  std::vector<Attribute> attrs;
  if (listed(offered, "NAME")) attrs.push_back({"NAME", name_value(client.name)});
  if (listed(offered, "ADDR")) attrs.push_back({"ADDR", addr_value(client.addr)});
  if (listed(offered, "PORT")) attrs.push_back({"PORT", port_value(client.port)});
  if (listed(offered, "PROTO")) attrs.push_back({"PROTO", proto_value(client)});
  if (listed(offered, "HELO")) attrs.push_back({"HELO", text_value(client.helo)});
  if (listed(offered, "SOURCE")) attrs.push_back({"SOURCE", "REMOTE"});
  return pack("XFORWARD", std::move(attrs), max_octets);
}

Expected<std::string, smtp::Reply> build_mail_command(const smtp::MailArgs& mail,
                                                      const Capabilities& caps) {
  bool needs_utf8 = mail.smtputf8 || mail.reverse_path.utf8;
  if (needs_utf8 && !caps.smtputf8) {
    return unexpected(smtp::Reply::make(553, "5.6.7",
                                        "Backend does not support SMTPUTF8; "
                                        "internationalized address not accepted"));
  }
  if (mail.body == smtp::BodyType::kBinaryMime) {
    return unexpected(smtp::Reply::make(555, "5.5.4", "BODY=BINARYMIME not supported"));
  }
  std::string line = "MAIL FROM:<";
  line.append(mail.reverse_path.address);
  line.push_back('>');
  if (caps.size && mail.size) {
    line.append(" SIZE=");
    line.append(std::to_string(*mail.size));
  }
  if (caps.eightbitmime) {
    if (mail.body == smtp::BodyType::k8BitMime) line.append(" BODY=8BITMIME");
    if (mail.body == smtp::BodyType::k7Bit) line.append(" BODY=7BIT");
  }
  if (needs_utf8) line.append(" SMTPUTF8");
  return line;
}

std::string build_rcpt_command(std::string_view address) {
  std::string line = "RCPT TO:<";
  line.append(address);
  line.push_back('>');
  return line;
}

bool usable_helo_argument(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c >= 33 && c <= 126;
  });
}

bool same_client(const ClientInfo& a, const ClientInfo& b) {
  return a.addr == b.addr && a.port == b.port && a.name == b.name && a.helo == b.helo &&
         a.esmtp == b.esmtp && a.login == b.login;
}

// --- DotStuffer --------------------------------------------------------------------------

void DotStuffer::feed(std::string_view chunk, std::string& out) {
  if (chunk.empty()) return;
  out.reserve(out.size() + chunk.size() + 16);
  size_t pos = 0;
  while (pos < chunk.size()) {
    if (at_line_start_ && chunk[pos] == '.') out.push_back('.');
    size_t lf = chunk.find('\n', pos);
    size_t end = lf == std::string_view::npos ? chunk.size() : lf + 1;
    out.append(chunk.substr(pos, end - pos));
    at_line_start_ = lf != std::string_view::npos;
    pos = end;
  }
  empty_ = false;
  before_last_ = chunk.size() >= 2 ? chunk[chunk.size() - 2] : last_;
  last_ = chunk.back();
}

void DotStuffer::finish(std::string& out) {
  if (!empty_ && !(before_last_ == '\r' && last_ == '\n')) out.append("\r\n");
  out.append(".\r\n");
  *this = DotStuffer{};
}

}  // namespace mailgate::relay
