-- Migration 4 (pgsql): room affiliations, one row per (room, bare JID); a row naming an account
-- of this server goes with it. The same meaning as sql/sqlite/0004_muc_affiliations.sql.
CREATE TABLE muc_affiliations (
    room TEXT COLLATE "C" NOT NULL,
    jid TEXT COLLATE "C" NOT NULL,
    affiliation TEXT NOT NULL,
    nick TEXT,
    reason TEXT,
    account TEXT COLLATE "C" REFERENCES accounts (username) ON DELETE CASCADE,
    PRIMARY KEY (room, jid)
);
CREATE INDEX muc_affiliations_jid ON muc_affiliations (jid, affiliation);
CREATE INDEX muc_affiliations_account ON muc_affiliations (account);
