-- Migration 5 (sqlite): publish-subscribe nodes, items and affiliations, for PEP services
-- (XEP-0163: the service is an account's bare JID, and its nodes name the account, so that they
-- go with it) and pubsub services (XEP-0060: a domain, no account). Items and affiliations go
-- with their node; an affiliation naming an account of this server goes with that account.
-- Reference copy: the text hearthd runs is embedded in server/storage/sqlite.c (MIGRATION_0005);
-- keep both identical. The runner sets schema_version to 5 in the same transaction.
CREATE TABLE pubsub_nodes (
    service TEXT NOT NULL,
    node TEXT NOT NULL,
    account TEXT REFERENCES accounts (username) ON DELETE CASCADE,
    config TEXT NOT NULL,
    PRIMARY KEY (service, node)
);
CREATE INDEX pubsub_nodes_account ON pubsub_nodes (account);
CREATE TABLE pubsub_items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    node TEXT NOT NULL,
    id TEXT NOT NULL,
    publisher TEXT NOT NULL,
    stamp_ms INTEGER NOT NULL,
    payload TEXT NOT NULL,
    UNIQUE (service, node, id),
    FOREIGN KEY (service, node) REFERENCES pubsub_nodes (service, node) ON DELETE CASCADE
);
CREATE INDEX pubsub_items_node ON pubsub_items (service, node, seq);
CREATE TABLE pubsub_affiliations (
    service TEXT NOT NULL,
    node TEXT NOT NULL,
    jid TEXT NOT NULL,
    affiliation TEXT NOT NULL,
    account TEXT REFERENCES accounts (username) ON DELETE CASCADE,
    PRIMARY KEY (service, node, jid),
    FOREIGN KEY (service, node) REFERENCES pubsub_nodes (service, node) ON DELETE CASCADE
);
CREATE INDEX pubsub_affiliations_account ON pubsub_affiliations (account);
