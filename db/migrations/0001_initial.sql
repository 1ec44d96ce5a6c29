-- 0001_initial.sql — the first policy schema: plugin chain, local domains, relay networks,
-- access rules, per-plugin per-domain settings.
--
-- Migrations are applied in order by gateway/policy/migrations.cc, each inside the same
-- transaction as the PRAGMA user_version bump at its end. A migration never edits an earlier
-- one; a change to the schema is a new file NNNN_name.sql and a matching edit of
-- db/schema.sql (a unit test checks that both describe the same tables).
-- Column meanings are documented in db/schema.sql.

CREATE TABLE plugins (
  id         INTEGER PRIMARY KEY,
  position   INTEGER NOT NULL DEFAULT 0
             CHECK (typeof(position) = 'integer'),
  name       TEXT    NOT NULL UNIQUE
             CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^a-z0-9_-]*'),
  path       TEXT    NOT NULL CHECK (length(path) > 0),
  enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  profile    TEXT    NOT NULL DEFAULT '*' CHECK (length(profile) > 0),
  settings   TEXT    NOT NULL DEFAULT '{}'
             CHECK (json_valid(settings) AND json_type(settings) = 'object'),
  fail_mode  TEXT    NOT NULL DEFAULT 'tempfail' CHECK (fail_mode IN ('open', 'tempfail')),
  timeout_ms INTEGER NOT NULL DEFAULT 5000
             CHECK (typeof(timeout_ms) = 'integer' AND timeout_ms BETWEEN 1 AND 600000)
);
CREATE INDEX plugins_by_position ON plugins (position, name);

CREATE TABLE local_domains (
  domain  TEXT PRIMARY KEY NOT NULL COLLATE NOCASE CHECK (length(domain) BETWEEN 1 AND 253),
  comment TEXT
);

CREATE TABLE relay_networks (
  cidr    TEXT PRIMARY KEY NOT NULL COLLATE NOCASE CHECK (length(cidr) > 0),
  comment TEXT
);

CREATE TABLE access (
  id       INTEGER PRIMARY KEY,
  stage    TEXT    NOT NULL CHECK (stage IN ('client', 'helo', 'sender', 'sender_domain',
                                             'recipient', 'recipient_domain')),
  pattern  TEXT    NOT NULL COLLATE NOCASE CHECK (length(pattern) > 0),
  action   TEXT    NOT NULL CHECK (action IN ('allow', 'deny', 'tempfail')),
  code     INTEGER CHECK (code IS NULL OR (typeof(code) = 'integer' AND code BETWEEN 400 AND 599)),
  enhanced TEXT,
  text     TEXT,
  comment  TEXT,
  UNIQUE (stage, pattern)
);

CREATE TABLE plugin_settings (
  plugin   TEXT NOT NULL REFERENCES plugins (name) ON UPDATE CASCADE ON DELETE CASCADE,
  domain   TEXT NOT NULL DEFAULT '*' COLLATE NOCASE CHECK (length(domain) > 0),
  settings TEXT NOT NULL DEFAULT '{}'
           CHECK (json_valid(settings) AND json_type(settings) = 'object'),
  PRIMARY KEY (plugin, domain)
);

PRAGMA user_version = 1;
