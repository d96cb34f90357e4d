CREATE TABLE muc_affiliations (
    room TEXT NOT NULL,
    jid TEXT NOT NULL,
    affiliation TEXT NOT NULL,
    nick TEXT,
    reason TEXT,
    account TEXT REFERENCES accounts (username) ON DELETE CASCADE,
    PRIMARY KEY (room, jid)
);
CREATE INDEX muc_affiliations_jid ON muc_affiliations (jid, affiliation);
CREATE INDEX muc_affiliations_account ON muc_affiliations (account);
