-- Migration 6 (pgsql): nothing to do. In SQLite it dropped AUTOINCREMENT from the archive's seq
-- and the logs' id, which cost a read and a write of sqlite_sequence per row; PostgreSQL's
-- identity sequences have no such cost and never hand a number out twice. The number is kept
-- so that a version means the same schema for every driver.
SELECT 1;
