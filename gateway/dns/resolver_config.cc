// dns/resolver_config.cc — forwarder syntax, resolv.conf, config checks. See resolver_config.h.
#include "dns/resolver_config.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "util/lines.h"

namespace mailgate::dns {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool is_ip(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  uint8_t out[16];
  return inet_pton(AF_INET, buf, out) == 1 || inet_pton(AF_INET6, buf, out) == 1;
}

}  // namespace

UpstreamMode upstream_mode(const ResolverConfig& config) {
  if (!config.forwarders.empty()) return UpstreamMode::kForwarders;
  if (config.use_system_resolver) return UpstreamMode::kSystem;
  if (config.recursive) return UpstreamMode::kRecursive;
  return UpstreamMode::kLocalOnly;
}

std::string_view to_string(UpstreamMode mode) {
  switch (mode) {
    case UpstreamMode::kForwarders:
      return "forwarders";
    case UpstreamMode::kSystem:
      return "system resolver";
    case UpstreamMode::kRecursive:
      return "recursive";
    case UpstreamMode::kLocalOnly:
      return "local zones only";
  }
  return "?";
}

Expected<Forwarder, std::string> parse_forwarder(std::string_view item) {
  const std::string quoted = "'" + std::string(item) + "'";
  std::string_view text = trim(item);
  if (text.empty()) return unexpected(std::string("empty forwarder"));
  Forwarder f;
  size_t at = text.find('@');
  std::string_view host = text.substr(0, at);
  if (at != std::string_view::npos) {
    std::string_view port = text.substr(at + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
        value > 65535)
      return unexpected("forwarder " + quoted + ": port must be a number from 1 to 65535");
    f.port = static_cast<uint16_t>(value);
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    return unexpected("forwarder " + quoted + ": write IPv6 without brackets, IP@PORT");
  if (host.find('%') != std::string_view::npos)
    return unexpected("forwarder " + quoted + ": IPv6 scope ids are not supported");
  if (!is_ip(host))
    return unexpected("forwarder " + quoted +
                      ": not a numeric IP address (want IP[@PORT], e.g. 127.0.0.1@5353)");
  f.address = std::string(host);
  return f;
}

Expected<std::vector<Forwarder>, std::string> parse_forwarders(std::string_view list) {
  std::vector<Forwarder> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string_view item = list.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    start = comma == std::string_view::npos ? list.size() + 1 : comma + 1;
    if (trim(item).empty()) return unexpected("empty forwarder in '" + std::string(list) + "'");
    auto f = parse_forwarder(item);
    if (!f) return unexpected(f.error());
    out.push_back(std::move(*f));
  }
  return out;
}

Expected<std::vector<Forwarder>, std::string> parse_resolv_conf(std::string_view text) {
  std::vector<Forwarder> out;
  size_t skipped = 0;
  LineCursor lines(text);
  std::string_view line;
  while (lines.next(&line)) {
    const size_t line_no = lines.number();
    line = trim(line);
    if (line.substr(0, 10) != "nameserver" || line.size() == 10 ||
        (line[10] != ' ' && line[10] != '\t'))
      continue;
    std::string_view value = trim(line.substr(10));
    size_t end = value.find_first_of(" \t#;");
    value = value.substr(0, end);
    if (value.find('%') != std::string_view::npos) {
      ++skipped;  // link-local with a scope id: libunbound cannot use it
      continue;
    }
    auto f = parse_forwarder(value);
    if (!f) return unexpected("line " + std::to_string(line_no) + ": " + f.error());
    if (f->port != 53 || value.find('@') != std::string_view::npos)
      return unexpected("line " + std::to_string(line_no) + ": nameserver takes an address only");
    out.push_back(std::move(*f));
  }
  if (out.empty() && skipped > 0)
    return unexpected(
        std::string("no usable nameserver (scoped IPv6 addresses are not supported)"));
  if (out.empty()) out.push_back(Forwarder{"127.0.0.1", 53});
  return out;
}

std::optional<std::string> check(const ResolverConfig& config) {
  using namespace std::chrono_literals;
  if (config.timeout < 1ms || config.timeout > 300000ms)
    return "timeout must be from 1 to 300000 ms, not " + std::to_string(config.timeout.count());
  if (config.retries && (*config.retries < 0 || *config.retries > 100))
    return "retries must be from 0 to 100";
  if (config.msg_cache_size != 0 &&
      (config.msg_cache_size < kMinCacheSize || config.msg_cache_size > kMaxCacheSize))
    return "msg cache size must be 0 (default) or from 65536 bytes to 64 GiB";
  if (config.rrset_cache_size != 0 &&
      (config.rrset_cache_size < kMinCacheSize || config.rrset_cache_size > kMaxCacheSize))
    return "rrset cache size must be 0 (default) or from 65536 bytes to 64 GiB";
  if (config.dnssec && config.trust_anchor_file.empty()) return "DNSSEC needs a trust anchor file";
  if (upstream_mode(config) == UpstreamMode::kSystem && config.resolv_conf.empty())
    return "use_system_resolver needs a resolv.conf path";
  for (const auto& [name, value] : config.unbound_options)
    if (name.empty() || name.find_first_of(" \t\n") != std::string::npos)
      return "bad libunbound option name '" + name + "'";
  return std::nullopt;
}

}  // namespace mailgate::dns
