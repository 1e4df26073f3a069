-- The payout scheme each epoch was settled under (issue 25): `pplns`, `pps`
-- or `fpps`. A block whose solving share is in a PPLNS epoch is paid by
-- PPLNS when it matures, even after the pool has switched to PPS or FPPS.
ALTER TABLE epochs ADD COLUMN scheme TEXT NOT NULL DEFAULT 'pplns';
