// dns/answer_cache.cc — see answer_cache.h.
#include "dns/answer_cache.h"

#include <algorithm>

namespace mailgate::dns {

std::string AnswerCache::key(std::string_view name, RRType type) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string k;
  k.reserve(name.size() + 6);
  for (char c : name) k.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  k.push_back('/');
  k += std::to_string(static_cast<unsigned>(type));
  return k;
}

std::optional<Result> AnswerCache::get(std::string_view name, RRType type, Clock::time_point now) {
  const std::string k = key(name, type);
  std::lock_guard lock(mu_);
  auto it = entries_.find(k);
  if (it == entries_.end()) return std::nullopt;
  if (now >= it->second.expires) {
    entries_.erase(it);
    return std::nullopt;
  }
  Result r = it->second.result;
  const auto age = std::chrono::duration_cast<std::chrono::seconds>(now - it->second.stored);
  const uint32_t spent = static_cast<uint32_t>(age.count());
  r.ttl -= std::min(r.ttl, spent);
  for (Record& rec : r.records) rec.ttl -= std::min(rec.ttl, spent);
  return r;
}

void AnswerCache::put(std::string_view name, RRType type, const Result& result,
                      Clock::time_point now) {
  const bool final_answer = result.status == Status::kOk || result.status == Status::kNxDomain ||
                            result.status == Status::kNoData;
  if (!final_answer || result.ttl == 0 || capacity_ == 0) return;
  std::string k = key(name, type);
  std::lock_guard lock(mu_);
  if (entries_.size() >= capacity_ && entries_.find(k) == entries_.end()) {
    std::erase_if(entries_, [now](const auto& kv) { return now >= kv.second.expires; });
    if (entries_.size() >= capacity_) entries_.clear();
  }
  entries_[std::move(k)] = Entry{result, now, now + std::chrono::seconds(result.ttl)};
}

size_t AnswerCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace mailgate::dns
