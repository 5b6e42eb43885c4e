-- How many new blocks an unproven transaction's proof was looked for in vain
-- (OutputStore::count_proof_attempt); past a limit the wallet asks the chain what became of it.
ALTER TABLE mpc_actions ADD COLUMN proof_attempts INTEGER NOT NULL DEFAULT 0;
