-- Derivation-cache recency, so the engine can bound the cache by evicting the least recently
-- used entries. `used_seq` is a counter per key, not a time: a use sets it to the key's
-- MAX + 1 inside one write statement (SQLite runs one writer at a time), so two uses in the
-- same second still order, and a clock step cannot reorder them.
ALTER TABLE mpc_derivations ADD COLUMN used_seq INTEGER NOT NULL DEFAULT 0;

-- Entries written before recency was kept count as used in their write order (created_at is
-- the last write; rowid breaks ties within a second).
UPDATE mpc_derivations SET used_seq = ranked.n
FROM (
    SELECT rowid AS r, ROW_NUMBER() OVER (PARTITION BY wallet_id, key_index ORDER BY created_at, rowid) AS n
    FROM mpc_derivations
) AS ranked
WHERE mpc_derivations.rowid = ranked.r;

-- Finds a key's newest use (MAX) and walks its entries in recency order (eviction) without a scan.
CREATE INDEX mpc_derivations_recency ON mpc_derivations (wallet_id, key_index, used_seq);
