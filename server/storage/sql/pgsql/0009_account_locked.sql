-- Migration 9 (pgsql): an account an administrator locked (PATCH /api/v1/users/{user}): it
-- cannot log in and its sessions were ended; everything else of it stays. The same meaning as
-- sql/sqlite/0009_account_locked.sql.
ALTER TABLE accounts ADD COLUMN locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1));
