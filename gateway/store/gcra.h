// store/gcra.h — the Generic Cell Rate Algorithm, as plain arithmetic shared by MemoryStore
// and (the same formulas in Lua) RedisStore, so both backends decide identically.
// Owns: the meaning of rate, period, burst and cost. State is one number per key: the
// theoretical arrival time (TAT) in microseconds since the epoch. Each unit of cost moves the
// TAT by the emission interval T = period / rate; a request passes when the new TAT is at most
// `burst` intervals ahead of now. So a limit of rate R per period P with burst B lets B pass at
// once, then one every P/R; after a quiet period P a full burst passes again.
// A cost above the burst is counted as the burst: it passes only with a full bucket and then
// empties it (a message larger than a bytes limit's burst is not refused forever).
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <optional>

#include "store/store.h"

namespace mailgate::store::gcra {

// The emission interval and tolerance (both in microseconds) of a spec; both >= 1.
struct Params {
  int64_t increment_us = 0;  // T * cost
  int64_t tolerance_us = 0;  // T * burst
};
// nullopt when rate or period is 0.
std::optional<Params> params(const RateSpec& spec, uint32_t cost);

struct Step {
  RateDecision decision;
  int64_t new_tat_us = 0;  // the state to store when allowed (and not a dry run)
};
// One decision at `now_us` with the stored TAT (nullopt = no state).
Step step(int64_t now_us, std::optional<int64_t> stored_tat_us, const Params& p);

}  // namespace mailgate::store::gcra
