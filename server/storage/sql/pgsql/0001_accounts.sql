-- Migration 1 (pgsql): accounts with their SCRAM credentials, and runtime properties.
-- The same meaning as sql/sqlite/0001_accounts.sql; the driver runs this file as it is (compiled in
-- by scripts/embed-migrations.cmake) and sets schema_version's one row to 1 in the same
-- transaction. An empty salt/key or an iteration count of 0 is stored as NULL.
-- Every key column collates "C": rows come back in strcmp's order whatever the database's locale
-- (the driver merges ordered reads with strcmp, as the sqlite driver does with BINARY).
CREATE TABLE accounts (
    username TEXT COLLATE "C" PRIMARY KEY,
    admin INTEGER NOT NULL DEFAULT 0,
    sha1_salt TEXT,
    sha1_iter BIGINT,
    sha1_stored TEXT,
    sha1_server TEXT,
    sha256_salt TEXT,
    sha256_iter BIGINT,
    sha256_stored TEXT,
    sha256_server TEXT,
    created_at BIGINT NOT NULL
);
CREATE TABLE properties (
    name TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);
