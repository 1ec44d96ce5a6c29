// dns/result.cc — names of record types and statuses. See result.h.
#include "dns/result.h"

#include <cctype>

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

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(a[i])) !=
        std::toupper(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

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
