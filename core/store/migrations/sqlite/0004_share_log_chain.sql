-- The share commitment (docs/share-commitment.md). A job's coinbase after
-- the extranonces is `coinbase2 ‖ <the connection's commitment output> ‖
-- coinbase2_suffix`, and the commitment names the instance's share-log
-- head when the job was built.
ALTER TABLE jobs ADD COLUMN coinbase2_suffix BLOB NOT NULL DEFAULT x'';
ALTER TABLE jobs ADD COLUMN log_head BLOB NOT NULL DEFAULT x'';

-- Checkpoints of each instance's share-log hash chain
-- (`head_n = keccak256(head_{n-1} ‖ share_leaf_n)` over its shares in
-- sequence order): the head after share `seq`. A cache that spares a
-- restarted pool and the settler folding the log from its start; nobody
-- has to trust it, since an auditor recomputes every head.
CREATE TABLE share_log_heads (
    instance        INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    head            BLOB    NOT NULL,
    PRIMARY KEY (instance, seq)
);
