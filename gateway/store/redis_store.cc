// store/redis_store.cc — see redis_store.h.
#include "store/redis_store.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>

#include "log/log.h"
#include "store/gcra.h"
#include "store/redis_scripts.h"

namespace mailgate::store {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string sha1_hex(std::string_view text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  std::string hex;
  for (unsigned char b : digest) hex += fmt::format("{:02x}", b);
  return hex;
}

bool is_error(const redisReply* r, std::string_view prefix = {}) {
  if (r->type != REDIS_REPLY_ERROR) return false;
  return prefix.empty() || std::string_view(r->str, r->len).starts_with(prefix);
}

}  // namespace

void RedisStore::ContextDeleter::operator()(redisContext* c) const { redisFree(c); }

// One script: its text and the SHA1 that EVALSHA names it by.
class RedisStore::Script {
 public:
  explicit Script(const char* text) : text_(text), sha_(sha1_hex(text)) {}
  const std::string& text() const { return text_; }
  const std::string& sha() const { return sha_; }

 private:
  std::string text_;
  std::string sha_;
};

// A pooled connection for one call; goes back to the pool (or is closed) when done.
class RedisStore::Lease {
 public:
  explicit Lease(RedisStore& store) : store_(store), ctx_(store.acquire()) {}
  ~Lease() {
    if (ctx_) store_.release(std::move(ctx_), healthy_);
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  explicit operator bool() const { return ctx_ != nullptr; }

  // EVALSHA, then EVAL when the server does not know the script. nullptr when unavailable
  // (I/O error, timeout) or when Redis answered an error (logged).
  Reply eval(const Script& script, const std::string& key, const std::vector<std::string>& args) {
    Reply r = command("EVALSHA", script.sha(), key, args);
    if (r && is_error(r.get(), "NOSCRIPT")) r = command("EVAL", script.text(), key, args);
    if (!r) {
      healthy_ = false;
      MG_LOG_WARNING("redis {}: {}", store_.describe(),
                     ctx_->errstr[0] != 0 ? ctx_->errstr : "no reply");
      return nullptr;
    }
    if (is_error(r.get())) {
      MG_LOG_ERROR("redis {}: script error: {}", store_.describe(), std::string(r->str, r->len));
      return nullptr;
    }
    return r;
  }

 private:
  Reply command(const char* verb, const std::string& script, const std::string& key,
                const std::vector<std::string>& args) {
    std::vector<const char*> argv = {verb, script.c_str(), "1", key.c_str()};
    std::vector<size_t> lens = {std::strlen(verb), script.size(), 1, key.size()};
    for (const std::string& a : args) {
      argv.push_back(a.c_str());
      lens.push_back(a.size());
    }
    void* raw =
        redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(), lens.data());
    return Reply(static_cast<redisReply*>(raw));
  }

  RedisStore& store_;
  Context ctx_;
  bool healthy_ = true;
};

RedisStore::RedisStore(RedisOptions options, const Clock& clock)
    : options_(std::move(options)),
      clock_(clock),
      counter_script_(std::make_unique<Script>(scripts::kCounterAdd)),
      rate_script_(std::make_unique<Script>(scripts::kRate)),
      get_script_(std::make_unique<Script>(scripts::kGet)),
      set_script_(std::make_unique<Script>(scripts::kSet)) {
  if (options_.pool_size == 0) options_.pool_size = 1;
}

RedisStore::~RedisStore() = default;

std::string RedisStore::describe() const {
  return fmt::format("{}:{}", options_.host, options_.port);
}

RedisStore::Context RedisStore::acquire() {
  const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  {
    std::unique_lock lock(mu_);
    for (;;) {
      if (std::chrono::steady_clock::now() < down_until_) return nullptr;
      if (!idle_.empty()) {
        Context c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
      if (open_ < options_.pool_size) break;
      if (freed_.wait_until(lock, deadline) == std::cv_status::timeout) return nullptr;
    }
    ++open_;
  }
  const timeval tv = to_timeval(options_.timeout);
  Context c(redisConnectWithTimeout(options_.host.c_str(), options_.port, tv));
  if (!c || c->err != 0 || redisSetTimeout(c.get(), tv) != REDIS_OK) {
    MG_LOG_WARNING("redis {}: cannot connect: {}; the store fail mode applies for {} ms",
                   describe(), c ? c->errstr : "out of memory", options_.retry_after.count());
    std::lock_guard lock(mu_);
    --open_;
    down_until_ = std::chrono::steady_clock::now() + options_.retry_after;
    freed_.notify_one();
    return nullptr;
  }
  redisEnableKeepAlive(c.get());
  return c;
}

void RedisStore::release(Context c, bool healthy) {
  std::lock_guard lock(mu_);
  if (healthy) {
    idle_.push_back(std::move(c));
  } else {
    c.reset();
    --open_;
    down_until_ = std::chrono::steady_clock::now() + options_.retry_after;
  }
  freed_.notify_one();
}

std::optional<int64_t> RedisStore::counter_add(std::string_view key, int64_t delta,
                                               uint32_t window_ms) {
  Lease lease(*this);
  if (!lease) return std::nullopt;
  Reply r = lease.eval(
      *counter_script_, fmt::format("mg:c:{}", key),
      {std::to_string(clock_.now_ms()), std::to_string(delta), std::to_string(window_ms)});
  if (!r || r->type != REDIS_REPLY_INTEGER) return std::nullopt;
  return static_cast<int64_t>(r->integer);
}

std::optional<RateDecision> RedisStore::rate(std::string_view key, const RateSpec& spec,
                                             uint32_t cost, bool dry_run) {
  auto p = gcra::params(spec, cost);
  if (!p) return RateDecision{false, 0};
  Lease lease(*this);
  if (!lease) return std::nullopt;
  Reply r = lease.eval(*rate_script_, fmt::format("mg:r:{}", key),
                       {std::to_string(clock_.now_ms() * 1000), std::to_string(p->increment_us),
                        std::to_string(p->tolerance_us), dry_run ? "1" : "0"});
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER)
    return std::nullopt;
  RateDecision d;
  d.allowed = r->element[0]->integer == 1;
  d.retry_after_ms =
      static_cast<uint32_t>(std::clamp<long long>(r->element[1]->integer, 0, UINT32_MAX));
  return d;
}

std::optional<std::optional<std::string>> RedisStore::get(std::string_view key) {
  Lease lease(*this);
  if (!lease) return std::nullopt;
  Reply r =
      lease.eval(*get_script_, fmt::format("mg:k:{}", key), {std::to_string(clock_.now_ms())});
  if (!r) return std::nullopt;
  if (r->type == REDIS_REPLY_NIL) return std::optional<std::string>();
  if (r->type != REDIS_REPLY_STRING) return std::nullopt;
  return std::optional<std::string>(std::string(r->str, r->len));
}

SetResult RedisStore::set(std::string_view key, std::string_view value, uint32_t ttl_ms,
                          bool only_if_absent) {
  Lease lease(*this);
  if (!lease) return SetResult::kUnavailable;
  Reply r = lease.eval(*set_script_, fmt::format("mg:k:{}", key),
                       {std::to_string(clock_.now_ms()), std::to_string(ttl_ms), std::string(value),
                        only_if_absent ? "1" : "0"});
  if (!r || r->type != REDIS_REPLY_INTEGER) return SetResult::kUnavailable;
  return r->integer == 1 ? SetResult::kStored : SetResult::kExists;
}

std::optional<std::string> RedisStore::ping() {
  const timeval tv = to_timeval(options_.timeout);
  Context c(redisConnectWithTimeout(options_.host.c_str(), options_.port, tv));
  if (!c) return std::string("out of memory");
  if (c->err != 0) return std::string(c->errstr);
  redisSetTimeout(c.get(), tv);
  Reply r(static_cast<redisReply*>(redisCommand(c.get(), "PING")));
  if (!r) return std::string(c->errstr[0] != 0 ? c->errstr : "no reply");
  if (is_error(r.get())) return std::string(r->str, r->len);
  return std::nullopt;
}

}  // namespace mailgate::store
