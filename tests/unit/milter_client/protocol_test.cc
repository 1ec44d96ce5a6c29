// Tests of plugins/milter/protocol.h: the commands' exact bytes (written out by hand from the
// protocol's layout, not with the encoder), every response's decoding, and the framing limits.
#include "milter/protocol.h"

#include <gtest/gtest.h>

#include <string>

namespace mailgate::milter_client {
namespace {

using namespace std::string_literals;

std::string be32(std::uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>((v >> 16) & 0xff),
                     static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
}

std::string pkt(char command, const std::string& data) {
  return be32(static_cast<std::uint32_t>(data.size() + 1)) + command + data;
}

Response decode_ok(char command, const std::string& data) {
  Response r;
  const std::string e = decode_response(Packet{command, data}, &r);
  EXPECT_EQ(e, "") << "response '" << command << "'";
  return r;
}

std::string decode_error(char command, const std::string& data) {
  Response r;
  return decode_response(Packet{command, data}, &r);
}

TEST(MilterProtocol, CommandsHaveTheWireLayout) {
  EXPECT_EQ(encode_optneg(6, 0x1ff, 0x1fff), "\x00\x00\x00\x0d"s + "O" + "\x00\x00\x00\x06"s +
                                                 "\x00\x00\x01\xff"s + "\x00\x00\x1f\xff"s);
  EXPECT_EQ(encode_connect("mail.example.org", '4', 25, "192.0.2.1"),
            pkt('C', "mail.example.org\0"s + "4" + "\x00\x19"s + "192.0.2.1\0"s));
  EXPECT_EQ(encode_connect("[192.0.2.1]", 'U', 0, ""), pkt('C', "[192.0.2.1]\0U"s));
  EXPECT_EQ(encode_helo("client.example"), pkt('H', "client.example\0"s));
  EXPECT_EQ(encode_args('M', {"<a@example.org>", "SIZE=100"}),
            pkt('M', "<a@example.org>\0SIZE=100\0"s));
  EXPECT_EQ(encode_macros('C', {{"j", "mx.test"}, {"{client_addr}", "192.0.2.1"}}),
            pkt('D', "Cj\0mx.test\0{client_addr}\0"s + "192.0.2.1\0"s));
  EXPECT_EQ(encode_header("Subject", "hi\n\tthere"), pkt('L', "Subject\0hi\n\tthere\0"s));
  EXPECT_EQ(encode_simple('E'), "\x00\x00\x00\x01"s + "E");
  EXPECT_EQ(encode_body("line\r\n"), pkt('B', "line\r\n"));
  // A NUL inside a string would end the field early on the other side: it is cut there.
  EXPECT_EQ(encode_helo("a\0b"s), pkt('H', "a\0"s));
}

TEST(MilterProtocol, BodyChunksAreBounded) {
  const std::string big(kMaxBodyChunk + 10, 'x');
  EXPECT_EQ(encode_body(big).size(), 4 + 1 + kMaxBodyChunk);
}

TEST(MilterProtocol, DecodesNegotiationWithMacroLists) {
  const Response r = decode_ok(
      'O', be32(6) + be32(0x101) + be32(0x80) + be32(0) + "j {client_addr}\0"s + be32(5) + "i\0"s);
  ASSERT_EQ(r.kind, ResponseKind::kNegotiate);
  EXPECT_EQ(r.negotiation.version, 6u);
  EXPECT_EQ(r.negotiation.actions, 0x101u);
  EXPECT_EQ(r.negotiation.protocol, 0x80u);
  EXPECT_TRUE(r.negotiation.has_macros[0]);
  EXPECT_EQ(r.negotiation.macros[0], (std::vector<std::string>{"j", "{client_addr}"}));
  EXPECT_TRUE(r.negotiation.has_macros[5]);
  EXPECT_FALSE(r.negotiation.has_macros[1]);
  EXPECT_NE(decode_error('O', be32(6) + be32(0)), "");
  EXPECT_NE(decode_error('O', be32(6) + be32(0) + be32(0) + be32(7) + "j\0"s), "");
  EXPECT_NE(decode_error('O', be32(6) + be32(0) + be32(0) + be32(1) + "j"), "");
}

TEST(MilterProtocol, DecodesDecisions) {
  EXPECT_EQ(decode_ok('c', "").kind, ResponseKind::kContinue);
  EXPECT_EQ(decode_ok('a', "").kind, ResponseKind::kAccept);
  EXPECT_EQ(decode_ok('d', "").kind, ResponseKind::kDiscard);
  EXPECT_EQ(decode_ok('r', "").kind, ResponseKind::kReject);
  EXPECT_EQ(decode_ok('t', "").kind, ResponseKind::kTempFail);
  EXPECT_EQ(decode_ok('p', "").kind, ResponseKind::kProgress);
  EXPECT_EQ(decode_ok('s', "").kind, ResponseKind::kSkip);
  EXPECT_EQ(decode_ok('f', "").kind, ResponseKind::kConnFail);
  EXPECT_EQ(decode_ok('4', "").kind, ResponseKind::kShutdown);
  EXPECT_NE(decode_error('c', "junk"), "");
  EXPECT_EQ(decode_error('Z', ""), "unknown response command 0x5a");
}

TEST(MilterProtocol, DecodesReplyCodes) {
  Response r = decode_ok('y', "550 5.7.1 Message refused\0"s);
  EXPECT_EQ(r.kind, ResponseKind::kReplyCode);
  EXPECT_EQ(r.code, 550);
  EXPECT_EQ(r.enhanced, "5.7.1");
  EXPECT_EQ(r.text, "Message refused");
  r = decode_ok('y', "451 try later\0"s);
  EXPECT_EQ(r.code, 451);
  EXPECT_EQ(r.enhanced, "");
  EXPECT_EQ(r.text, "try later");
  r = decode_ok('y', "554-5.7.1 first line\r\n554 5.7.1 second line\0"s);
  EXPECT_EQ(r.code, 554);
  EXPECT_EQ(r.text, "first line second line");
  // An enhanced code of the wrong class is text.
  r = decode_ok('y', "550 4.7.1 odd\0"s);
  EXPECT_EQ(r.enhanced, "");
  EXPECT_EQ(r.text, "4.7.1 odd");
  EXPECT_NE(decode_error('y', "250 fine\0"s), "");
  EXPECT_NE(decode_error('y', "55\0"s), "");
  EXPECT_NE(decode_error('y', "550 no terminator"), "");
  EXPECT_NE(decode_error('y', "550 a\nb\0"s), "");
  EXPECT_NE(decode_error('y', "550-only continuation\0"s), "");
  EXPECT_NE(decode_error('y', "550-a\r\n451 b\0"s), "");
  EXPECT_NE(decode_error('y', "550x\0"s), "");
}

TEST(MilterProtocol, DecodesModifications) {
  Response r = decode_ok('h', "X-Scanned\0yes\0"s);
  EXPECT_EQ(r.kind, ResponseKind::kAddHeader);
  EXPECT_EQ(r.name, "X-Scanned");
  EXPECT_EQ(r.value, "yes");
  r = decode_ok('i', be32(2) + "DKIM-Signature\0v=1;\n\tb=x\0"s);
  EXPECT_EQ(r.kind, ResponseKind::kInsertHeader);
  EXPECT_EQ(r.index, 2u);
  EXPECT_EQ(r.value, "v=1;\n\tb=x");
  r = decode_ok('m', be32(0) + "Subject\0\0"s);
  EXPECT_EQ(r.kind, ResponseKind::kChangeHeader);
  EXPECT_EQ(r.index, 1u);  // 0 means the first occurrence
  EXPECT_EQ(r.value, "");
  r = decode_ok('+', "<new@example.org>\0"s);
  EXPECT_EQ(r.kind, ResponseKind::kAddRcpt);
  EXPECT_EQ(strip_brackets(r.address), "new@example.org");
  r = decode_ok('2', "<new@example.org>\0NOTIFY=NEVER\0"s);
  EXPECT_EQ(r.kind, ResponseKind::kAddRcptPar);
  EXPECT_EQ(r.args, "NOTIFY=NEVER");
  r = decode_ok('e', "<s@example.org>\0"s);
  EXPECT_EQ(r.kind, ResponseKind::kChangeFrom);
  EXPECT_EQ(r.args, "");
  EXPECT_EQ(decode_ok('-', "old@example.org\0"s).kind, ResponseKind::kDeleteRcpt);
  EXPECT_EQ(decode_ok('b', "body\r\n").value, "body\r\n");
  EXPECT_EQ(decode_ok('q', "why\0"s).value, "why");

  EXPECT_NE(decode_error('h', "X-Scanned\0yes"s), "");       // value not terminated
  EXPECT_NE(decode_error('h', "\0yes\0"s), "");              // no name
  EXPECT_NE(decode_error('h', "A\0b\0extra"s), "");          // trailing bytes
  EXPECT_NE(decode_error('i', "\0\0"s), "");                 // index cut short
  EXPECT_NE(decode_error('m', be32(1) + "Subject\0"s), "");  // no value
  EXPECT_NE(decode_error('+', "no terminator"), "");
  EXPECT_NE(decode_error('e', "<a>\0b\0c\0"s), "");
}

TEST(MilterProtocol, StripsBrackets) {
  EXPECT_EQ(strip_brackets("<a@b>"), "a@b");
  EXPECT_EQ(strip_brackets(" a@b "), "a@b");
  EXPECT_EQ(strip_brackets("<>"), "");
}

TEST(MilterPacketReader, ReadsPacketsSplitAnywhere) {
  const std::string stream = pkt('h', "A\0b\0"s) + pkt('c', "") + pkt('y', "550 no\0"s);
  for (std::size_t piece = 1; piece <= stream.size(); ++piece) {
    PacketReader reader;
    std::vector<Packet> got;
    for (std::size_t i = 0; i < stream.size(); i += piece) {
      reader.feed(std::string_view(stream).substr(i, piece));
      Packet p;
      while (reader.next(&p) == PacketReader::Status::kPacket) got.push_back(p);
    }
    ASSERT_EQ(got.size(), 3u) << "piece " << piece;
    EXPECT_EQ(got[0].command, 'h');
    EXPECT_EQ(got[0].data, "A\0b\0"s);
    EXPECT_EQ(got[1].command, 'c');
    EXPECT_EQ(got[2].data, "550 no\0"s);
    EXPECT_EQ(reader.buffered(), 0u);
  }
}

TEST(MilterPacketReader, RefusesOversizedAndEmptyPackets) {
  PacketReader reader(100);
  reader.feed(be32(101) + "c");
  Packet p;
  EXPECT_EQ(reader.next(&p), PacketReader::Status::kError);
  EXPECT_EQ(reader.error(), "packet of 101 bytes exceeds the limit of 100");
  reader.feed(pkt('c', ""));  // nothing more is read after an error
  EXPECT_EQ(reader.next(&p), PacketReader::Status::kError);

  PacketReader empty;
  empty.feed(be32(0));
  EXPECT_EQ(empty.next(&p), PacketReader::Status::kError);

  PacketReader exact(100);
  exact.feed(pkt('b', std::string(99, 'x')));
  EXPECT_EQ(exact.next(&p), PacketReader::Status::kPacket);
  EXPECT_EQ(p.data.size(), 99u);

  PacketReader real;
  real.feed(be32(kMaxPacket + 1));
  EXPECT_EQ(real.next(&p), PacketReader::Status::kError);
}

TEST(MilterPacketReader, WaitsForTheWholePacket) {
  PacketReader reader;
  reader.feed(be32(10) + "h");
  Packet p;
  EXPECT_EQ(reader.next(&p), PacketReader::Status::kNeedMore);
  EXPECT_EQ(reader.buffered(), 5u);
}

}  // namespace
}  // namespace mailgate::milter_client
