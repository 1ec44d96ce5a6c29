// plugins/dmarc/policy_record.cc — policy discovery and record parsing on libopendmarc (see
// policy_record.h). DNS only through the TxtLookup the caller passes.
#include "policy_record.h"

#include <memory>

#include "public_suffix.h"

extern "C" {
#include <opendmarc/dmarc.h>
}

namespace mailgate::dmarc {
namespace {

struct PolicyDeleter {
  void operator()(DMARC_POLICY_T* p) const noexcept { opendmarc_policy_connect_shutdown(p); }
};
using PolicyPtr = std::unique_ptr<DMARC_POLICY_T, PolicyDeleter>;

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// The value of tag `name` in a tag list, surrounding whitespace removed; `found` tells an
// absent tag from an empty value.
std::string tag_value(std::string_view record, std::string_view name, bool& found) {
  found = false;
  std::size_t pos = 0;
  while (pos <= record.size()) {
    std::size_t end = record.find(';', pos);
    if (end == std::string_view::npos) end = record.size();
    std::string_view spec = record.substr(pos, end - pos);
    pos = end + 1;
    const std::size_t eq = spec.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view tag = spec.substr(0, eq);
    std::string_view value = spec.substr(eq + 1);
    while (!tag.empty() && is_wsp(tag.front())) tag.remove_prefix(1);
    while (!tag.empty() && is_wsp(tag.back())) tag.remove_suffix(1);
    while (!value.empty() && is_wsp(value.front())) value.remove_prefix(1);
    while (!value.empty() && is_wsp(value.back())) value.remove_suffix(1);
    if (tag.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < tag.size(); ++i) {
      char c = tag[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != name[i]) same = false;
    }
    if (!same) continue;
    found = true;
    return std::string(value);
  }
  return {};
}

// What one name holds: no DMARC record, exactly one, several, or a failed lookup.
enum class AtName { kNone, kOne, kSeveral, kTempFail };

AtName records_at(const std::string& name, const TxtLookup& lookup, std::string& record) {
  const TxtAnswer answer = lookup(name);
  switch (answer.status) {
    case TxtAnswer::Status::kOk:
      break;
    case TxtAnswer::Status::kNoRecord:
      return AtName::kNone;
    case TxtAnswer::Status::kTempFail:
    case TxtAnswer::Status::kError:
      return AtName::kTempFail;
  }
  std::size_t count = 0;
  for (const std::string& text : answer.texts) {
    if (!is_dmarc_record(text)) continue;
    if (++count == 1) record = text;
  }
  if (count == 0) return AtName::kNone;
  return count == 1 ? AtName::kOne : AtName::kSeveral;
}

}  // namespace

bool is_dmarc_record(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && is_wsp(text[i])) ++i;
  if (i >= text.size() || (text[i] != 'v' && text[i] != 'V')) return false;
  ++i;
  while (i < text.size() && is_wsp(text[i])) ++i;
  if (i >= text.size() || text[i] != '=') return false;
  ++i;
  while (i < text.size() && is_wsp(text[i])) ++i;
  if (text.substr(i, 6) != "DMARC1") return false;
  i += 6;
  return i == text.size() || is_wsp(text[i]) || text[i] == ';';
}

std::string parse_record(const std::string& text, const std::string& domain, PolicyRecord& out) {
  // The client address only matters to the library's own reports; any valid one does.
  PolicyPtr ctx(
      opendmarc_policy_connect_init(reinterpret_cast<u_char*>(const_cast<char*>("0.0.0.0")), 0));
  if (!ctx) return "libopendmarc could not allocate a policy context";
  std::string record = text;
  std::string dom = domain;
  const OPENDMARC_STATUS_T status = opendmarc_policy_store_dmarc(
      ctx.get(), reinterpret_cast<u_char*>(record.data()), reinterpret_cast<u_char*>(dom.data()),
      reinterpret_cast<u_char*>(dom.data()));
  if (status != DMARC_PARSE_OKAY) {
    const char* why = opendmarc_policy_status_to_str(status);
    return why != nullptr ? why : "unparseable DMARC record";
  }
  int p = 0, sp = 0, pct = 100, adkim = 0, aspf = 0;
  opendmarc_policy_fetch_p(ctx.get(), &p);
  opendmarc_policy_fetch_sp(ctx.get(), &sp);
  opendmarc_policy_fetch_pct(ctx.get(), &pct);
  opendmarc_policy_fetch_adkim(ctx.get(), &adkim);
  opendmarc_policy_fetch_aspf(ctx.get(), &aspf);
  out = PolicyRecord{};
  out.domain = domain;
  out.text = text;
  out.p = static_cast<char>(p);
  out.sp = static_cast<char>(sp);
  out.adkim = adkim == DMARC_RECORD_A_STRICT ? 's' : 'r';
  out.aspf = aspf == DMARC_RECORD_A_STRICT ? 's' : 'r';
  out.pct = pct;
  // libopendmarc reads "pct=abc" as 0; RFC 7489 section 6.3 wants the default for a value
  // that is not a number.
  bool has_pct = false;
  const std::string pct_text = tag_value(text, "pct", has_pct);
  if (has_pct) {
    bool digits = !pct_text.empty();
    for (char c : pct_text) digits = digits && c >= '0' && c <= '9';
    if (!digits) out.pct = 100;
  }
  // The rua list as the library parsed it; constant = 1 and no buffer: no DNS (the
  // external-destination check that needs DNS only runs when a buffer is given).
  u_char** rua = opendmarc_policy_fetch_rua(ctx.get(), nullptr, 0, 1);
  for (u_char** r = rua; r != nullptr && *r != nullptr; ++r)
    out.rua.emplace_back(reinterpret_cast<const char*>(*r));
  return {};
}

Discovery discover_policy(const std::string& from_domain, const PublicSuffixList& psl,
                          const TxtLookup& lookup) {
  Discovery d;
  d.organizational = psl.organizational_domain(from_domain);
  std::string text;
  std::string where = from_domain;
  AtName at = records_at("_dmarc." + from_domain, lookup, text);
  if (at == AtName::kNone && d.organizational != from_domain) {
    where = d.organizational;
    d.at_organizational = true;
    at = records_at("_dmarc." + d.organizational, lookup, text);
  }
  switch (at) {
    case AtName::kNone:
      d.status = Discovery::Status::kNone;
      d.at_organizational = false;
      d.problem = "no DMARC record";
      return d;
    case AtName::kSeveral:
      d.status = Discovery::Status::kNone;
      d.problem = "several DMARC records at _dmarc." + where;
      return d;
    case AtName::kTempFail:
      d.status = Discovery::Status::kTempError;
      d.problem = "DNS lookup of _dmarc." + where + " failed";
      return d;
    case AtName::kOne:
      break;
  }
  const std::string error = parse_record(text, where, d.record);
  if (!error.empty()) {
    // Section 6.6.3: a record without a valid p= (or with a bad sp=) that names a reporting
    // URI is treated as "v=DMARC1; p=none" with that rua=, so its owner still gets reports.
    bool has_rua = false;
    const std::string rua = tag_value(text, "rua", has_rua);
    if (has_rua && rua.find("mailto:") != std::string::npos &&
        parse_record("v=DMARC1; p=none; rua=" + rua, where, d.record).empty()) {
      d.record.text = text;
      d.status = Discovery::Status::kFound;
      d.problem = "bad DMARC record at _dmarc." + where + " (" + error + "), read as p=none";
      return d;
    }
    d.status = Discovery::Status::kPermError;
    d.record.domain = where;
    d.record.text = text;
    d.problem = "bad DMARC record at _dmarc." + where + ": " + error;
    return d;
  }
  d.status = Discovery::Status::kFound;
  return d;
}

}  // namespace mailgate::dmarc
