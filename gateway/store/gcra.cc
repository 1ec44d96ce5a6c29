// store/gcra.cc — see gcra.h.
#include "store/gcra.h"

#include <algorithm>

namespace mailgate::store::gcra {

std::optional<Params> params(const RateSpec& spec, uint32_t cost) {
  if (spec.rate == 0 || spec.period_ms == 0) return std::nullopt;
  const int64_t interval = std::max<int64_t>(1, int64_t{spec.period_ms} * 1000 / spec.rate);
  const int64_t burst = spec.burst == 0 ? spec.rate : spec.burst;
  const int64_t units = std::clamp<int64_t>(cost, 1, burst);
  return Params{interval * units, interval * burst};
}

Step step(int64_t now_us, std::optional<int64_t> stored_tat_us, const Params& p) {
  const int64_t tat = std::max(now_us, stored_tat_us.value_or(now_us));
  const int64_t new_tat = tat + p.increment_us;
  const int64_t allow_at = new_tat - p.tolerance_us;
  Step out;
  if (now_us < allow_at) {
    out.decision.allowed = false;
    const int64_t wait_ms = (allow_at - now_us + 999) / 1000;
    out.decision.retry_after_ms = static_cast<uint32_t>(std::min<int64_t>(wait_ms, UINT32_MAX));
    out.new_tat_us = tat;
    return out;
  }
  out.decision.allowed = true;
  out.new_tat_us = new_tat;
  return out;
}

}  // namespace mailgate::store::gcra
