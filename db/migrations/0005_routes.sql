-- 0005_routes.sql — envelope routing: an address, a wildcard or a domain's catch-all mapped
-- to destination addresses, or dropped (the routing plugin).
--
-- Applied by gateway/policy/migrations.cc inside one transaction with the PRAGMA user_version
-- bump at its end. Column meanings are documented in db/schema.sql; the snapshot validates
-- every row again and names the row in its errors.

CREATE TABLE routes (
  id          INTEGER PRIMARY KEY,
  pattern     TEXT    NOT NULL COLLATE NOCASE CHECK (length(pattern) BETWEEN 2 AND 320),
  destination TEXT    NOT NULL COLLATE NOCASE CHECK (length(destination) BETWEEN 1 AND 320),
  enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  comment     TEXT,
  UNIQUE (pattern, destination)
);

PRAGMA user_version = 5;
