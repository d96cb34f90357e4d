-- Migration 9 (sqlite): an account an administrator locked (PATCH /api/v1/users/{user}): it
-- cannot log in and its sessions were ended; everything else of it stays.
-- Reference copy: the text hearthd runs is embedded in server/storage/sqlite.c (MIGRATION_0009);
-- keep both identical. The runner sets schema_version to 9 in the same transaction.
-- Renumbering (when another branch took 9): rename this file, the constant and its slot in
-- sqlite.c's migrations[], and the version checked in tests/unit/test_storage.c.
ALTER TABLE accounts ADD COLUMN locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1));
