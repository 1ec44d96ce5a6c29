// milter_packet_fuzz.cc — the milter client's packet reader and response decoder
// (plugins/milter/protocol.h) on arbitrary bytes: what a broken or hostile milter may send.
// Properties: no crash and no read outside the packet (ASan in the libFuzzer build); every
// packet read is within the size limit and re-encodes to exactly the bytes it was read from,
// so the packets returned are a prefix of the input; a declared length of 0 or over the limit
// is an error and nothing is read after it; the outcome does not depend on how the bytes were
// split; a decoded response keeps its promises (reply codes 4xx/5xx with one-line text,
// header modifications with a name, macro lists for known stages only).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "protocol.h"

namespace {

using mailgate::milter_client::decode_response;
using mailgate::milter_client::encode_packet;
using mailgate::milter_client::Packet;
using mailgate::milter_client::PacketReader;
using mailgate::milter_client::Response;
using mailgate::milter_client::ResponseKind;

struct Outcome {
  std::vector<Packet> packets;
  bool error = false;
};

Outcome run(std::string_view input, std::size_t piece, std::uint32_t limit) {
  PacketReader reader(limit);
  Outcome out;
  std::size_t fed = 0;
  for (;;) {
    const std::size_t n = std::min(piece, input.size() - fed);
    reader.feed(input.substr(fed, n));
    fed += n;
    for (;;) {
      Packet p;
      const PacketReader::Status st = reader.next(&p);
      if (st == PacketReader::Status::kPacket) {
        out.packets.push_back(std::move(p));
        continue;
      }
      if (st == PacketReader::Status::kError) {
        FUZZ_CHECK(!reader.error().empty());
        // Nothing after an error: the reader stays failed.
        Packet again;
        FUZZ_CHECK(reader.next(&again) == PacketReader::Status::kError);
        out.error = true;
        return out;
      }
      break;
    }
    if (fed == input.size()) return out;
  }
}

std::uint32_t be32(std::string_view b) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(b[0])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[3]));
}

void check_framing(std::string_view input, const Outcome& o, std::uint32_t limit) {
  std::string rebuilt;
  for (const Packet& p : o.packets) {
    FUZZ_CHECK(p.data.size() + 1 <= limit);
    rebuilt += encode_packet(p.command, p.data);
  }
  FUZZ_CHECK(rebuilt.size() <= input.size());
  FUZZ_CHECK(input.substr(0, rebuilt.size()) == rebuilt);
  // What follows the last packet is either too short for a packet, or a packet whose
  // declared length is refused (exactly then the reader reports an error).
  const std::string_view rest = input.substr(rebuilt.size());
  if (rest.size() >= 4) {
    const std::uint32_t len = be32(rest);
    const bool refused = len == 0 || len > limit;
    FUZZ_CHECK(o.error == refused);
    if (!refused) FUZZ_CHECK(rest.size() - 4 < len);
  } else {
    FUZZ_CHECK(!o.error);
  }
}

void check_response(const Packet& p) {
  Response r;
  const std::string error = decode_response(p, &r);
  if (!error.empty()) return;
  switch (r.kind) {
    case ResponseKind::kReplyCode:
      FUZZ_CHECK(r.code >= 400 && r.code <= 599);
      for (char c : r.text) FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
      FUZZ_CHECK(r.enhanced.empty() || r.enhanced[0] == static_cast<char>('0' + r.code / 100));
      break;
    case ResponseKind::kAddHeader:
    case ResponseKind::kInsertHeader:
    case ResponseKind::kChangeHeader:
      FUZZ_CHECK(r.name.find('\0') == std::string::npos);
      FUZZ_CHECK(r.value.find('\0') == std::string::npos);
      FUZZ_CHECK(!r.name.empty());
      if (r.kind == ResponseKind::kChangeHeader) FUZZ_CHECK(r.index >= 1);
      FUZZ_CHECK(r.name.size() + r.value.size() <= p.data.size());
      break;
    case ResponseKind::kNegotiate:
      FUZZ_CHECK(p.data.size() >= 12);
      break;
    case ResponseKind::kContinue:
    case ResponseKind::kAccept:
    case ResponseKind::kDiscard:
    case ResponseKind::kReject:
    case ResponseKind::kTempFail:
    case ResponseKind::kProgress:
    case ResponseKind::kSkip:
    case ResponseKind::kConnFail:
    case ResponseKind::kShutdown:
      FUZZ_CHECK(p.data.empty());
      break;
    case ResponseKind::kAddRcpt:
    case ResponseKind::kDeleteRcpt:
    case ResponseKind::kAddRcptPar:
    case ResponseKind::kChangeFrom:
      FUZZ_CHECK(r.address.find('\0') == std::string::npos);
      FUZZ_CHECK(r.address.size() + r.args.size() < p.data.size());
      break;
    case ResponseKind::kReplaceBody:
      FUZZ_CHECK(r.value == p.data);
      break;
    case ResponseKind::kQuarantine:
      FUZZ_CHECK(r.value.size() < p.data.size());
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // The real limit, and a small one so that the refusal path is reached by short inputs.
  for (std::uint32_t limit : {mailgate::milter_client::kMaxPacket, std::uint32_t{64}}) {
    const Outcome whole = run(input, input.size() + 1, limit);
    check_framing(input, whole, limit);
    for (const Packet& p : whole.packets) check_response(p);
    for (std::size_t piece : {std::size_t{1}, std::size_t{5}}) {
      const Outcome split = run(input, piece, limit);
      FUZZ_CHECK(split.error == whole.error);
      FUZZ_CHECK(split.packets.size() == whole.packets.size());
      for (std::size_t i = 0; i < split.packets.size(); ++i) {
        FUZZ_CHECK(split.packets[i].command == whole.packets[i].command);
        FUZZ_CHECK(split.packets[i].data == whole.packets[i].data);
      }
    }
  }
  return 0;
}
