-- What the wallet needs to sign an open (unsigned) action later (OutputStore::keep_signable): its
-- own encoding, which the store does not read. Dropped (NULL) when the action is committed or
-- failed.
ALTER TABLE mpc_actions ADD COLUMN signable BYTEA;
