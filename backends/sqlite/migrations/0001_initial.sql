-- Sealed key shares, one row per (wallet, key). Only ciphertext and public metadata live here.
CREATE TABLE mpc_shares (
    wallet_id      TEXT    NOT NULL,
    key_index      INTEGER NOT NULL,
    party_index    INTEGER NOT NULL,
    public_key     BLOB    NOT NULL,
    threshold      INTEGER NOT NULL,
    parties        INTEGER NOT NULL,
    -- ShareState::as_str: pending | active | frozen. Not a CHECK: the reader reports a bad value
    -- as a corrupted row, which keeps one place that knows the states.
    state          TEXT    NOT NULL,
    execution_id   BLOB    NOT NULL,
    format_version INTEGER NOT NULL,
    -- Compare-and-swap counter, 1 after create.
    version        INTEGER NOT NULL,
    sealed         BLOB    NOT NULL,
    -- Unix seconds.
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (wallet_id, key_index)
);

-- Sealed ECDH results under an HMAC lookup key, so the table reveals no counterparties.
CREATE TABLE mpc_derivations (
    wallet_id  TEXT    NOT NULL,
    key_index  INTEGER NOT NULL,
    lookup     BLOB    NOT NULL,
    sealed     BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (wallet_id, key_index, lookup)
);

-- Pre-generated sealed Paillier prime pairs; each row is handed out once.
CREATE TABLE mpc_primes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    pool       TEXT    NOT NULL,
    sealed     BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE INDEX mpc_primes_pool ON mpc_primes (pool, id);
