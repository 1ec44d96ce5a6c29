// dns/answer.h — turns what libunbound returns (struct ub_result) into a Result: status
// from the rcode and flags, records parsed from the answer packet with the bounds-checked
// reader in wire.h, and the TTL (records' smallest, or the SOA's for negative answers).
// Owns: no state; does not free the ub_result. Must not touch: the ub_ctx.
// Thread-safety: pure functions.
#pragma once

#include "dns/result.h"

struct ub_result;

namespace mailgate::dns {

// `err` is the error code libunbound passed with the result (0 when it has one);
// `result` may be null when err != 0.
Result make_result(int err, const ub_result* result, RRType type);

}  // namespace mailgate::dns
