-- Migration 1 (sqlite): accounts with their SCRAM credentials, and runtime properties.
-- Reference copy: the text hearthd runs is embedded in server/storage/sqlite.c (MIGRATION_0001);
-- keep both identical. The runner creates schema_version(version INTEGER NOT NULL) itself and sets
-- its one row to 1 in the same transaction.
-- An empty salt/key or an iteration count of 0 is stored as NULL: no credential of that kind.
CREATE TABLE accounts (
    username TEXT PRIMARY KEY,
    admin INTEGER NOT NULL DEFAULT 0,
    sha1_salt TEXT,
    sha1_iter INTEGER,
    sha1_stored TEXT,
    sha1_server TEXT,
    sha256_salt TEXT,
    sha256_iter INTEGER,
    sha256_stored TEXT,
    sha256_server TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE properties (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
