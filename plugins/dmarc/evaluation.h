// plugins/dmarc/evaluation.h — the DMARC verdict of one message (RFC 7489 sections 3.1, 6.6.2
// and 6.6.4): which SPF and DKIM results the other plugins recorded, whether their domains are
// aligned with the From domain (relaxed or strict), the result, and the policy to apply after
// pct= sampling.
//
// Owns: reading "spf" and "dkim" authentication results (RFC 8601 properties), alignment and
// the result/disposition rules. Must not: look anything up or touch the session: pure
// functions of their arguments (the pct roll is passed in), safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "policy_record.h"

namespace mailgate::dmarc {

class PublicSuffixList;

// One authentication result as the host lists it (copied out of the session).
struct AuthEntry {
  std::string method;
  std::string result;
  std::string properties;
};

struct SpfIdentity {
  std::string domain;  // the domain SPF checked; empty when no SPF result was recorded
  std::string scope;   // "mfrom" (smtp.mailfrom) or "helo" (smtp.helo)
  std::string result;  // "pass", "fail", ... ("none" when no SPF result was recorded)
  bool aligned = false;
};

struct DkimSignature {
  std::string domain;    // header.d
  std::string selector;  // header.s
  std::string result;    // pass, fail, ...
  bool aligned = false;  // pass and aligned
};

struct Verdict {
  std::string result;  // "pass", "fail", "none", "temperror", "permerror"
  SpfIdentity spf;
  std::vector<DkimSignature> dkim;
  bool spf_aligned = false;       // an SPF pass aligned with the From domain
  bool dkim_aligned = false;      // a DKIM pass aligned with the From domain
  char policy = '\0';             // p or sp that applies ('n','q','r'); '\0' without a record
  bool subdomain_policy = false;  // policy came from sp=
  char disposition = 'n';         // after pct sampling: 'n', 'q', 'r'
  bool sampled_out = false;       // pct sampling lowered the disposition
};

// The value of property `name` ("smtp.mailfrom", "header.d") in an RFC 8601 property list
// "a.b=v c.d=w"; empty when absent.
std::string property(std::string_view properties, std::string_view name);

// The SPF identity DMARC uses: smtp.mailfrom, or smtp.helo when no MAIL FROM result exists
// (the null sender), and the DKIM signatures, from the recorded results.
void collect_identities(const std::vector<AuthEntry>& results, Verdict& verdict);

// Alignment of `domain` with the From domain: strict = equal, relaxed = equal organizational
// domains.
bool aligned(const std::string& from_domain, const std::string& domain, char mode,
             const PublicSuffixList& psl);

// Fills result, alignment, policy and disposition for a message whose policy was discovered
// (discovery.status kFound). `roll` is a number in [0, 100): the message is subject to the
// policy when roll < pct (always when honour_pct is false).
void evaluate(const std::string& from_domain, const Discovery& discovery,
              const PublicSuffixList& psl, int roll, bool honour_pct, Verdict& verdict);

const char* policy_name(char p);  // 'n' → "none", 'q' → "quarantine", 'r' → "reject"

}  // namespace mailgate::dmarc
