-- The agent's accounting (the OutputStore contract): actions with their labels, outputs with
-- their tags. Rows belong to a namespace and, within it, to a scope (the wallet id). `id`
-- orders lists oldest first; txids are display-order bytes; u32 values are BIGINT.
CREATE TABLE mpc_actions (
    id          BIGSERIAL PRIMARY KEY,
    namespace   TEXT    NOT NULL,
    scope       TEXT    NOT NULL,
    reference   TEXT    NOT NULL,
    txid        BYTEA,
    -- ActionStatus::as_str; the reader reports anything else as a corrupted row.
    status      TEXT    NOT NULL,
    outgoing    BOOLEAN NOT NULL,
    satoshis    BIGINT  NOT NULL,
    description TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    lock_time   BIGINT  NOT NULL,
    raw_tx      BYTEA,
    input_beef  BYTEA,
    merkle_path BYTEA,
    created_at  BIGINT  NOT NULL
);
CREATE UNIQUE INDEX mpc_actions_reference ON mpc_actions (namespace, scope, reference);
CREATE UNIQUE INDEX mpc_actions_txid ON mpc_actions (namespace, scope, txid) WHERE txid IS NOT NULL;
CREATE INDEX mpc_actions_status ON mpc_actions (namespace, scope, status);

CREATE TABLE mpc_action_labels (
    namespace TEXT NOT NULL,
    scope     TEXT NOT NULL,
    reference TEXT NOT NULL,
    label     TEXT NOT NULL,
    PRIMARY KEY (namespace, scope, reference, label)
);
CREATE INDEX mpc_action_labels_label ON mpc_action_labels (namespace, scope, label);

CREATE TABLE mpc_outputs (
    id                  BIGSERIAL PRIMARY KEY,
    namespace           TEXT    NOT NULL,
    scope               TEXT    NOT NULL,
    txid                BYTEA   NOT NULL,
    vout                BIGINT  NOT NULL,
    created_by          TEXT    NOT NULL,
    satoshis            BIGINT  NOT NULL,
    locking_script      BYTEA   NOT NULL,
    basket              TEXT,
    custom_instructions TEXT,
    description         TEXT    NOT NULL,
    spendable           BOOLEAN NOT NULL,
    is_change           BOOLEAN NOT NULL,
    derivation_prefix   TEXT,
    derivation_suffix   TEXT,
    sender              TEXT,
    spent_by            TEXT
);
CREATE UNIQUE INDEX mpc_outputs_outpoint ON mpc_outputs (namespace, scope, txid, vout);
-- Funding picks by value among a basket's spendable change.
CREATE INDEX mpc_outputs_funding ON mpc_outputs (namespace, scope, basket, spendable, is_change, satoshis);
CREATE INDEX mpc_outputs_spent_by ON mpc_outputs (namespace, scope, spent_by);
CREATE INDEX mpc_outputs_created_by ON mpc_outputs (namespace, scope, created_by);

CREATE TABLE mpc_output_tags (
    namespace TEXT   NOT NULL,
    scope     TEXT   NOT NULL,
    txid      BYTEA  NOT NULL,
    vout      BIGINT NOT NULL,
    tag       TEXT   NOT NULL,
    PRIMARY KEY (namespace, scope, txid, vout, tag)
);
CREATE INDEX mpc_output_tags_tag ON mpc_output_tags (namespace, scope, tag);
