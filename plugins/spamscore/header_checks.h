// plugins/spamscore/header_checks.h — header sanity of a message, as symbols:
//   MISSING_FROM        no From field                MULTIPLE_FROM     more than one From
//   MALFORMED_FROM      From is not a list of mailboxes local@domain (RFC 5322 3.6.2)
//   MISSING_DATE        no Date field                INVALID_DATE      Date does not parse
//   DATE_IN_FUTURE      Date more than `future_hours` ahead of the gateway's clock (now_ms;
//                       not checked when it is 0)
//   MISSING_MESSAGE_ID  no Message-ID field          MISSING_SUBJECT   no Subject field
// Owns: the checks and the detail text of each finding; not the scores (the plugin's table).
// Threading: pure function (GMime parses addresses and dates); any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::spamscore {

struct HeaderField {
  std::string_view name;
  std::string_view value;  // unfolded as received
};

struct Finding {
  std::string symbol;
  std::string detail;
};

std::vector<Finding> check_headers(const std::vector<HeaderField>& fields, std::uint64_t now_ms,
                                   double future_hours);

}  // namespace mailgate::spamscore
