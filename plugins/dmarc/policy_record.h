// plugins/dmarc/policy_record.h — DMARC policy discovery (RFC 7489 section 6.6.3): the TXT
// record at _dmarc.<From domain>, else at _dmarc.<organizational domain>, parsed by
// libopendmarc (opendmarc_policy_store_dmarc: the record is handed over, the library never
// queries DNS itself).
//
// Owns: the lookup order, which TXT records count ("v=DMARC1" first, exactly one), what a DNS
// failure or a bad record means, and the parsed policy. Must not: call DNS other than through
// the lookup function it is given (the host's resolver), or keep state between messages;
// every call has its own DMARC_POLICY_T, so any number of threads may discover at once.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::dmarc {

class PublicSuffixList;

// One TXT lookup's outcome, as the plugin's resolver reports it.
struct TxtAnswer {
  enum class Status { kOk, kNoRecord /* NXDOMAIN or NODATA */, kTempFail, kError };
  Status status = Status::kNoRecord;
  std::vector<std::string> texts;  // each record's strings concatenated
};
using TxtLookup = std::function<TxtAnswer(const std::string& name)>;

// A parsed DMARC record. Policies are 'n' (none), 'q' (quarantine), 'r' (reject); sp is '\0'
// when the record has no sp= tag; alignment modes 'r' (relaxed) or 's' (strict).
struct PolicyRecord {
  std::string domain;  // where it was found: the From domain or the organizational domain
  std::string text;    // the record as published
  char p = 'n';
  char sp = '\0';
  int pct = 100;
  char adkim = 'r';
  char aspf = 'r';
  std::vector<std::string> rua;
};

struct Discovery {
  enum class Status {
    kFound,      // a record to apply
    kNone,       // no record (or several at one name): DMARC does not apply
    kTempError,  // a lookup failed temporarily
    kPermError   // the record that applies cannot be parsed
  };
  Status status = Status::kNone;
  PolicyRecord record;             // when kFound
  std::string organizational;      // the From domain's organizational domain
  bool at_organizational = false;  // the record came from the organizational domain fallback
  std::string problem;             // for the log: what was missing or wrong
};

// Policy discovery for `from_domain` (normalised). `lookup` is called for at most two names.
Discovery discover_policy(const std::string& from_domain, const PublicSuffixList& psl,
                          const TxtLookup& lookup);

// Parses one record (libopendmarc). Returns an empty string and fills `out` on success, else
// the library's complaint. `domain` is where the record was found.
std::string parse_record(const std::string& text, const std::string& domain, PolicyRecord& out);

// True when a TXT record is a DMARC record: it starts with the tag "v=DMARC1" (RFC 7489
// section 6.4: "v" case-insensitive, spaces allowed around '=', the value exact).
bool is_dmarc_record(std::string_view text);

}  // namespace mailgate::dmarc
