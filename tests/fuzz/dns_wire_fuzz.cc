// dns_wire_fuzz.cc — the DNS message reader (dns/wire.h) on arbitrary bytes: what a broken or
// hostile DNS server may answer. Properties: no crash, no read outside the message (the
// sanitizers watch), compression loops end, every record's rdata lies inside the message and
// parses (or is refused) without reading past it, and a name ends inside the message.
#include <cstddef>
#include <cstdint>

#include "dns/wire.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using mailgate::dns::RRType;
  const mailgate::dns::wire::Bytes message(data, size);
  auto parsed = mailgate::dns::wire::parse_message(message);
  if (parsed) {
    for (const auto& rr : parsed->answers) {
      FUZZ_CHECK(rr.rdata_offset + rr.rdata_length <= size);
      for (RRType type : {RRType::kA, RRType::kAAAA, RRType::kMX, RRType::kTXT, RRType::kPTR}) {
        auto rdata = mailgate::dns::wire::parse_rdata(type, message, rr.rdata_offset, rr.rdata_length);
        (void)rdata;
      }
    }
  }
  for (size_t offset : {size_t{0}, size_t{12}, size / 2}) {
    auto name = mailgate::dns::wire::read_name(message, offset);
    if (name) FUZZ_CHECK(name->end <= size);
  }
  return 0;
}
