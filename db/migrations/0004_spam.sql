-- 0004_spam.sql — spam scoring: content rules, score thresholds per recipient domain, and DNS
-- blocklist zones (the spamscore and dnsbl plugins).
--
-- Applied by gateway/policy/migrations.cc inside one transaction with the PRAGMA user_version
-- bump at its end. Column meanings are documented in db/schema.sql; the snapshot validates
-- every row again and names the row in its errors.

CREATE TABLE spam_rules (
  name        TEXT    PRIMARY KEY NOT NULL
              CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^A-Z0-9_]*'),
  kind        TEXT    NOT NULL CHECK (kind IN ('header', 'subject', 'body', 'url', 'raw')),
  header      TEXT    CHECK ((kind = 'header') = (header IS NOT NULL AND length(header) > 0)),
  pattern     TEXT    NOT NULL CHECK (length(pattern) BETWEEN 1 AND 4096),
  score       REAL    NOT NULL CHECK (typeof(score) IN ('real', 'integer')),
  description TEXT,
  enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1))
);

CREATE TABLE spam_thresholds (
  domain     TEXT PRIMARY KEY NOT NULL COLLATE NOCASE CHECK (length(domain) BETWEEN 1 AND 253),
  add_header REAL CHECK (add_header IS NULL OR typeof(add_header) IN ('real', 'integer')),
  tempfail   REAL CHECK (tempfail IS NULL OR typeof(tempfail) IN ('real', 'integer')),
  reject     REAL CHECK (reject IS NULL OR typeof(reject) IN ('real', 'integer'))
);

CREATE TABLE dnsbl_zones (
  zone       TEXT    PRIMARY KEY NOT NULL COLLATE NOCASE
             CHECK (length(zone) BETWEEN 1 AND 253),
  kind       TEXT    NOT NULL CHECK (kind IN ('ip', 'domain')),
  symbol     TEXT    NOT NULL
             CHECK (length(symbol) BETWEEN 1 AND 64 AND symbol NOT GLOB '*[^A-Z0-9_]*'),
  score      REAL    NOT NULL DEFAULT 1 CHECK (typeof(score) IN ('real', 'integer')),
  codes      TEXT    NOT NULL DEFAULT '{}'
             CHECK (json_valid(codes) AND json_type(codes) = 'object'),
  timeout_ms INTEGER NOT NULL DEFAULT 2000
             CHECK (typeof(timeout_ms) = 'integer' AND timeout_ms BETWEEN 1 AND 60000),
  enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  comment    TEXT
);

PRAGMA user_version = 4;
