// plugins/spamscore/header_checks.cc — see header_checks.h.
#include "header_checks.h"

#include <cstdio>
#include <string>

#include <mailgate/plugin.hpp>

#include "gmime_ptr.h"

namespace mailgate::spamscore {
namespace {

std::string clip(std::string_view value) {
  std::string out;
  for (char c : value.substr(0, 80)) out.push_back(c == '\r' || c == '\n' ? ' ' : c);
  if (value.size() > 80) out += "...";
  return out;
}

// True when the mailbox address is local@domain with both parts non-empty.
bool good_addr(const char* addr) {
  if (addr == nullptr) return false;
  const std::string_view a(addr);
  const std::size_t at = a.rfind('@');
  return at != std::string_view::npos && at > 0 && at + 1 < a.size() &&
         a.find_first_of(" \t<>") == std::string_view::npos;
}

// Why a From value is not a list of mailboxes, or "" when it is one.
std::string from_problem(std::string_view value) {
  const std::string text(value);
  GObjectPtr<InternetAddressList> list(internet_address_list_parse(nullptr, text.c_str()));
  if (!list || internet_address_list_length(list.get()) == 0) return "no address in From";
  const int n = internet_address_list_length(list.get());
  for (int i = 0; i < n; ++i) {
    InternetAddress* a = internet_address_list_get_address(list.get(), i);
    if (!INTERNET_ADDRESS_IS_MAILBOX(a)) return "From holds a group, not a mailbox";
    if (!good_addr(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a))))
      return "From address is not local@domain";
  }
  return "";
}

}  // namespace

std::vector<Finding> check_headers(const std::vector<HeaderField>& fields, std::uint64_t now_ms,
                                   double future_hours) {
  gmime_ready();
  std::vector<Finding> out;
  std::vector<std::string_view> from, date;
  bool message_id = false, subject = false;
  for (const HeaderField& f : fields) {
    if (mailgate::equal_ignore_case(f.name, "from"))
      from.push_back(f.value);
    else if (mailgate::equal_ignore_case(f.name, "date"))
      date.push_back(f.value);
    else if (mailgate::equal_ignore_case(f.name, "message-id"))
      message_id = true;
    else if (mailgate::equal_ignore_case(f.name, "subject"))
      subject = true;
  }
  if (from.empty()) out.push_back({"MISSING_FROM", "no From header field"});
  if (from.size() > 1)
    out.push_back({"MULTIPLE_FROM", std::to_string(from.size()) + " From header fields"});
  for (std::string_view value : from) {
    const std::string why = from_problem(value);
    if (!why.empty()) {
      out.push_back({"MALFORMED_FROM", why + ": " + clip(value)});
      break;
    }
  }
  if (date.empty()) {
    out.push_back({"MISSING_DATE", "no Date header field"});
  } else {
    const std::string text(date.front());
    GDateTimePtr when(g_mime_utils_header_decode_date(text.c_str()));
    if (!when) {
      out.push_back({"INVALID_DATE", "Date does not parse: " + clip(text)});
    } else if (now_ms != 0) {  // 0: a host without a clock (ABI < 1.2)
      const double ahead_s =
          static_cast<double>(g_date_time_to_unix(when.get())) - static_cast<double>(now_ms) / 1000;
      if (ahead_s > future_hours * 3600) {
        char detail[64];
        std::snprintf(detail, sizeof(detail), "Date is %.1f hours in the future", ahead_s / 3600);
        out.push_back({"DATE_IN_FUTURE", detail});
      }
    }
  }
  if (!message_id) out.push_back({"MISSING_MESSAGE_ID", "no Message-ID header field"});
  if (!subject) out.push_back({"MISSING_SUBJECT", "no Subject header field"});
  return out;
}

}  // namespace mailgate::spamscore
