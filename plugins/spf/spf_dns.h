// plugins/spf/spf_dns.h — libspf2's DNS layer for the spf plugin: every lookup libspf2 makes
// goes to the host's resolver (host->dns_query), never to res_query.
//
// Owns: the SPF_dns_server_t handed to SPF_server_new_dns(), the mapping of mg_dns_result to
// SPF_dns_rr_t (MG_DNS_NXDOMAIN → HOST_NOT_FOUND, NODATA → NO_DATA, TEMPFAIL/ERROR →
// TRY_AGAIN), and the RFC 7208 section 4.6.4 processing limits libspf2 does not enforce per
// evaluation: at most 10 DNS-querying terms (include, a, mx, ptr, exists, redirect), at most 2
// void lookups, at most 10 MX names per "mx". Past a limit the layer answers HOST_NOT_FOUND to
// everything (so libspf2 finishes quickly) and the evaluation's caller turns the result into
// permerror with the limit's text. After a lookup fails (TEMPFAIL/ERROR) check_host() has ended
// (RFC 7208 section 5): later lookups answer TRY_AGAIN without a query, and the caller reports
// temperror. Void lookups are counted for the non-TXT lookups. libspf2 1.2.10 garbles literal
// spaces in exp= explanations: non-SPF TXT strings are handed over with "%_" (the macro for a
// space) instead. PTR answers are cut to their first 10 names (RFC 7208
// section 4.6.4: "all records other than the first 10 MUST be ignored").
//
// How terms are told apart from the lookups they cause: the first TXT lookup of an evaluation
// is the identity's own record; each later TXT lookup that finds an SPF record is an include or
// a redirect (one that finds none is an exp= target, or a permerror anyway); an MX or a
// PTR lookup is one "mx" or "ptr" term; an A/AAAA lookup is an "a" or "exists" term unless its
// name came from an earlier MX or PTR answer of the same evaluation (then it is part of that
// term).
//
// Threads: the layer is shared by every thread; the per-evaluation state is an Evaluation object
// the caller creates on its stack and installs with Evaluation::Scope for the duration of one
// SPF_request_query_*() on that thread (a thread_local pointer). Lookups outside a Scope fail
// with TRY_AGAIN. A lookup the host answers MG_DNS_WOULDBLOCK (a try on its I/O thread, the
// answer not cached) ends the evaluation like a failure and marks it would_block().
#pragma once

#include <mailgate/plugin.h>

#include <cstddef>
#include <memory>
#include <set>
#include <string>

extern "C" {
#include <netinet/in.h>
#include <spf2/spf.h>
}

namespace mailgate_spf {

inline constexpr int kMaxDnsTerms = 10;
inline constexpr int kMaxVoidLookups = 2;
inline constexpr std::size_t kMaxMxNames = 10;
inline constexpr std::size_t kMaxPtrNames = 10;

// The state of one SPF evaluation (one identity checked once).
class Evaluation {
 public:
  Evaluation(const mg_host* host, mg_session* session) : host_(host), session_(session) {}
  Evaluation(const Evaluation&) = delete;
  Evaluation& operator=(const Evaluation&) = delete;

  // Installs the evaluation as the current thread's for the scope's lifetime.
  class Scope {
   public:
    explicit Scope(Evaluation& evaluation);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Evaluation* previous_;
  };

  // A processing limit was exceeded: the evaluation's result is permerror, for this reason.
  bool exceeded() const noexcept { return !exceeded_.empty(); }
  const std::string& exceeded_reason() const noexcept { return exceeded_; }
  int dns_terms() const noexcept { return terms_; }
  int void_lookups() const noexcept { return voids_; }
  int queries() const noexcept { return queries_; }
  // A lookup failed (timeout, SERVFAIL): the evaluation's result is temperror.
  bool tempfailed() const noexcept { return tempfailed_; }
  // In a try on the host's I/O thread, a lookup was not in the resolver's cache
  // (MG_DNS_WOULDBLOCK): the evaluation ended there (as after a failure) and has no result.
  bool would_block() const noexcept { return would_block_; }

 private:
  friend SPF_dns_rr_t* lookup(SPF_dns_server_t*, const char*, ns_type, int);
  bool count_term();  // false (and exceeded) past kMaxDnsTerms
  const mg_host* host_;
  mg_session* session_;
  int terms_ = 0;
  int voids_ = 0;
  int queries_ = 0;
  bool saw_first_txt_ = false;
  bool tempfailed_ = false;
  bool would_block_ = false;
  std::set<std::string> secondary_names_;  // names from MX/PTR answers: their A/AAAA lookups
  std::string exceeded_;
};

// The DNS layer. Frees itself on destruction; not freed by SPF_server_free (destroy is NULL).
struct DnsLayerDeleter {
  void operator()(SPF_dns_server_t* layer) const noexcept;
};
using DnsLayer = std::unique_ptr<SPF_dns_server_t, DnsLayerDeleter>;
DnsLayer make_dns_layer();

// libspf2's lookup hook (exposed for the friend declaration above).
SPF_dns_rr_t* lookup(SPF_dns_server_t* layer, const char* domain, ns_type type, int should_cache);

}  // namespace mailgate_spf
