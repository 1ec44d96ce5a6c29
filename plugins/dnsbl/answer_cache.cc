// plugins/dnsbl/answer_cache.cc — see answer_cache.h.
#include "answer_cache.h"

namespace mailgate::dnsbl {

std::optional<CachedAnswer> AnswerCache::get(const std::string& name, std::uint64_t now_ms) {
  std::lock_guard lock(mu_);
  auto it = index_.find(name);
  if (it == index_.end()) return std::nullopt;
  if (it->second->expires_ms <= now_ms) {
    lru_.erase(it->second);
    index_.erase(it);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->answer;
}

void AnswerCache::put(const std::string& name, CachedAnswer answer, std::uint64_t expires_ms) {
  if (max_entries_ == 0) return;
  std::lock_guard lock(mu_);
  if (auto it = index_.find(name); it != index_.end()) {
    it->second->answer = std::move(answer);
    it->second->expires_ms = expires_ms;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  while (lru_.size() >= max_entries_) {
    index_.erase(lru_.back().name);
    lru_.pop_back();
  }
  lru_.push_front(Entry{name, std::move(answer), expires_ms});
  index_.emplace(name, lru_.begin());
}

std::size_t AnswerCache::size() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

}  // namespace mailgate::dnsbl
