-- schema.sql — the current full schema of mailgate's policy database (schema version 5).
--
-- This file is documentation and a reference: the gateway and `mailgatectl init` build a
-- database by applying db/migrations/NNNN_*.sql in order (embedded into the binaries at build
-- time), never from this file. A unit test (tests/unit/policy/migrations_test.cc) checks that
-- this file and the migrations describe the same tables, columns and indexes, so any schema
-- change is a new migration plus an edit here.
--
-- Editing rules:
-- * Every tunable lives here; the gateway re-reads the whole database into an immutable
--   in-memory snapshot when the file changes (PRAGMA data_version, or the file replaced) or on
--   SIGHUP. An edit that fails validation (bad CIDR, bad JSON, unknown plugin, ...) is refused:
--   the gateway keeps the previous snapshot and logs the table, the row and what is wrong.
-- * The CHECK constraints below are a first line of defence only; the C++ validation in
--   gateway/policy/ is the real gate (and also catches what SQL cannot express).
-- * Make a multi-statement edit inside BEGIN; ... COMMIT; so the gateway sees it at once.
-- * Names, domains and addresses are matched case-insensitively; mailgatectl stores them in
--   lower case.
-- * PRAGMA user_version holds the schema version; a gateway refuses a database whose version
--   is newer than the binary knows.

-- The plugin chain: which .so files run, in which order, for which listener profile.
CREATE TABLE plugins (
  -- Row id (stable; not the order).
  id         INTEGER PRIMARY KEY,
  -- Sort key of the chain: ascending, ties broken by name. mailgatectl keeps it dense (1..n);
  -- hand edits may use any integers (gaps are fine).
  position   INTEGER NOT NULL DEFAULT 0
             CHECK (typeof(position) = 'integer'),
  -- The chain entry's name, unique, [a-z0-9_-]{1,64}. It names the entry in logs and in
  -- plugin_settings; the loader also requires it to equal the name the .so declares.
  name       TEXT    NOT NULL UNIQUE
             CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^a-z0-9_-]*'),
  -- The shared object: an absolute path, or one relative to the gateway's plugin directory.
  -- Must end in ".so" (or carry a ".so." version suffix). Existence is checked by the loader.
  path       TEXT    NOT NULL CHECK (length(path) > 0),
  -- 1 = part of the chain, 0 = kept in the table but not loaded.
  enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  -- Listener profile this entry applies to (e.g. 'inbound', 'submission'), or '*' for all.
  -- Profile names are [A-Za-z0-9_.-]{1,64}.
  profile    TEXT    NOT NULL DEFAULT '*' CHECK (length(profile) > 0),
  -- The plugin's settings: a JSON object (strict RFC 8259, no duplicate keys), passed
  -- verbatim to the plugin's create() callback.
  settings   TEXT    NOT NULL DEFAULT '{}'
             CHECK (json_valid(settings) AND json_type(settings) = 'object'),
  -- What a failure of this plugin (error, exception, timeout) turns into: 'open' = carry on as
  -- if it had said CONTINUE; 'tempfail' = answer 451 4.3.0 so the sender retries.
  fail_mode  TEXT    NOT NULL DEFAULT 'tempfail' CHECK (fail_mode IN ('open', 'tempfail')),
  -- Time budget of one stage callback, in milliseconds (1..600000); exceeding it is a failure.
  timeout_ms INTEGER NOT NULL DEFAULT 5000
             CHECK (typeof(timeout_ms) = 'integer' AND timeout_ms BETWEEN 1 AND 600000)
);
CREATE INDEX plugins_by_position ON plugins (position, name);

-- Domains this gateway accepts mail for (anti-relay): a recipient in any other domain is
-- refused unless the client is in relay_networks or authenticated. Exact match only.
CREATE TABLE local_domains (
  -- A DNS name in LDH form (A-labels for IDNs), no trailing dot, e.g. 'example.com'.
  domain  TEXT PRIMARY KEY NOT NULL COLLATE NOCASE CHECK (length(domain) BETWEEN 1 AND 253),
  -- Free text for the admin.
  comment TEXT
);

-- Client networks allowed to relay to any domain (e.g. the office LAN, the webmail host).
CREATE TABLE relay_networks (
  -- An IPv4 or IPv6 network in CIDR form ('192.0.2.0/24', '2001:db8::/32') or a single
  -- address ('192.0.2.7' = /32, '2001:db8::7' = /128). Host bits must be zero. IPv4-mapped
  -- IPv6 clients (::ffff:a.b.c.d) are matched against the IPv4 entries.
  cidr    TEXT PRIMARY KEY NOT NULL COLLATE NOCASE CHECK (length(cidr) > 0),
  -- Free text for the admin.
  comment TEXT
);

-- Access rules, applied by the `access` plugin at their stage. Within a stage the most specific
-- matching rule wins: the longest CIDR prefix; an exact name before a '.suffix'; the longest
-- '.suffix'. Stages are separate tables in effect: a sender rule and a sender_domain rule can
-- both match one address, and the plugin decides which stage it consults first.
CREATE TABLE access (
  -- Row id; names the rule in logs, errors and `mailgatectl policy access remove ID`.
  id       INTEGER PRIMARY KEY,
  -- Where the rule applies: 'client' (connecting IP), 'helo' (HELO/EHLO name), 'sender' /
  -- 'recipient' (whole envelope address), 'sender_domain' / 'recipient_domain' (its domain).
  stage    TEXT    NOT NULL CHECK (stage IN ('client', 'helo', 'sender', 'sender_domain',
                                             'recipient', 'recipient_domain')),
  -- What the rule matches, by stage:
  --   client:            an IP address or CIDR network (as in relay_networks);
  --   helo:              an exact name ('mail.example.com', or an address literal
  --                      '[192.0.2.1]') or '.suffix' ('.example.com' = any name ending in it);
  --   sender, recipient: an exact address 'local@domain', compared case-insensitively;
  --   *_domain:          an exact domain, or '.suffix' for its subdomains only
  --                      ('.example.com' matches 'a.example.com', not 'example.com').
  -- (stage, pattern) is unique; '10.0.0.1' and '10.0.0.1/32' count as the same pattern.
  pattern  TEXT    NOT NULL COLLATE NOCASE CHECK (length(pattern) > 0),
  -- 'allow' (stop checking this stage, accept), 'deny' (5xx), 'tempfail' (4xx).
  action   TEXT    NOT NULL CHECK (action IN ('allow', 'deny', 'tempfail')),
  -- SMTP reply code; NULL = the default (deny: 554, tempfail: 450). Must be 5xx for deny and
  -- 4xx for tempfail; must be NULL for allow.
  code     INTEGER CHECK (code IS NULL OR (typeof(code) = 'integer' AND code BETWEEN 400 AND 599)),
  -- Enhanced status code 'C.S.D' (RFC 3463) whose class matches the code (5.x.x with 5xx);
  -- NULL = the default (5.7.1 / 4.7.1). Must be NULL for allow.
  enhanced TEXT,
  -- Reply text (printable ASCII, at most 400 characters); NULL = the default ('Access denied'
  -- / 'Try again later'). Must be NULL for allow.
  text     TEXT,
  -- Free text for the admin.
  comment  TEXT,
  UNIQUE (stage, pattern)
);

-- Per-plugin, per-domain settings overrides that plugins read through the SDK's
-- policy_lookup("plugin_settings", "plugin/domain"): the domain's row, else the '*' row.
CREATE TABLE plugin_settings (
  -- The chain entry (plugins.name) these settings belong to; must exist. Removing the plugin
  -- removes its rows (mailgatectl enables foreign keys; the snapshot refuses orphans).
  plugin   TEXT NOT NULL REFERENCES plugins (name) ON UPDATE CASCADE ON DELETE CASCADE,
  -- A domain (as in local_domains), or '*' for the plugin's default.
  domain   TEXT NOT NULL DEFAULT '*' COLLATE NOCASE CHECK (length(domain) > 0),
  -- A JSON object (same rules as plugins.settings).
  settings TEXT NOT NULL DEFAULT '{}'
           CHECK (json_valid(settings) AND json_type(settings) = 'object'),
  PRIMARY KEY (plugin, domain)
);

-- DKIM signing keys, used by the dkim_sign plugin (policy_lookup("dkim_keys", domain) gives a
-- domain's enabled keys, newest first) and written by `mailgatectl dkim keygen`. The matching
-- public key is published in DNS at <selector>._domainkey.<domain> (TXT "v=DKIM1; k=...; p=...").
CREATE TABLE dkim_keys (
  -- The signing domain (the d= tag; the From: header's domain): a DNS name in LDH form
  -- (A-labels for IDNs), no trailing dot, e.g. 'example.com'.
  domain      TEXT    NOT NULL COLLATE NOCASE
              CHECK (length(domain) BETWEEN 1 AND 253 AND domain NOT GLOB '*[^A-Za-z0-9.-]*'),
  -- The selector (the s= tag): one or more DNS labels ([A-Za-z0-9_-], dot-separated, each at
  -- most 63 characters), e.g. 'sel1' or '2026a.mail'. Unique per domain.
  selector    TEXT    NOT NULL COLLATE NOCASE
              CHECK (length(selector) BETWEEN 1 AND 253 AND selector NOT GLOB '*[^A-Za-z0-9._-]*'),
  -- The signing algorithm (the a= tag): 'rsa-sha256' (RSA key of 1024..4096 bits, RFC 8301)
  -- or 'ed25519-sha256' (RFC 8463). Must match the key in private_key.
  algorithm   TEXT    NOT NULL CHECK (algorithm IN ('rsa-sha256', 'ed25519-sha256')),
  -- The private key, PEM text ('-----BEGIN PRIVATE KEY-----' PKCS#8, or
  -- '-----BEGIN RSA PRIVATE KEY-----' PKCS#1), unencrypted. Anyone who can read the policy
  -- database can sign as the domain: keep the file mode tight.
  private_key TEXT    NOT NULL CHECK (private_key LIKE '-----BEGIN %'),
  -- 1 = sign with this key, 0 = kept (e.g. during a key rollover) but not used.
  enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  -- When the key was made, Unix seconds (UTC). Orders a domain's keys, newest first.
  created     INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
              CHECK (typeof(created) = 'integer' AND created >= 0),
  -- Free text for the admin.
  comment     TEXT,
  PRIMARY KEY (domain, selector)
);

-- Rate limits, read by the ratelimit plugin through policy_lookup("ratelimits", "*") (the
-- enabled rows as a JSON array) and edited with `mailgatectl ratelimit`. Each row limits one
-- kind of event per key with the GCRA: `rate` events per `period` seconds, at most `burst` at
-- once. When several rows apply to one event the tightest (longest wait) decides.
CREATE TABLE ratelimits (
  -- The limit's name, in replies and logs: [a-z0-9_.-]{1,64}.
  name        TEXT    PRIMARY KEY NOT NULL
              CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^a-z0-9_.-]*'),
  -- What is counted: 'connections' (at CONNECT), 'messages' (at MAIL), 'recipients' (at
  -- each RCPT), 'bytes' (the message size, at end of data).
  what        TEXT    NOT NULL CHECK (what IN ('connections', 'messages', 'recipients', 'bytes')),
  -- What the count is kept per: client_ip, helo, sender, sender_domain, recipient,
  -- recipient_domain, auth_user, or several joined by '+' ('client_ip+sender'). Connections
  -- take client_ip only; messages and bytes no recipient parts. A limit with auth_user applies
  -- to authenticated sessions only.
  key         TEXT    NOT NULL CHECK (length(key) > 0),
  -- client_ip is counted per network of this many leading bits (IPv4 1..32, IPv6 1..128).
  ipv4_prefix INTEGER NOT NULL DEFAULT 32
              CHECK (typeof(ipv4_prefix) = 'integer' AND ipv4_prefix BETWEEN 1 AND 32),
  ipv6_prefix INTEGER NOT NULL DEFAULT 64
              CHECK (typeof(ipv6_prefix) = 'integer' AND ipv6_prefix BETWEEN 1 AND 128),
  -- Events (bytes for 'bytes') allowed per period.
  rate        INTEGER NOT NULL CHECK (typeof(rate) = 'integer' AND rate BETWEEN 1 AND 1000000000),
  -- The period in seconds (at most 30 days).
  period      INTEGER NOT NULL CHECK (typeof(period) = 'integer' AND period BETWEEN 1 AND 2592000),
  -- How many may come at once; 0 = `rate` (a full period's worth).
  burst       INTEGER NOT NULL DEFAULT 0
              CHECK (typeof(burst) = 'integer' AND burst BETWEEN 0 AND 1000000000),
  -- Over the limit: 'tempfail' (451 4.7.1 with a retry hint) or 'reject' (550 5.7.1).
  action      TEXT    NOT NULL DEFAULT 'tempfail' CHECK (action IN ('tempfail', 'reject')),
  -- 1 = enforced, 0 = kept but ignored.
  enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  -- Free text for the admin.
  comment     TEXT
);

-- Who no rate limit applies to.
CREATE TABLE ratelimit_exemptions (
  -- 'network': value is an IP or CIDR matched against the client address;
  -- 'sender': an address (exact) or a domain (every address at it) matched against MAIL FROM;
  -- 'auth_user': an authenticated user name (exact, case-insensitive).
  kind    TEXT NOT NULL CHECK (kind IN ('network', 'sender', 'auth_user')),
  value   TEXT NOT NULL COLLATE NOCASE CHECK (length(value) > 0),
  -- Free text for the admin.
  comment TEXT,
  PRIMARY KEY (kind, value)
);

-- Content rules of the spamscore plugin, read through policy_lookup("spam_rules", "*") (the
-- enabled rows as a JSON array). All rules of one kind are compiled together (one pass per
-- message part); a pattern that does not compile is reported with its row name and the
-- plugin keeps the rule set it had.
CREATE TABLE spam_rules (
  -- The rule's symbol, added with `score` when the pattern matches: [A-Z0-9_]{1,64}.
  name        TEXT    PRIMARY KEY NOT NULL
              CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^A-Z0-9_]*'),
  -- What the pattern is matched against: 'header' (the unfolded value of every field named
  -- `header`), 'subject' (the decoded Subject), 'body' (the decoded text of text/plain and
  -- text/html parts), 'url' (each URL found in the body), 'raw' (the undecoded message).
  kind        TEXT    NOT NULL CHECK (kind IN ('header', 'subject', 'body', 'url', 'raw')),
  -- The header field name for kind 'header'; NULL for every other kind.
  header      TEXT    CHECK ((kind = 'header') = (header IS NOT NULL AND length(header) > 0)),
  -- A regular expression (RE2 syntax; (?i) for case-insensitive).
  pattern     TEXT    NOT NULL CHECK (length(pattern) BETWEEN 1 AND 4096),
  -- Added to the message's score on a match (negative for ham signs).
  score       REAL    NOT NULL CHECK (typeof(score) IN ('real', 'integer')),
  -- Shown with the symbol, so a user can see why.
  description TEXT,
  -- 1 = used, 0 = kept but ignored.
  enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1))
);

-- What the spamscore plugin does with a message's total score, per recipient domain; the '*'
-- row applies to domains without a row of their own. NULL = that step is off. A score at or
-- above `reject` is refused (550 5.7.1), else at or above `tempfail` tempfailed (451 4.7.1),
-- else at or above `add_header` marked spam in the headers it adds.
CREATE TABLE spam_thresholds (
  domain     TEXT PRIMARY KEY NOT NULL COLLATE NOCASE CHECK (length(domain) BETWEEN 1 AND 253),
  add_header REAL CHECK (add_header IS NULL OR typeof(add_header) IN ('real', 'integer')),
  tempfail   REAL CHECK (tempfail IS NULL OR typeof(tempfail) IN ('real', 'integer')),
  reject     REAL CHECK (reject IS NULL OR typeof(reject) IN ('real', 'integer'))
);

-- DNS blocklists asked by the dnsbl plugin, read through policy_lookup("dnsbl_zones", "*")
-- (the enabled rows as a JSON array).
CREATE TABLE dnsbl_zones (
  -- The list's zone: "zen.example.org".
  zone       TEXT    PRIMARY KEY NOT NULL COLLATE NOCASE
             CHECK (length(zone) BETWEEN 1 AND 253),
  -- 'ip': the client address is asked (reversed octets / nibbles + zone); 'domain': the
  -- sender's domain and the domains of URLs in the body are asked (domain + zone).
  kind       TEXT    NOT NULL CHECK (kind IN ('ip', 'domain')),
  -- The symbol for a listing: [A-Z0-9_]{1,64}.
  symbol     TEXT    NOT NULL
             CHECK (length(symbol) BETWEEN 1 AND 64 AND symbol NOT GLOB '*[^A-Z0-9_]*'),
  -- Its score for any listing without an entry in `codes`.
  score      REAL    NOT NULL DEFAULT 1 CHECK (typeof(score) IN ('real', 'integer')),
  -- Return codes mapped to their own symbols and scores:
  -- {"127.0.0.2": {"symbol": "ZEN_SBL", "score": 4}, "127.0.0.10": {"symbol": ..., ...}}.
  -- A listing answer with no entry here counts as `symbol`/`score`; {} = every answer does.
  codes      TEXT    NOT NULL DEFAULT '{}'
             CHECK (json_valid(codes) AND json_type(codes) = 'object'),
  -- How long this zone may take; a slower or dead zone is skipped for that message.
  timeout_ms INTEGER NOT NULL DEFAULT 2000
             CHECK (typeof(timeout_ms) = 'integer' AND timeout_ms BETWEEN 1 AND 60000),
  -- 1 = asked, 0 = kept but ignored.
  enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  -- Free text for the admin.
  comment    TEXT
);

-- Envelope routes of the routing plugin, read through policy_lookup("routes", ADDRESS) (see
-- gateway/policy/routes.h). Applied at RCPT, so only the envelope changes: the recipient is
-- replaced by the destinations of the most specific pattern (exact address, then the
-- wildcard with the most literal characters, then the domain's catch-all), or dropped.
CREATE TABLE routes (
  -- Row id (stable).
  id          INTEGER PRIMARY KEY,
  -- What is matched against the recipient: 'user@example.com' (exact), 'sales-*@example.com'
  -- or 'user+*@example.com' (one '*' in the local part, any run of characters), or
  -- '@example.com' (every address of the domain without a more specific route).
  pattern     TEXT    NOT NULL COLLATE NOCASE CHECK (length(pattern) BETWEEN 2 AND 320),
  -- One destination address per row (several rows = several destinations), or 'drop': the
  -- recipient is accepted and discarded (the only destination of its pattern).
  destination TEXT    NOT NULL COLLATE NOCASE CHECK (length(destination) BETWEEN 1 AND 320),
  -- 1 = applied, 0 = kept but ignored.
  enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  -- Free text for the admin.
  comment     TEXT,
  UNIQUE (pattern, destination)
);

PRAGMA user_version = 5;
