// plugins/milter/protocol.h — the milter wire protocol (version 6) as the MTA side speaks it:
// packet framing, encoders for the commands an MTA sends, and a strict decoder for the
// responses a milter sends back.
//
// Owns: the byte layout of packets (4-byte big-endian length covering the command byte and
// the data, then the command byte, then the data), the command, response, action and
// protocol-flag constants (values as libmilter's mfdef.h/mfapi.h define them), and the checks
// that a response is well formed (NUL-terminated strings inside the packet, 4-byte integers
// present, reply codes 4xx/5xx).
// Must not touch: sockets, time, or the plugin SDK (connection.h does I/O, client.h the
// conversation, milter.cc the stage mapping). Pure functions and one incremental reader:
// no exceptions, no allocation beyond the packets themselves; safe on any bytes (a fuzz
// target, tests/fuzz/milter_packet_fuzz.cc, holds it to that).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailgate::milter_client {

inline constexpr std::uint32_t kProtocolVersion = 6;
// The largest packet (command byte + data) accepted from a milter. libmilter sends at most
// 64 KiB of data per packet by default and 1 MiB when built with MILTER_MDS_1M.
inline constexpr std::uint32_t kMaxPacket = 1024 * 1024 + 1;
// The largest body chunk sent in one 'B' packet (libmilter's default MILTER_MAX_DATA_SIZE).
inline constexpr std::size_t kMaxBodyChunk = 65535;

// Commands (MTA → milter).
namespace cmd {
inline constexpr char kAbort = 'A';
inline constexpr char kBody = 'B';
inline constexpr char kConnect = 'C';
inline constexpr char kMacro = 'D';
inline constexpr char kEndOfBody = 'E';
inline constexpr char kHelo = 'H';
inline constexpr char kHeader = 'L';
inline constexpr char kMail = 'M';
inline constexpr char kEndOfHeader = 'N';
inline constexpr char kOptNeg = 'O';
inline constexpr char kQuit = 'Q';
inline constexpr char kRcpt = 'R';
inline constexpr char kData = 'T';
}  // namespace cmd

// Protocol flags (SMFIP_*): what the milter asks the MTA not to send, or not to wait for.
namespace proto {
inline constexpr std::uint32_t kNoConnect = 0x1;
inline constexpr std::uint32_t kNoHelo = 0x2;
inline constexpr std::uint32_t kNoMail = 0x4;
inline constexpr std::uint32_t kNoRcpt = 0x8;
inline constexpr std::uint32_t kNoBody = 0x10;
inline constexpr std::uint32_t kNoHeaders = 0x20;
inline constexpr std::uint32_t kNoEoh = 0x40;
inline constexpr std::uint32_t kNrHeader = 0x80;
inline constexpr std::uint32_t kNoUnknown = 0x100;
inline constexpr std::uint32_t kNoData = 0x200;
inline constexpr std::uint32_t kSkip = 0x400;  // the MTA understands the 's' response
inline constexpr std::uint32_t kNrConnect = 0x1000;
inline constexpr std::uint32_t kNrHelo = 0x2000;
inline constexpr std::uint32_t kNrMail = 0x4000;
inline constexpr std::uint32_t kNrRcpt = 0x8000;
inline constexpr std::uint32_t kNrData = 0x10000;
inline constexpr std::uint32_t kNrUnknown = 0x20000;
inline constexpr std::uint32_t kNrEoh = 0x40000;
inline constexpr std::uint32_t kNrBody = 0x80000;
inline constexpr std::uint32_t kHeaderLeadingSpace = 0x100000;
// What this client offers: every "don't send" and "no reply" flag, skip, and header values
// with their leading white space (HDR_LEADSPC). Not offered: sending rejected recipients
// (RCPT_REJ).
inline constexpr std::uint32_t kOffered =
    kNoConnect | kNoHelo | kNoMail | kNoRcpt | kNoBody | kNoHeaders | kNoEoh | kNrHeader |
    kNoUnknown | kNoData | kSkip | kNrConnect | kNrHelo | kNrMail | kNrRcpt | kNrData | kNrUnknown |
    kNrEoh | kNrBody | kHeaderLeadingSpace;
// Flags libmilter sets to announce its packet size (MDS_256K, MDS_1M) or keeps for itself:
// ignored in a milter's answer.
inline constexpr std::uint32_t kInternal = 0x70000000;
}  // namespace proto

// Actions (SMFIF_*): the modifications a milter may make at end of body.
namespace act {
inline constexpr std::uint32_t kAddHeaders = 0x1;
inline constexpr std::uint32_t kChangeBody = 0x2;
inline constexpr std::uint32_t kAddRcpt = 0x4;
inline constexpr std::uint32_t kDeleteRcpt = 0x8;
inline constexpr std::uint32_t kChangeHeaders = 0x10;
inline constexpr std::uint32_t kQuarantine = 0x20;
inline constexpr std::uint32_t kChangeFrom = 0x40;
inline constexpr std::uint32_t kAddRcptPar = 0x80;
inline constexpr std::uint32_t kSetSymList = 0x100;
// What this client can apply through the plugin SDK of a host older than ABI 1.3: body
// replacement and quarantine need its body_replace and quarantine services, so they are not
// offered there (a milter that needs them refuses the negotiation).
inline constexpr std::uint32_t kOffered =
    kAddHeaders | kAddRcpt | kDeleteRcpt | kChangeHeaders | kChangeFrom | kAddRcptPar | kSetSymList;
// What it offers on a host of ABI 1.3 or later.
inline constexpr std::uint32_t kOfferedWithBody = kOffered | kChangeBody | kQuarantine;
}  // namespace act

// Macro stages of a milter's symbol list (SMFIM_*), the index into Negotiation::macros.
enum class MacroStage : int {
  kConnect = 0,
  kHelo = 1,
  kMail = 2,
  kRcpt = 3,
  kData = 4,
  kEndOfMessage = 5,
  kEndOfHeader = 6,
  kCount = 7
};

// ---- encoding (MTA → milter) -------------------------------------------------------------

// One packet: length, command byte, data.
std::string encode_packet(char command, std::string_view data);
std::string encode_optneg(std::uint32_t version, std::uint32_t actions, std::uint32_t protocol);
// family: '4', '6', 'L' (unix) or 'U' (unknown: no port and no address follow).
std::string encode_connect(std::string_view hostname, char family, std::uint16_t port,
                           std::string_view address);
std::string encode_helo(std::string_view name);
// MAIL and RCPT: the address in <> first, then the ESMTP parameters, each NUL-terminated.
std::string encode_args(char command, const std::vector<std::string>& args);
// 'D' for the command `for_command` with name/value pairs ("{client_addr}" style names).
std::string encode_macros(char for_command,
                          const std::vector<std::pair<std::string, std::string>>& macros);
std::string encode_header(std::string_view name, std::string_view value);
// The commands without data: EOH, EOB, ABORT, QUIT, DATA.
std::string encode_simple(char command);
// 'B' with one chunk of at most kMaxBodyChunk bytes.
std::string encode_body(std::string_view chunk);

// ---- framing (milter → MTA) --------------------------------------------------------------

struct Packet {
  char command = 0;
  std::string data;
};

// Reads packets from a byte stream fed in pieces of any size. After an error it stays in
// error and reads nothing more (the connection is to be closed).
class PacketReader {
 public:
  enum class Status {
    kNeedMore,  // no complete packet yet
    kPacket,    // *out holds the next packet
    kError,     // error() says what: length 0 or over the limit
  };
  explicit PacketReader(std::uint32_t max_packet = kMaxPacket) : max_packet_(max_packet) {}

  void feed(std::string_view bytes) {
    if (!failed_) buffer_.append(bytes);
  }
  Status next(Packet* out);
  const std::string& error() const noexcept { return error_; }
  // Bytes fed but not yet returned in a packet.
  std::size_t buffered() const noexcept { return buffer_.size() - start_; }

 private:
  std::uint32_t max_packet_;
  std::string buffer_;
  std::size_t start_ = 0;
  bool failed_ = false;
  std::string error_;
};

// ---- decoding (milter → MTA) -------------------------------------------------------------

// Everything a milter may answer, by kind. Fields not used by a kind stay empty.
enum class ResponseKind {
  kNegotiate,     // 'O': version, actions, protocol, optional macro lists
  kContinue,      // 'c'
  kAccept,        // 'a'
  kDiscard,       // 'd'
  kReject,        // 'r'
  kTempFail,      // 't'
  kReplyCode,     // 'y': code, enhanced, text
  kProgress,      // 'p': still working, wait on
  kSkip,          // 's': send no more body
  kConnFail,      // 'f': drop the connection (treated as tempfail)
  kShutdown,      // '4': 421 and close
  kAddHeader,     // 'h': name, value
  kInsertHeader,  // 'i': index, name, value
  kChangeHeader,  // 'm': index (1-based occurrence; 0 read as 1), name, value ("" deletes)
  kAddRcpt,       // '+': address
  kDeleteRcpt,    // '-': address
  kAddRcptPar,    // '2': address, args
  kChangeFrom,    // 'e': address, args
  kReplaceBody,   // 'b': value holds the chunk
  kQuarantine,    // 'q': value holds the reason
};

struct Negotiation {
  std::uint32_t version = 0;
  std::uint32_t actions = 0;
  std::uint32_t protocol = 0;
  // Macro names the milter asked for per stage (SMFIR_SETSYMLIST); where has_macros is false
  // the milter gave no list and gets the client's default macros.
  bool has_macros[static_cast<int>(MacroStage::kCount)] = {};
  std::vector<std::string> macros[static_cast<int>(MacroStage::kCount)];
};

struct Response {
  ResponseKind kind = ResponseKind::kContinue;
  Negotiation negotiation;  // kNegotiate
  int code = 0;             // kReplyCode: 400..599
  std::string enhanced;     // kReplyCode: "5.7.1" or ""
  std::string text;         // kReplyCode: the text after code (and enhanced code), one line
  std::uint32_t index = 0;  // kInsertHeader, kChangeHeader
  std::string name;         // header name
  std::string value;        // header value, body chunk, quarantine reason
  std::string address;      // recipient or sender, as the milter wrote it (may carry <>)
  std::string args;         // ESMTP parameters of kAddRcptPar / kChangeFrom ("" when none)
};

// Decodes one packet; returns "" on success, else what is wrong (for the log).
std::string decode_response(const Packet& packet, Response* out);

// A 'y' reply's text, "550 5.7.1 go away": code 4xx/5xx, then an optional enhanced code of
// the same class, then text. A multi-line reply ("550-5.7.1 first\r\n550 5.7.1 last") must
// keep one code; its texts are joined with a space. Returns "" on success, else what is wrong.
std::string parse_reply_text(std::string_view text, int* code, std::string* enhanced,
                             std::string* rest);

// An address as a milter writes it ("<a@b>", "a@b", "<>"), without the brackets.
std::string strip_brackets(std::string_view address);

// "CONTINUE"-style name of a response kind, for logs.
const char* response_name(ResponseKind kind);

}  // namespace mailgate::milter_client
