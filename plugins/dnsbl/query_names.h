// plugins/dnsbl/query_names.h — what the dnsbl plugin asks a list about, as DNS labels: client
// addresses reversed (IPv4 octets, IPv6 nibbles), domains normalised, and the host names of the
// URLs in a message body (a plain text scan: the spamscore plugin does the MIME-aware one).
// Owns: only pure string functions. Threading: none needed. Must not touch: the host, DNS.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::dnsbl {

// The labels to put in front of an 'ip' zone: "192.0.2.1" -> "1.2.0.192"; "2001:db8::1" -> the
// 32 nibbles reversed, dot-separated; an IPv4-mapped IPv6 address is asked as its IPv4 form.
// nullopt when `address` is not an IP address.
std::optional<std::string> reversed_ip(std::string_view address);

// Loopback, RFC 1918 / unique-local, link-local, CGNAT, unspecified: addresses no public list
// knows (asking about them only leaks the site's layout). Unparsable text counts as private.
bool private_address(std::string_view address);

// `text` as a domain to ask a 'domain' zone: lower-case, no trailing dot, at least two labels,
// letters/digits/hyphens/underscores, labels 1..63, top label not
// numeric (so IP literals are refused), at most `max_length` characters. nullopt otherwise.
std::optional<std::string> normalize_domain(std::string_view text, std::size_t max_length = 190);

// The domain of "local@domain" (the part after the last '@'), normalised; nullopt for the null
// sender or a bad domain.
std::optional<std::string> address_domain(std::string_view address);

// The names to ask for one domain: the domain itself and, when it has more than two labels,
// its last two ("www.shop.example.com" -> {"www.shop.example.com", "example.com"}): domain lists
// list registered domains, and without the public suffix list the last two labels stand in.
std::vector<std::string> domain_candidates(const std::string& domain);

// The host names of http://, https:// and ftp:// URLs and of bare "www." names in `text`, in
// order of first appearance, normalised, unique, at most `limit` of them. Quoted-printable soft
// line breaks ("=" CRLF) are joined first; IP-literal hosts are skipped.
std::vector<std::string> url_domains(std::string_view text, std::size_t limit);

}  // namespace mailgate::dnsbl
