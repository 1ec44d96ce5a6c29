// srs_address_fuzz.cc — the routing plugin's SRS addresses (plugins/routing/srs.h) on arbitrary
// input: as a recipient to reverse (what a bounce, or anyone, may send to the SRS domain) and as
// a sender to rewrite. Properties: no crash; a reversal that succeeds gives a non-empty address
// with an '@'; for a sender that is not itself SRS, whose local part is not empty and whose
// domain has no '=', reversing the forward gives the sender back, and one day past the maximum
// age it is refused as expired.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "srs.h"

namespace {

constexpr uint64_t kDay = 86'400;
constexpr uint64_t kNow = 20'000 * kDay + 1'234;

const mailgate::routing::Srs& srs() {
  static const mailgate::routing::Srs instance([] {
    mailgate::routing::SrsConfig c;
    c.domain = "fwd.example";
    c.secrets = {"fuzz-secret-0123456789", "older-secret-0123456789"};
    c.max_age_days = 21;
    return c;
  }());
  return instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using mailgate::routing::Srs;
  using mailgate::routing::SrsStatus;
  const std::string value(reinterpret_cast<const char*>(data), size);

  const auto back = srs().reverse(value, kNow);
  if (back.status == SrsStatus::kOk) {
    FUZZ_CHECK(!back.address.empty());
    FUZZ_CHECK(back.address.find('@') != std::string::npos);
  }

  const size_t at = value.rfind('@');
  if (at == std::string::npos || at == 0) return 0;
  const std::string_view local = std::string_view(value).substr(0, at);
  const std::string_view domain = std::string_view(value).substr(at + 1);
  const std::string forwarded = srs().forward(value, kNow);
  FUZZ_CHECK(forwarded.ends_with("@fwd.example"));
  if (Srs::is_srs(local) || domain.empty() || domain.find('=') != std::string_view::npos)
    return 0;
  const auto round = srs().reverse(forwarded, kNow + 3 * kDay);
  FUZZ_CHECK(round.status == SrsStatus::kOk);
  FUZZ_CHECK(round.address == value);
  FUZZ_CHECK(srs().reverse(forwarded, kNow + 22 * kDay).status == SrsStatus::kExpired);
  return 0;
}
