-- The epoch whose file lists a block the pool found that left the best
-- chain (or that the node refused), so each is listed exactly once and
-- auditors can account for every block the shares found.
ALTER TABLE blocks ADD COLUMN orphan_epoch INTEGER;
