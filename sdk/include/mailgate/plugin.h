/*
 * mailgate/plugin.h — the mailgate plugin ABI. Pure C, no dependencies.
 *
 * A plugin is a shared object that exports one function, mailgate_plugin_entry(). The
 * gateway calls it once after dlopen() with the host's ABI version and the host services
 * table; it returns a descriptor naming the plugin and its stage callbacks.
 *
 * Versioning. MG_ABI_VERSION is (major << 16) | minor. The host refuses a plugin whose
 * major differs from its own, with an error naming the plugin and both versions. Within a
 * major, structs only grow at the end and carry their own struct_size, so an older plugin
 * runs on a newer host and a newer plugin can see (via host->struct_size) which services the
 * host offers. Nothing is ever removed or reordered within a major. Across majors, the first
 * members of mg_host (struct_size, abi_version, log) and of mg_plugin (struct_size,
 * abi_version, name) never move, so a host and a plugin of different majors can still name
 * each other in the error that refuses the pair.
 *
 * Threads. Callbacks of one session are never called concurrently, but different sessions
 * call the same plugin concurrently from several threads: the state returned by create()
 * must be thread-safe. A plugin with MG_PLUGIN_NONBLOCKING runs on the gateway's I/O
 * threads and must never block (no DNS through the host, no file or network I/O); any other
 * plugin runs on a bounded worker pool and may block up to its configured timeout.
 *
 * Ownership. Unless a comment says otherwise: strings the host passes to a callback or
 * returns from a service are owned by the host and valid until that callback returns;
 * strings the plugin passes to a service are copied by the host before the call returns.
 */
#ifndef MAILGATE_PLUGIN_H
#define MAILGATE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MG_ABI_VERSION_MAJOR 1
#define MG_ABI_VERSION_MINOR 5
#define MG_ABI_VERSION ((uint32_t)((MG_ABI_VERSION_MAJOR << 16) | MG_ABI_VERSION_MINOR))
#define MG_ABI_MAJOR(v) ((uint32_t)(v) >> 16)
#define MG_ABI_MINOR(v) ((uint32_t)(v)&0xFFFFu)

/* The name of the one symbol a plugin exports. */
#define MG_PLUGIN_ENTRY_SYMBOL "mailgate_plugin_entry"

/* Stages of an SMTP transaction, in the order they happen (the milter stages). */
typedef enum mg_stage {
  MG_STAGE_CONNECT = 0, /* client connected, before the greeting */
  MG_STAGE_HELO = 1,    /* HELO/EHLO received */
  MG_STAGE_MAIL = 2,    /* MAIL FROM received, before it is forwarded */
  MG_STAGE_RCPT = 3,    /* each RCPT TO, before it is forwarded */
  MG_STAGE_DATA = 4,    /* DATA received, before 354 */
  MG_STAGE_HEADER = 5,  /* each header field of the message */
  MG_STAGE_EOH = 6,     /* end of the header block */
  MG_STAGE_BODY = 7,    /* each chunk of the body */
  MG_STAGE_EOM = 8,     /* end of message, before it is relayed */
  MG_STAGE_RESET = 9,   /* transaction ended (RSET, after a message, or abort) */
  MG_STAGE_CLOSE = 10,  /* connection closing */
  MG_STAGE_COUNT = 11
} mg_stage;

/* What a callback decides. The set is closed. */
typedef enum mg_action {
  MG_FAILED = -1,  /* the plugin could not decide (error, exception): the host applies the
                    * plugin's configured fail mode (open = CONTINUE, tempfail = 451 4.3.0) */
  MG_CONTINUE = 0, /* no objection: the next plugin runs */
  MG_ACCEPT = 1,   /* accept for this stage: the rest of the chain is skipped for it */
  MG_TEMPFAIL = 2, /* refuse for now (4xx); set_reply() may give code and text */
  MG_REJECT = 3,   /* refuse (5xx); set_reply() may give code and text */
  MG_DISCARD = 4,  /* accept the message and drop it silently (logged); from MAIL on */
  MG_RETRY_BLOCKING = 5 /* ABI 1.5, only from a try on the I/O thread (MG_PLUGIN_TRY_INLINE):
                         * a DNS answer was not cached; call me again where I may block */
} mg_action;

/* Log levels for host->log(). */
typedef enum mg_log_level {
  MG_LOG_DEBUG = 0,
  MG_LOG_INFO = 1,
  MG_LOG_WARNING = 2,
  MG_LOG_ERROR = 3
} mg_log_level;

/* Descriptor flags. */
#define MG_PLUGIN_NONBLOCKING 0x1u /* callbacks never block: run inline on I/O threads */
/* Added in ABI 1.4 (an older host ignores them and runs the plugin on its worker pool). A
 * plugin that blocks only sometimes says when, so the host can spare the two thread hops a
 * worker pool call costs:
 * - MG_PLUGIN_BLOCKS_ONLY_IN_STORE: the callbacks block only inside the host's shared-store
 *   services (counter_add, rate_limit, record_get, record_set) and never do DNS or I/O of
 *   their own; with the store in memory (no Redis) the host runs them on the I/O thread.
 * - MG_PLUGIN_INLINE_STAGE(stage): that stage's callback never blocks (no DNS, no store, no
 *   I/O), though the plugin's other callbacks may; the host runs it on the I/O thread. Or
 *   several: MG_PLUGIN_INLINE_STAGE(MG_STAGE_RCPT) | MG_PLUGIN_INLINE_STAGE(MG_STAGE_EOM).
 * A callback the host runs this way gets MG_DNS_ERROR from dns_query, like a non-blocking
 * plugin's. A blocking neighbour may still take it along to the worker pool (so one job
 * covers every blocking plugin of the stage): callbacks must be thread-safe either way. */
#define MG_PLUGIN_BLOCKS_ONLY_IN_STORE 0x2u
#define MG_PLUGIN_INLINE_STAGE(stage) (0x100u << (unsigned)(stage))
/* Added in ABI 1.5 (an older host ignores it). MG_PLUGIN_TRY_INLINE: a plugin that blocks
 * only to wait for DNS, whose answers are mostly in the resolver's cache, lets the host try
 * each blocking callback on the I/O thread first. In such a try dns_query answers from the
 * cache alone and gives MG_DNS_WOULDBLOCK for a name it would have to ask the network for;
 * the callback then returns MG_RETRY_BLOCKING, having changed nothing (no reply, header,
 * envelope, symbol, score, data slot or store write, no log line it would write again), and
 * the host calls it once more on the worker pool, where dns_query resolves. A callback that
 * got no MG_DNS_WOULDBLOCK decides as usual, so a cache hit costs no thread hop. The host
 * tries only while its shared store is in memory (store services never block then), and
 * in every stage but HEADER and BODY (called once per field or chunk). A callback that got
 * MG_DNS_WOULDBLOCK and decides anyway is taken at its word. */
#define MG_PLUGIN_TRY_INLINE 0x4u

/* DNS record types for host->dns_query(). */
typedef enum mg_dns_type {
  MG_DNS_A = 1,
  MG_DNS_PTR = 12,
  MG_DNS_MX = 15,
  MG_DNS_TXT = 16,
  MG_DNS_AAAA = 28
} mg_dns_type;

/* Outcome of a DNS query. */
typedef enum mg_dns_status {
  MG_DNS_OK = 0,       /* answers present */
  MG_DNS_NXDOMAIN = 1, /* the name does not exist */
  MG_DNS_NODATA = 2,   /* the name exists, no record of that type */
  MG_DNS_TEMPFAIL = 3, /* timeout or SERVFAIL: try later */
  MG_DNS_ERROR = 4,    /* bad query or resolver unusable */
  MG_DNS_WOULDBLOCK = 5 /* ABI 1.5, only in a try (MG_PLUGIN_TRY_INLINE): not in the cache */
} mg_dns_status;

/* One answer record as text: A/AAAA an address, PTR/MX a name ("10 mx.example." for MX is
 * split: preference in `preference`, name in `text`), TXT the strings concatenated.
 * Plugins index arrays of it, so unlike the other structs it can never grow: its layout is
 * fixed for the whole major version. */
typedef struct mg_dns_record {
  const char *text;
  uint16_t preference; /* MX only */
  uint32_t ttl;
} mg_dns_record;

/* A query's result. Owned by the host; release it with host->dns_free(). */
typedef struct mg_dns_result {
  uint32_t struct_size;
  mg_dns_status status;
  int secure; /* 1 when DNSSEC-validated */
  size_t count;
  const mg_dns_record *records;
} mg_dns_result;

/* Items of the session and transaction readable with host->get(). The value is a string
 * owned by the host, valid until the callback returns; NULL when not known yet. */
typedef enum mg_item {
  MG_ITEM_SESSION_ID = 0,     /* "6A1F00000001" */
  MG_ITEM_CLIENT_ADDR = 1,    /* "192.0.2.1" or "2001:db8::1" */
  MG_ITEM_CLIENT_PORT = 2,    /* "40522" */
  MG_ITEM_CLIENT_NAME = 3,    /* verified reverse name, or "unknown" */
  MG_ITEM_LOCAL_ADDR = 4,     /* listener address "127.0.0.1:25" */
  MG_ITEM_PROFILE = 5,        /* listener profile: "inbound", "submission", ... */
  MG_ITEM_HELO = 6,           /* HELO/EHLO argument */
  MG_ITEM_PROTOCOL = 7,       /* "SMTP", "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA" */
  MG_ITEM_TLS_VERSION = 8,    /* "TLSv1.3"; NULL without TLS */
  MG_ITEM_TLS_CIPHER = 9,     /* "TLS_AES_256_GCM_SHA384"; NULL without TLS */
  MG_ITEM_AUTH_USER = 10,     /* authenticated user; NULL when not authenticated */
  MG_ITEM_SENDER = 11,        /* MAIL FROM address without <>, "" for the null sender */
  MG_ITEM_TX_ID = 12,         /* transaction id "6A1F00000001.1" */
  MG_ITEM_HOSTNAME = 13,      /* the gateway's own host name */
  MG_ITEM_CURRENT_RCPT = 14,  /* in the RCPT stage: the recipient being checked */
  MG_ITEM_COUNT = 15
} mg_item;

/* Opaque handle on one session (and its current transaction) as seen by one plugin. Valid
 * only during the callback it is passed to. */
typedef struct mg_session mg_session;

/* Services the host offers. Append-only within a major version: check struct_size (or
 * MG_HOST_HAS) before using a member added after 1.0. */
typedef struct mg_host {
  uint32_t struct_size;
  uint32_t abi_version;

  /* Logging. `s` may be NULL (outside a session). The line is prefixed with the plugin's
   * name and the session id. With s == NULL the host can name the plugin only while it is
   * running that plugin's create() or destroy(); lines logged from a plugin's own threads
   * should name the plugin in the message. */
  void (*log)(mg_session *s, mg_log_level level, const char *message);

  /* The reply for a TEMPFAIL or REJECT (or the greeting's refusal). code: 4xx or 5xx matching
   * the action (a mismatch is corrected to 451/550); enhanced: "5.7.1" or NULL; text: one
   * line, no CR/LF (they are replaced). Without it the host uses a generic reply. */
  void (*set_reply)(mg_session *s, int code, const char *enhanced, const char *text);

  /* Session and transaction accessors. */
  const char *(*get)(mg_session *s, mg_item item);
  /* MAIL FROM parameter by keyword ("SIZE", "BODY", "SMTPUTF8"); "" for a keyword without a
   * value, NULL when absent. */
  const char *(*mail_param)(mg_session *s, const char *keyword);
  size_t (*rcpt_count)(mg_session *s);
  const char *(*rcpt_at)(mg_session *s, size_t index); /* accepted recipients so far */
  /* Header fields of the message (from the EOH stage on), in order, names as written, values
   * unfolded-as-received (without the CRLF of the last line). */
  size_t (*header_count)(mg_session *s);
  /* Returns 0 and sets *name and *value, or -1 when index >= header_count(). */
  int (*header_at)(mg_session *s, size_t index, const char **name, const char **value);
  /* Reads the message body (after the header block) from the EOM stage on; returns bytes
   * read, 0 at the end, -1 on error. */
  int64_t (*body_read)(mg_session *s, uint64_t offset, void *buf, size_t len);
  uint64_t (*message_size)(mg_session *s);

  /* Score symbols: name ([A-Z0-9_]+), score, detail (free text, may be NULL). Adding a
   * symbol twice replaces it. score() is the sum so far for this message. */
  void (*add_symbol)(mg_session *s, const char *name, double score, const char *detail);
  double (*score)(mg_session *s);
  size_t (*symbol_count)(mg_session *s);
  /* Returns 0 and sets the outputs (detail may be set to NULL), or -1 when out of range. */
  int (*symbol_at)(mg_session *s, size_t index, const char **name, double *score,
                   const char **detail);

  /* Header edits, applied to the relayed message (from EOH or EOM only; -1 otherwise).
   * add appends; insert puts the field at `index` (0 = top); remove deletes the
   * `occurrence`-th (1-based) field with that name, or all of them when occurrence is 0;
   * change replaces the value of the `occurrence`-th field. */
  int (*header_add)(mg_session *s, const char *name, const char *value);
  int (*header_insert)(mg_session *s, size_t index, const char *name, const char *value);
  int (*header_remove)(mg_session *s, const char *name, size_t occurrence);
  int (*header_change)(mg_session *s, const char *name, size_t occurrence, const char *value);

  /* Envelope edits. set_sender from MAIL on; rcpt_rewrite in the RCPT stage replaces the
   * recipient being checked (before it is forwarded); rcpt_add/rcpt_remove from RCPT on.
   * Addresses without <>. Return 0, or -1 when not allowed in this stage or malformed. */
  int (*set_sender)(mg_session *s, const char *address);
  int (*rcpt_rewrite)(mg_session *s, const char *address);
  int (*rcpt_add)(mg_session *s, const char *address);
  int (*rcpt_remove)(mg_session *s, const char *address);

  /* Per-transaction data for the calling plugin: one pointer, freed with free_fn (when not
   * NULL) at the end of the transaction — after the RESET callbacks ran — or, when
   * session_scope is 1, at the end of the session after the CLOSE callbacks ran. Setting a
   * slot again frees the previous pointer first. */
  void (*set_data)(mg_session *s, int session_scope, void *data, void (*free_fn)(void *));
  void *(*get_data)(mg_session *s, int session_scope);

  /* DNS through the host's caching resolver. Blocking: only for plugins without
   * MG_PLUGIN_NONBLOCKING (others get MG_DNS_ERROR); in a try on the I/O thread
   * (MG_PLUGIN_TRY_INLINE) it answers from the cache or gives MG_DNS_WOULDBLOCK. Free the result with dns_free. `s` may
   * be NULL (a query from the plugin's own threads, which must not keep a session pointer). */
  mg_dns_result *(*dns_query)(mg_session *s, const char *name, mg_dns_type type);
  void (*dns_free)(mg_dns_result *result);

  /* Read-only policy lookups in the current snapshot. `table` and `key` as documented in
   * docs/plugin-guide.md (e.g. table "local_domains", key "example.com"). Writes the value
   * (NUL-terminated, truncated to buflen) and returns 1 when found, 0 when not. */
  int (*policy_lookup)(const char *table, const char *key, char *buf, size_t buflen);

  /* Shared counters: adds delta to key within a window of window_ms milliseconds (0 = no
   * expiry) and returns the new value in *value. Returns 0, or -1 when the counter store is
   * unavailable. */
  int (*counter_add)(const char *key, int64_t delta, uint32_t window_ms, int64_t *value);

  /* ---- Added in ABI 1.1 (check with MG_HOST_HAS) ---- */

  /* The header field at `index` (the indexing of header_at) exactly as it will be relayed:
   * name, colon, value with its folding, and the final CRLF — the bytes as received for a
   * field no plugin touched, "Name: value" CRLF for one a plugin added or changed. Sets *raw
   * (not NUL-terminated) and *len; returns 0, or -1 when index >= header_count(). */
  int (*header_raw_at)(mg_session *s, size_t index, const char **raw, size_t *len);

  /* Authentication results (RFC 8601 "resinfo") recorded by the plugins that check (SPF,
   * DKIM, DMARC, ...) for the plugins that read them (DMARC, the Authentication-Results
   * writer). method: "spf", "dkim", "dmarc", "iprev", "auth", ...; result: the method's
   * keyword ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror",
   * "policy"); reason: free text or NULL; properties: space-separated ptype.property=value
   * pairs or NULL ("smtp.mailfrom=example.org", "header.d=example.com header.s=sel1").
   * Results added before MAIL last for the session, later ones until the transaction ends.
   * Returns 0, or -1 for a bad argument (method or result empty or not [a-z0-9_.-]+; CR, LF
   * or ';' anywhere). Results are listed in the order they were added, session ones first. */
  int (*auth_result_add)(mg_session *s, const char *method, const char *result,
                         const char *reason, const char *properties);
  size_t (*auth_result_count)(mg_session *s);
  /* Sets the outputs (reason and properties to NULL when there are none); returns 0, or -1
   * when index >= auth_result_count(). */
  int (*auth_result_at)(mg_session *s, size_t index, const char **method, const char **result,
                        const char **reason, const char **properties);

  /* ---- Added in ABI 1.2 (check with MG_HOST_HAS) ----
   * Time, rate limits and expiring records, kept in the gateway's store: this process's memory
   * (the default), or a Redis server that every gateway pointed at it shares (--redis), so
   * limits hold across gateways. Keys are free text up to 512 bytes, in one namespace shared by
   * all plugins: start them with your plugin's name. Rate states, records and counter_add()
   * counters are separate namespaces. With Redis a call blocks for at most --redis_timeout_ms:
   * call these from plugins without MG_PLUGIN_NONBLOCKING. A call returns -1 when the store is
   * unavailable (Redis down, stopped or slow); the plugin then applies its fail mode, by
   * default the one the admin chose for the gateway (store_fail_mode()). */

  /* The gateway's clock, milliseconds since the Unix epoch. Compare times kept in records with
   * this one (not the system clock): tests move it, and so stay exact. */
  uint64_t (*now_ms)(void);
  /* One step of the Generic Cell Rate Algorithm for `key`: `rate` units per `period_ms`, at
   * most `burst` at once (0 = rate). Returns 1 when `cost` units may pass now (and spends them
   * unless dry_run), 0 when limited (then *retry_after_ms, when not NULL, says how long until
   * the same cost would pass), -1 when the store is unavailable or rate/period_ms is 0. A cost
   * above the burst counts as the burst (it passes only when nothing was spent recently).
   * Dry runs let a plugin ask several limits and spend on each only when all of them allow. */
  int (*rate_limit)(const char *key, uint32_t rate, uint32_t period_ms, uint32_t burst,
                    uint32_t cost, int dry_run, uint32_t *retry_after_ms);
  /* The live record at `key`: returns 1 and writes its value (NUL-terminated, truncated to
   * buflen) when there is one, 0 when there is none (or it expired), -1 when unavailable. */
  int (*kv_get)(const char *key, char *buf, size_t buflen);
  /* Writes `value` (up to 64 KiB) at `key` for ttl_ms milliseconds (0 = no expiry). With
   * only_if_absent, writes only when no live record is there. Returns 1 when written, 0 when
   * only_if_absent found a record, -1 when unavailable (or the key or value is too long). */
  int (*kv_set)(const char *key, const char *value, uint32_t ttl_ms, int only_if_absent);
  /* What the admin wants plugins to do when the calls above return -1 (--redis_fail_mode):
   * MG_STORE_FAIL_OPEN (go on without the check) or MG_STORE_FAIL_TEMPFAIL (answer 4xx). */
  int (*store_fail_mode)(void);

  /* ---- Added in ABI 1.3 (check with MG_HOST_HAS) ----
   * Body replacement and quarantine, EOM stage only (-1 elsewhere). Both are applied to the
   * relayed message after the chain's EOM stage, unless the message is refused or discarded.
   * body_read() keeps returning the body as received. */

  /* Replaces the message body (everything after the header block and its empty line) with
   * `data`, `len` octets with CRLF line endings; the host dot-stuffs it when relaying. The
   * first call a plugin makes in the EOM stage replaces the body (and any replacement an
   * earlier plugin made); its later calls in that stage append, so a body can be given in
   * chunks. len 0 with a first call gives an empty body. Returns 0, or -1 outside the EOM
   * stage, for data NULL with len > 0, or when the replacement would exceed the gateway's
   * maximum message size (the replacement made so far is then kept as it was). */
  int (*body_replace)(mg_session *s, const char *data, size_t len);
  /* Quarantines the message: it is still accepted and relayed, but held. In proxy mode the
   * host adds the header field "X-Mailgate-Quarantine: <reason>" at the top of the relayed
   * message (the backend holds it with a header_checks rule, see docs/deployment.md); in
   * milter mode the MTA is asked to quarantine it (smfi_quarantine). reason: one line, not
   * empty (CR and LF are replaced). A later call replaces the reason. Returns 0, or -1 outside
   * the EOM stage or for a NULL or empty reason. */
  int (*quarantine)(mg_session *s, const char *reason);
} mg_host;

/* Values of host->store_fail_mode(). */
#define MG_STORE_FAIL_OPEN 0
#define MG_STORE_FAIL_TEMPFAIL 1

/* True when the host table has member `member` (added in a later minor version). */
#define MG_HOST_HAS(host, member) \
  ((host)->struct_size >= offsetof(mg_host, member) + sizeof((host)->member))

/* What a plugin returns from mailgate_plugin_entry(). Static storage in the plugin. */
typedef struct mg_plugin {
  uint32_t struct_size;  /* sizeof(mg_plugin) as the plugin was built */
  uint32_t abi_version;  /* MG_ABI_VERSION as the plugin was built */
  const char *name;      /* unique, [a-z0-9_-]+ */
  const char *version;   /* the plugin's own version, free text */
  uint32_t flags;        /* MG_PLUGIN_* */

  /* Creates the plugin's state from its settings (JSON text from the policy database, "{}"
   * when none). On error returns NULL and writes a message into err (errlen bytes). */
  void *(*create)(const mg_host *host, const char *settings_json, char *err, size_t errlen);
  /* Destroys the state (at shutdown or when a new policy replaces the chain). */
  void (*destroy)(void *state);

  /* Stage callbacks; NULL for stages the plugin does not need. */
  mg_action (*on_connect)(void *state, mg_session *s);
  mg_action (*on_helo)(void *state, mg_session *s, const char *helo);
  mg_action (*on_mail)(void *state, mg_session *s, const char *sender);
  mg_action (*on_rcpt)(void *state, mg_session *s, const char *recipient);
  mg_action (*on_data)(void *state, mg_session *s);
  mg_action (*on_header)(void *state, mg_session *s, const char *name, const char *value);
  mg_action (*on_eoh)(void *state, mg_session *s);
  mg_action (*on_body)(void *state, mg_session *s, const unsigned char *chunk, size_t len);
  mg_action (*on_eom)(void *state, mg_session *s);
  void (*on_reset)(void *state, mg_session *s);
  void (*on_close)(void *state, mg_session *s);
} mg_plugin;

/* The entry point every plugin exports (declare it with MG_PLUGIN_EXPORT). Returns the
 * descriptor, or NULL when the plugin cannot work with this host. */
typedef const mg_plugin *(*mg_plugin_entry_fn)(uint32_t host_abi_version, const mg_host *host);

#if defined(__GNUC__)
#define MG_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define MG_PLUGIN_EXPORT
#endif

/* The entry point's prototype: a plugin's definition is checked against it and stays exported
 * even when the plugin is built with -fvisibility=hidden. The host never calls it by name; it
 * looks MG_PLUGIN_ENTRY_SYMBOL up with dlsym(). */
MG_PLUGIN_EXPORT const mg_plugin *mailgate_plugin_entry(uint32_t host_abi_version,
                                                        const mg_host *host);

#ifdef __cplusplus
}
#endif

#endif /* MAILGATE_PLUGIN_H */
