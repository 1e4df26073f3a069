-- Work per time bucket, kept once a bucket can no longer change, so the
-- API's hashrate series (10-minute buckets over a day, hourly over 30 days)
-- read a few hundred rows instead of every share of the period. A cache of
-- the shares table: any row can be dropped and is recomputed on demand.
-- `miner` is the 20-byte address, or empty for the whole pool. Work is a
-- 32-byte big-endian sum.
CREATE TABLE work_rollup (
    bucket_ms  INTEGER NOT NULL,
    start_ms   INTEGER NOT NULL,
    miner      BLOB    NOT NULL,
    work       BLOB    NOT NULL,
    shares     INTEGER NOT NULL,
    PRIMARY KEY (bucket_ms, miner, start_ms)
);
