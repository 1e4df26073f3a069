-- The payout scheme each epoch was settled under (issue 25): `pplns`, `pps`
-- or `fpps`. A block whose solving share is in a PPLNS epoch is paid by
-- PPLNS when it matures, even after the pool has switched to PPS or FPPS.
ALTER TABLE epochs ADD COLUMN scheme TEXT NOT NULL DEFAULT 'pplns';

-- The shares' expected blocks, for the pool's luck: Σ floor(2^128 ·
-- W_share / W_net) over the epoch's shares (2^128 is one block), a 32-byte
-- big-endian sum; empty for epochs settled before it was kept.
ALTER TABLE epochs ADD COLUMN expected_work BYTEA NOT NULL DEFAULT '\x'::bytea;
