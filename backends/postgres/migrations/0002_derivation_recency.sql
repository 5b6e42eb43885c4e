-- Derivation-cache recency, so the engine can bound the cache by evicting the least recently
-- used entries. `used_seq` comes from a sequence, not the clock: uses within one clock tick
-- still order, and a clock step cannot reorder them. One sequence serves every namespace; it
-- only has to order the entries of each key.
CREATE SEQUENCE mpc_derivation_uses AS BIGINT;

ALTER TABLE mpc_derivations ADD COLUMN used_seq BIGINT;

-- Entries written before recency was kept count as used in their write order (created_at is
-- the last write).
UPDATE mpc_derivations AS d SET used_seq = ranked.n
FROM (
    SELECT namespace, wallet_id, key_index, lookup,
           row_number() OVER (ORDER BY created_at, namespace, wallet_id, key_index, lookup) AS n
    FROM mpc_derivations
) AS ranked
WHERE d.namespace = ranked.namespace AND d.wallet_id = ranked.wallet_id AND d.key_index = ranked.key_index
  AND d.lookup = ranked.lookup;

-- New uses number on after the existing ones.
SELECT setval('mpc_derivation_uses', COALESCE((SELECT MAX(used_seq) FROM mpc_derivations), 0) + 1, false);

ALTER TABLE mpc_derivations
    ALTER COLUMN used_seq SET DEFAULT nextval('mpc_derivation_uses'),
    ALTER COLUMN used_seq SET NOT NULL;
ALTER SEQUENCE mpc_derivation_uses OWNED BY mpc_derivations.used_seq;

-- Walks one key's entries in recency order (eviction) without a scan.
CREATE INDEX mpc_derivations_recency ON mpc_derivations (namespace, wallet_id, key_index, used_seq);
