// store/redis_scripts.h — the Lua scripts RedisStore runs server-side (EVALSHA, EVAL on
// NOSCRIPT), one per kind of state, so each decision is one atomic step even when several
// gateways share the server. "Now" comes from the calling gateway's clock (ARGV[1]), never
// from Redis, so tests that move a ManualClock stay exact. Redis' own key expiry (PX) is only a
// backstop that frees memory; the stored expiry decides.
// Keys: "mg:c:<key>" counter (hash: s = window start ms, v = sum), "mg:r:<key>" rate (string:
// TAT in microseconds), "mg:k:<key>" record (string "<expires ms or 0>:<value>").
// Must not: read Redis' clock (TIME) or touch keys other than KEYS[1].
#pragma once

namespace mailgate::store::scripts {

// KEYS[1]; ARGV: now_ms, delta, window_ms (0 = no expiry). Returns the new sum.
inline constexpr const char* kCounterAdd = R"lua(
local now = tonumber(ARGV[1])
local win = tonumber(ARGV[3])
local start = tonumber(redis.call('HGET', KEYS[1], 's'))
if start == nil or (win > 0 and now - start >= win) then
  redis.call('HSET', KEYS[1], 's', ARGV[1], 'v', ARGV[2])
  if win > 0 then redis.call('PEXPIRE', KEYS[1], win) else redis.call('PERSIST', KEYS[1]) end
  return tonumber(ARGV[2])
end
return redis.call('HINCRBY', KEYS[1], 'v', ARGV[2])
)lua";

// KEYS[1]; ARGV: now_us, increment_us, tolerance_us, dry_run (0/1). Returns {allowed (0/1),
// retry_after_ms}. The same arithmetic as store/gcra.cc.
inline constexpr const char* kRate = R"lua(
local now = tonumber(ARGV[1])
local inc = tonumber(ARGV[2])
local tol = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + inc
local allow_at = new_tat - tol
if now < allow_at then
  return {0, math.floor((allow_at - now + 999) / 1000)}
end
if ARGV[4] ~= '1' then
  local ttl = math.floor((new_tat - now + 999) / 1000)
  if ttl < 1 then ttl = 1 end
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl)
end
return {1, 0}
)lua";

// KEYS[1]; ARGV: now_ms. Returns the live value or nil.
inline constexpr const char* kGet = R"lua(
local v = redis.call('GET', KEYS[1])
if not v then return false end
local sep = string.find(v, ':', 1, true)
if not sep then return false end
local exp = tonumber(string.sub(v, 1, sep - 1))
if exp ~= 0 and exp <= tonumber(ARGV[1]) then return false end
return string.sub(v, sep + 1)
)lua";

// KEYS[1]; ARGV: now_ms, ttl_ms (0 = none), value, only_if_absent (0/1). Returns 1 stored,
// 0 when only_if_absent found a live record.
inline constexpr const char* kSet = R"lua(
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
if ARGV[4] == '1' then
  local v = redis.call('GET', KEYS[1])
  if v then
    local sep = string.find(v, ':', 1, true)
    local exp = sep and tonumber(string.sub(v, 1, sep - 1)) or 1
    if exp == 0 or exp > now then return 0 end
  end
end
if ttl > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', now + ttl) .. ':' .. ARGV[3], 'PX', ttl)
else
  redis.call('SET', KEYS[1], '0:' .. ARGV[3])
end
return 1
)lua";

}  // namespace mailgate::store::scripts
