-- Every row belongs to a namespace: parties sharing one database use distinct namespaces (their
-- wallet ids and key indexes are the same), processes of one party share one.

-- Sealed key shares, one row per (namespace, wallet, key). Only ciphertext and public metadata.
CREATE TABLE mpc_shares (
    namespace      TEXT        NOT NULL,
    wallet_id      TEXT        NOT NULL,
    -- u32 key index: BIGINT, as INTEGER stops at 2^31 - 1.
    key_index      BIGINT      NOT NULL,
    party_index    INTEGER     NOT NULL,
    public_key     BYTEA       NOT NULL,
    threshold      INTEGER     NOT NULL,
    parties        INTEGER     NOT NULL,
    -- ShareState::as_str: pending | active | frozen. Not a CHECK: the reader reports a bad value
    -- as a corrupted row, which keeps one place that knows the states.
    state          TEXT        NOT NULL,
    execution_id   BYTEA       NOT NULL,
    format_version INTEGER     NOT NULL,
    -- Compare-and-swap counter, 1 after create.
    version        BIGINT      NOT NULL,
    sealed         BYTEA       NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, wallet_id, key_index)
);

-- Sealed ECDH results under an HMAC lookup key, so the table reveals no counterparties.
CREATE TABLE mpc_derivations (
    namespace  TEXT        NOT NULL,
    wallet_id  TEXT        NOT NULL,
    key_index  BIGINT      NOT NULL,
    lookup     BYTEA       NOT NULL,
    sealed     BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, wallet_id, key_index, lookup)
);

-- Pre-generated sealed Paillier prime pairs; each row is handed out once.
CREATE TABLE mpc_primes (
    id         BIGSERIAL   PRIMARY KEY,
    namespace  TEXT        NOT NULL,
    pool       TEXT        NOT NULL,
    sealed     BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- take_primes walks a pool oldest first.
CREATE INDEX mpc_primes_pool ON mpc_primes (namespace, pool, id);
