// plugins/dmarc/from_domain.h — the RFC5322.From domain of a message (RFC 7489 section 3.1.1
// and 6.6.1): the domain of the one author address in the one From header field.
//
// Owns: reading the From field values (comments, quoted strings, angle addresses, obsolete
// routes, folding) into author addresses, and judging the outcome. Must not: look anything up
// or touch the session; pure functions on strings, safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mailgate::dmarc {

enum class FromStatus {
  kOk,          // exactly one From field with exactly one address with a domain
  kAbsent,      // no From field (result "none")
  kMultiple,    // several From fields, or one with several addresses (result "permerror")
  kUnparseable  // an address without a usable domain (result "permerror")
};

struct FromDomain {
  FromStatus status = FromStatus::kAbsent;
  std::string domain;   // lower case, no trailing dot; set when kOk
  std::string problem;  // for the log when not kOk
};

// The addresses (addr-spec, comments removed) of one From field value; an element that is
// not an address (empty, no '@') is returned as written so the caller can refuse it.
std::vector<std::string> from_addresses(std::string_view value);

// The From domain of a message from the values of all its From fields, in order.
FromDomain from_domain(const std::vector<std::string_view>& from_values);

// The domain part of an address or a bare domain ("user@Example.COM." → "example.com").
std::string domain_of(std::string_view address_or_domain);

// True when `domain` looks like a DNS name DMARC can be looked up for: labels of 1-63 octets
// (letters, digits, '-', '_', or UTF-8), at least two labels, 253 octets at most.
bool usable_domain(std::string_view domain);

}  // namespace mailgate::dmarc
