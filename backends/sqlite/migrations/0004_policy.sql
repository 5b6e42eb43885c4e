-- A cosigner's policy state (the PolicyStore contract): what each transaction was charged against
-- its wallet's rolling window, the approvals a person signed, the hash-chained audit log of every
-- decision with its head, and the ids seen (tokens, sessions) until they expire. Times are
-- milliseconds since the Unix epoch.
CREATE TABLE mpc_policy_ledger (
    wallet TEXT NOT NULL,
    tx BLOB NOT NULL,
    charged INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (wallet, tx)
);
CREATE INDEX mpc_policy_ledger_window ON mpc_policy_ledger (wallet, at_ms);

CREATE TABLE mpc_policy_approvals (
    id BLOB PRIMARY KEY,
    wallet TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    body BLOB NOT NULL,
    spent INTEGER NOT NULL
);
CREATE INDEX mpc_policy_approvals_open ON mpc_policy_approvals (wallet, spent, expires_ms);

CREATE TABLE mpc_policy_audit (
    seq INTEGER PRIMARY KEY,
    wallet TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    body BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX mpc_policy_audit_wallet ON mpc_policy_audit (wallet, seq);

-- One row: the newest audit record's seq and hash. A decision reads and updates it in its write
-- transaction, which also orders the decisions.
CREATE TABLE mpc_policy_head (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL
);

CREATE TABLE mpc_policy_seen (
    kind TEXT NOT NULL,
    id BLOB NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX mpc_policy_seen_expiry ON mpc_policy_seen (expires_ms);
