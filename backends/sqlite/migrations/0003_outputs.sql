-- The agent's accounting (the OutputStore contract): actions with their labels, outputs with
-- their tags. Every row carries the scope (wallet id) it belongs to. `seq` orders lists oldest
-- first; txids are display-order bytes.
CREATE TABLE mpc_actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    reference TEXT NOT NULL,
    txid BLOB,
    status TEXT NOT NULL,
    outgoing INTEGER NOT NULL,
    satoshis INTEGER NOT NULL,
    description TEXT NOT NULL,
    version INTEGER NOT NULL,
    lock_time INTEGER NOT NULL,
    raw_tx BLOB,
    input_beef BLOB,
    merkle_path BLOB,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX mpc_actions_reference ON mpc_actions (scope, reference);
CREATE UNIQUE INDEX mpc_actions_txid ON mpc_actions (scope, txid) WHERE txid IS NOT NULL;
CREATE INDEX mpc_actions_status ON mpc_actions (scope, status);

CREATE TABLE mpc_action_labels (
    scope TEXT NOT NULL,
    reference TEXT NOT NULL,
    label TEXT NOT NULL,
    PRIMARY KEY (scope, reference, label)
);
CREATE INDEX mpc_action_labels_label ON mpc_action_labels (scope, label);

CREATE TABLE mpc_outputs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    txid BLOB NOT NULL,
    vout INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    satoshis INTEGER NOT NULL,
    locking_script BLOB NOT NULL,
    basket TEXT,
    custom_instructions TEXT,
    description TEXT NOT NULL,
    spendable INTEGER NOT NULL,
    is_change INTEGER NOT NULL,
    derivation_prefix TEXT,
    derivation_suffix TEXT,
    sender TEXT,
    spent_by TEXT
);
CREATE UNIQUE INDEX mpc_outputs_outpoint ON mpc_outputs (scope, txid, vout);
-- Funding picks by value among a basket's spendable change.
CREATE INDEX mpc_outputs_funding ON mpc_outputs (scope, basket, spendable, is_change, satoshis);
CREATE INDEX mpc_outputs_spent_by ON mpc_outputs (scope, spent_by);
CREATE INDEX mpc_outputs_created_by ON mpc_outputs (scope, created_by);

CREATE TABLE mpc_output_tags (
    scope TEXT NOT NULL,
    txid BLOB NOT NULL,
    vout INTEGER NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (scope, txid, vout, tag)
);
CREATE INDEX mpc_output_tags_tag ON mpc_output_tags (scope, tag);
