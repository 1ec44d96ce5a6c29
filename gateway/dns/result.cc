// dns/result.cc — names of record types and statuses. See result.h.
#include "dns/result.h"

#include "util/ascii.h"

namespace mailgate::dns {
namespace {

struct TypeName {
  RRType type;
  std::string_view name;
};
constexpr TypeName kTypeNames[] = {
    {RRType::kA, "A"},     {RRType::kAAAA, "AAAA"}, {RRType::kMX, "MX"},
    {RRType::kTXT, "TXT"}, {RRType::kPTR, "PTR"},
};

}  // namespace

std::string_view to_string(RRType type) {
  for (const TypeName& t : kTypeNames)
    if (t.type == type) return t.name;
  return "?";
}

std::string_view to_string(Status status) {
  switch (status) {
    case Status::kOk:
      return "ok";
    case Status::kNxDomain:
      return "nxdomain";
    case Status::kNoData:
      return "nodata";
    case Status::kTempfail:
      return "tempfail";
    case Status::kError:
      return "error";
  }
  return "?";
}

bool parse_rr_type(std::string_view text, RRType* out) {
  for (const TypeName& t : kTypeNames) {
    if (iequals(text, t.name)) {
      *out = t.type;
      return true;
    }
  }
  return false;
}

}  // namespace mailgate::dns
