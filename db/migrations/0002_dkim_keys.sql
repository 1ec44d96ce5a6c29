-- 0002_dkim_keys.sql — DKIM signing keys (the dkim_sign plugin; `mailgatectl dkim`).
--
-- Applied by gateway/policy/migrations.cc inside one transaction with the PRAGMA user_version
-- bump at its end. Column meanings are documented in db/schema.sql.

CREATE TABLE dkim_keys (
  domain      TEXT    NOT NULL COLLATE NOCASE
              CHECK (length(domain) BETWEEN 1 AND 253 AND domain NOT GLOB '*[^A-Za-z0-9.-]*'),
  selector    TEXT    NOT NULL COLLATE NOCASE
              CHECK (length(selector) BETWEEN 1 AND 253 AND selector NOT GLOB '*[^A-Za-z0-9._-]*'),
  algorithm   TEXT    NOT NULL CHECK (algorithm IN ('rsa-sha256', 'ed25519-sha256')),
  private_key TEXT    NOT NULL CHECK (private_key LIKE '-----BEGIN %'),
  enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  created     INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
              CHECK (typeof(created) = 'integer' AND created >= 0),
  comment     TEXT,
  PRIMARY KEY (domain, selector)
);

PRAGMA user_version = 2;
