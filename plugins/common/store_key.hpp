// plugins/common/store_key.hpp — keys for the host's store (rate_limit, kv_get/kv_set,
// counter_add take keys of at most 512 bytes). A key built from addresses can be longer (two
// 254-byte addresses and a network); store_key() keeps short keys readable as they are and
// replaces the variable part of a long one by its 64-bit FNV-1a hash and length, which cannot
// collide by accident in practice. Header-only; pure functions.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace mailgate::plugins {

inline constexpr std::size_t kMaxStoreKey = 512;

// `prefix` + `variable`, or `prefix` + "#<hash>:<length>" when that would be too long.
inline std::string store_key(std::string_view prefix, std::string_view variable) {
  if (prefix.size() + variable.size() <= kMaxStoreKey)
    return std::string(prefix) + std::string(variable);
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : variable) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char tail[48];
  std::snprintf(tail, sizeof(tail), "#%016llx:%zu", static_cast<unsigned long long>(h),
                variable.size());
  return std::string(prefix) + tail;
}

}  // namespace mailgate::plugins
