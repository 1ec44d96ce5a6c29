-- 0003_ratelimits.sql — rate limits and their exemptions (the ratelimit plugin;
-- `mailgatectl ratelimit`).
--
-- Applied by gateway/policy/migrations.cc inside one transaction with the PRAGMA user_version
-- bump at its end. Column meanings are documented in db/schema.sql; the snapshot validates
-- every row again and names the row in its errors (gateway/policy/ratelimits.cc).

CREATE TABLE ratelimits (
  name        TEXT    PRIMARY KEY NOT NULL
              CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^a-z0-9_.-]*'),
  what        TEXT    NOT NULL CHECK (what IN ('connections', 'messages', 'recipients', 'bytes')),
  key         TEXT    NOT NULL CHECK (length(key) > 0),
  ipv4_prefix INTEGER NOT NULL DEFAULT 32
              CHECK (typeof(ipv4_prefix) = 'integer' AND ipv4_prefix BETWEEN 1 AND 32),
  ipv6_prefix INTEGER NOT NULL DEFAULT 64
              CHECK (typeof(ipv6_prefix) = 'integer' AND ipv6_prefix BETWEEN 1 AND 128),
  rate        INTEGER NOT NULL CHECK (typeof(rate) = 'integer' AND rate BETWEEN 1 AND 1000000000),
  period      INTEGER NOT NULL CHECK (typeof(period) = 'integer' AND period BETWEEN 1 AND 2592000),
  burst       INTEGER NOT NULL DEFAULT 0
              CHECK (typeof(burst) = 'integer' AND burst BETWEEN 0 AND 1000000000),
  action      TEXT    NOT NULL DEFAULT 'tempfail' CHECK (action IN ('tempfail', 'reject')),
  enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  comment     TEXT
);

CREATE TABLE ratelimit_exemptions (
  kind    TEXT NOT NULL CHECK (kind IN ('network', 'sender', 'auth_user')),
  value   TEXT NOT NULL COLLATE NOCASE CHECK (length(value) > 0),
  comment TEXT,
  PRIMARY KEY (kind, value)
);

PRAGMA user_version = 3;
