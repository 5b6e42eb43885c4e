-- A cosigner's policy state (the PolicyStore contract): what each transaction was charged against
-- its wallet's rolling window, the approvals a person signed, the hash-chained audit log of every
-- decision with its head, and the ids seen (tokens, sessions) until they expire. Rows belong to a
-- namespace (one party); times are milliseconds since the Unix epoch.
CREATE TABLE mpc_policy_ledger (
    namespace TEXT   NOT NULL,
    wallet    TEXT   NOT NULL,
    tx        BYTEA  NOT NULL,
    charged   BIGINT NOT NULL,
    at_ms     BIGINT NOT NULL,
    state     BYTEA  NOT NULL,
    PRIMARY KEY (namespace, wallet, tx)
);
CREATE INDEX mpc_policy_ledger_window ON mpc_policy_ledger (namespace, wallet, at_ms);

CREATE TABLE mpc_policy_approvals (
    namespace  TEXT    NOT NULL,
    id         BYTEA   NOT NULL,
    wallet     TEXT    NOT NULL,
    expires_ms BIGINT  NOT NULL,
    body       BYTEA   NOT NULL,
    spent      BOOLEAN NOT NULL,
    PRIMARY KEY (namespace, id)
);
CREATE INDEX mpc_policy_approvals_open ON mpc_policy_approvals (namespace, wallet, spent, expires_ms);

CREATE TABLE mpc_policy_audit (
    namespace TEXT   NOT NULL,
    seq       BIGINT NOT NULL,
    wallet    TEXT   NOT NULL,
    at_ms     BIGINT NOT NULL,
    body      BYTEA  NOT NULL,
    hash      BYTEA  NOT NULL,
    PRIMARY KEY (namespace, seq)
);
CREATE INDEX mpc_policy_audit_wallet ON mpc_policy_audit (namespace, wallet, seq);

-- One row per namespace: the newest audit record's seq and hash. A decision locks it (FOR UPDATE)
-- for its transaction, so the decisions of one party, from any process, run one at a time.
CREATE TABLE mpc_policy_head (
    namespace TEXT   NOT NULL,
    name      TEXT   NOT NULL,
    seq       BIGINT NOT NULL,
    hash      BYTEA  NOT NULL,
    PRIMARY KEY (namespace, name)
);

CREATE TABLE mpc_policy_seen (
    namespace  TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    id         BYTEA  NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (namespace, kind, id)
);
CREATE INDEX mpc_policy_seen_expiry ON mpc_policy_seen (namespace, expires_ms);
