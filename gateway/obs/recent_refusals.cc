// obs/recent_refusals.cc — see recent_refusals.h.
#include "obs/recent_refusals.h"

#include <chrono>

#include "obs/metrics.h"

namespace mailgate::obs {

void RecentRefusals::add(Refusal r) {
  std::lock_guard lock(mu_);
  if (ring_.size() < kCapacity) {
    ring_.push_back(std::move(r));
  } else {
    ring_[next_] = std::move(r);
  }
  next_ = (next_ + 1) % kCapacity;
}

std::vector<Refusal> RecentRefusals::list() const {
  std::lock_guard lock(mu_);
  std::vector<Refusal> out;
  out.reserve(ring_.size());
  // next_ is where the oldest entry is once the ring is full, else one past the newest.
  for (size_t i = 0; i < ring_.size(); ++i) {
    size_t at = (next_ + ring_.size() - 1 - i) % ring_.size();
    out.push_back(ring_[at]);
  }
  return out;
}

RecentRefusals& recent_refusals() {
  static RecentRefusals* r = new RecentRefusals();  // never destroyed (used by I/O threads)
  return *r;
}

void note_refusal(std::string_view stage, const std::string& session, const std::string& client,
                  const std::string& reply, const std::string& plugin, const std::string& detail) {
  // mailgate_refusals_total counts the gateway's own (plugin) refusals, not the backend's.
  if (!plugin.empty()) metrics().refusals[static_cast<size_t>(refusal_stage_from(stage))].inc();
  Refusal r;
  r.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  r.session = session;
  r.client = client;
  r.stage = std::string(stage);
  r.reply = reply;
  r.plugin = plugin.empty() ? std::string("(backend)") : plugin;
  r.detail = detail;
  recent_refusals().add(std::move(r));
}

}  // namespace mailgate::obs
