// tests/unit/dns/message_builder.h — builds DNS messages byte by byte for tests: crafted
// (also malformed) answers for the wire parser, and replies of the fake servers in
// dns_server_fixture.h. Test-only; header-only; not thread-safe (one builder per thread).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::dns::testing {

class MessageBuilder {
 public:
  using Bytes = std::vector<uint8_t>;

  // Header fields; counts are written as given (they may lie on purpose).
  MessageBuilder& header(uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns,
                         uint16_t ar) {
    put16(id);
    put16(flags);
    put16(qd);
    put16(an);
    put16(ns);
    put16(ar);
    return *this;
  }
  // An uncompressed name ("a.example.test", "." for the root). Returns its offset.
  size_t name(std::string_view text) {
    size_t at = bytes_.size();
    while (!text.empty() && text != ".") {
      size_t dot = text.find('.');
      std::string_view label = text.substr(0, dot);
      bytes_.push_back(static_cast<uint8_t>(label.size()));
      bytes_.insert(bytes_.end(), label.begin(), label.end());
      if (dot == std::string_view::npos) break;
      text.remove_prefix(dot + 1);
    }
    bytes_.push_back(0);
    return at;
  }
  // Labels followed by a compression pointer to `target` ("mail" + ptr).
  size_t name_with_pointer(std::string_view labels, size_t target) {
    size_t at = bytes_.size();
    while (!labels.empty()) {
      size_t dot = labels.find('.');
      std::string_view label = labels.substr(0, dot);
      bytes_.push_back(static_cast<uint8_t>(label.size()));
      bytes_.insert(bytes_.end(), label.begin(), label.end());
      if (dot == std::string_view::npos) break;
      labels.remove_prefix(dot + 1);
    }
    pointer(target);
    return at;
  }
  MessageBuilder& pointer(size_t target) {
    put16(static_cast<uint16_t>(0xc000 | target));
    return *this;
  }
  MessageBuilder& question(std::string_view qname, uint16_t type, uint16_t klass = 1) {
    name(qname);
    put16(type);
    put16(klass);
    return *this;
  }
  // Type, class, TTL; then rdlength is reserved and filled in by end_rr().
  MessageBuilder& rr_fixed(uint16_t type, uint32_t ttl, uint16_t klass = 1) {
    put16(type);
    put16(klass);
    put32(ttl);
    rdlength_at_ = bytes_.size();
    put16(0);
    return *this;
  }
  MessageBuilder& end_rr() {
    size_t length = bytes_.size() - rdlength_at_ - 2;
    bytes_[rdlength_at_] = static_cast<uint8_t>(length >> 8);
    bytes_[rdlength_at_ + 1] = static_cast<uint8_t>(length);
    return *this;
  }
  MessageBuilder& put8(uint8_t v) {
    bytes_.push_back(v);
    return *this;
  }
  MessageBuilder& put16(uint16_t v) {
    bytes_.push_back(static_cast<uint8_t>(v >> 8));
    bytes_.push_back(static_cast<uint8_t>(v));
    return *this;
  }
  MessageBuilder& put32(uint32_t v) {
    put16(static_cast<uint16_t>(v >> 16));
    return put16(static_cast<uint16_t>(v));
  }
  MessageBuilder& raw(std::string_view data) {
    bytes_.insert(bytes_.end(), data.begin(), data.end());
    return *this;
  }
  // A TXT character-string: length octet and bytes.
  MessageBuilder& character_string(std::string_view s) {
    bytes_.push_back(static_cast<uint8_t>(s.size()));
    return raw(s);
  }

  size_t size() const { return bytes_.size(); }
  const Bytes& bytes() const { return bytes_; }
  Bytes& mutable_bytes() { return bytes_; }

 private:
  Bytes bytes_;
  size_t rdlength_at_ = 0;
};

}  // namespace mailgate::dns::testing
