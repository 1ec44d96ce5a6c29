// plugins/dmarc/evaluation.cc — identities, alignment, result and disposition (see
// evaluation.h). Pure functions.
#include "evaluation.h"

#include "from_domain.h"
#include "public_suffix.h"

namespace mailgate::dmarc {

const char* policy_name(char p) {
  switch (p) {
    case 'r':
      return "reject";
    case 'q':
      return "quarantine";
    case 'n':
      return "none";
    default:
      return "";
  }
}

std::string property(std::string_view properties, std::string_view name) {
  std::size_t pos = 0;
  while (pos < properties.size()) {
    while (pos < properties.size() && (properties[pos] == ' ' || properties[pos] == '\t')) ++pos;
    std::size_t end = pos;
    while (end < properties.size() && properties[end] != ' ' && properties[end] != '\t') ++end;
    const std::string_view pair = properties.substr(pos, end - pos);
    pos = end;
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos || eq != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < eq; ++i) {
      char c = pair[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != name[i]) same = false;
    }
    if (same) return std::string(pair.substr(eq + 1));
  }
  return {};
}

void collect_identities(const std::vector<AuthEntry>& results, Verdict& verdict) {
  const AuthEntry* mailfrom = nullptr;
  const AuthEntry* helo = nullptr;
  for (const AuthEntry& r : results) {
    if (r.method == "spf") {
      if (!property(r.properties, "smtp.mailfrom").empty()) {
        if (mailfrom == nullptr) mailfrom = &r;
      } else if (!property(r.properties, "smtp.helo").empty()) {
        if (helo == nullptr) helo = &r;
      }
    } else if (r.method == "dkim") {
      // "dkim=none" (no signature) has no header.d: nothing to align.
      if (property(r.properties, "header.d").empty()) continue;
      DkimSignature sig;
      sig.domain = domain_of(property(r.properties, "header.d"));
      sig.selector = property(r.properties, "header.s");
      sig.result = r.result;
      verdict.dkim.push_back(std::move(sig));
    }
  }
  const AuthEntry* spf = mailfrom != nullptr ? mailfrom : helo;
  if (spf != nullptr) {
    verdict.spf.scope = spf == mailfrom ? "mfrom" : "helo";
    verdict.spf.domain =
        domain_of(property(spf->properties, spf == mailfrom ? "smtp.mailfrom" : "smtp.helo"));
    verdict.spf.result = spf->result;
  } else {
    verdict.spf.result = "none";
  }
}

bool aligned(const std::string& from_domain, const std::string& domain, char mode,
             const PublicSuffixList& psl) {
  const std::string a = normalize_domain(from_domain);
  const std::string b = normalize_domain(domain);
  if (a.empty() || b.empty()) return false;
  if (mode == 's') return a == b;
  return psl.organizational_domain(a) == psl.organizational_domain(b);
}

void evaluate(const std::string& from_domain, const Discovery& discovery,
              const PublicSuffixList& psl, int roll, bool honour_pct, Verdict& verdict) {
  const PolicyRecord& record = discovery.record;
  verdict.spf.aligned =
      verdict.spf.result == "pass" && aligned(from_domain, verdict.spf.domain, record.aspf, psl);
  verdict.spf_aligned = verdict.spf.aligned;
  verdict.dkim_aligned = false;
  for (DkimSignature& sig : verdict.dkim) {
    sig.aligned = sig.result == "pass" && aligned(from_domain, sig.domain, record.adkim, psl);
    if (sig.aligned) verdict.dkim_aligned = true;
  }
  // The sub-domain policy applies when the record was found at the organizational domain for
  // a From domain below it (section 6.3 "sp"); without sp= the p= policy applies.
  verdict.subdomain_policy = discovery.at_organizational && record.sp != '\0';
  verdict.policy = verdict.subdomain_policy ? record.sp : record.p;
  verdict.sampled_out = false;
  if (verdict.spf_aligned || verdict.dkim_aligned) {
    verdict.result = "pass";
    verdict.disposition = 'n';
    return;
  }
  verdict.result = "fail";
  verdict.disposition = verdict.policy;
  // Section 6.6.4: a message not selected by pct= gets the next policy down (reject →
  // quarantine, quarantine → none).
  if (honour_pct && roll >= record.pct && verdict.policy != 'n') {
    verdict.sampled_out = true;
    verdict.disposition = verdict.policy == 'r' ? 'q' : 'n';
  }
}

}  // namespace mailgate::dmarc
