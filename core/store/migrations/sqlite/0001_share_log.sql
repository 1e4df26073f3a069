-- proofpool store, SQLite flavour. Integers that can exceed i64 (targets,
-- work, token amounts) are 32-byte big-endian blobs; addresses are 20 bytes;
-- hashes are 32 bytes in internal (little-endian) byte order.

-- One row: the gapless sequence counter, the newest epoch closed for
-- settlement (no share may be written into it or earlier), and the epoch
-- clock the pool was started with.
CREATE TABLE pool_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    next_seq      INTEGER NOT NULL,
    closed_epoch  INTEGER NOT NULL,
    genesis_unix  INTEGER NOT NULL,
    epoch_secs    INTEGER NOT NULL
);

-- Everything an auditor needs to rebuild a share's header.
CREATE TABLE jobs (
    instance        INTEGER NOT NULL,
    job_id          INTEGER NOT NULL,
    created         INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    prev_hash       BLOB    NOT NULL,
    version         INTEGER NOT NULL,
    nbits           INTEGER NOT NULL,
    template_time   INTEGER NOT NULL,
    coinbase1       BLOB    NOT NULL,
    coinbase2       BLOB    NOT NULL,
    branch          BLOB    NOT NULL,
    network_target  BLOB    NOT NULL,
    coinbase_value  INTEGER NOT NULL,
    PRIMARY KEY (instance, job_id)
);

-- Append-only.
CREATE TABLE shares (
    seq             INTEGER PRIMARY KEY,
    epoch           INTEGER NOT NULL,
    time_ms         INTEGER NOT NULL,
    instance        INTEGER NOT NULL,
    job_id          INTEGER NOT NULL,
    miner           BLOB    NOT NULL,
    worker          TEXT    NOT NULL,
    extranonce1     BLOB    NOT NULL,
    extranonce2     BLOB    NOT NULL,
    ntime           INTEGER NOT NULL,
    nonce           INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    hash            BLOB    NOT NULL,
    share_target    BLOB    NOT NULL,
    work            BLOB    NOT NULL,
    network_target  BLOB    NOT NULL
);
CREATE INDEX shares_by_epoch ON shares (epoch, seq);

CREATE TABLE workers (
    miner       BLOB    NOT NULL,
    worker      TEXT    NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    PRIMARY KEY (miner, worker)
);

-- status: submitted, accepted, rejected, immature, mature, orphaned.
CREATE TABLE blocks (
    hash            BLOB    PRIMARY KEY,
    height          INTEGER NOT NULL,
    coinbase_value  INTEGER NOT NULL,
    finder          BLOB    NOT NULL,
    worker          TEXT    NOT NULL,
    share_seq       INTEGER NOT NULL,
    instance        INTEGER NOT NULL,
    found_ms        INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    confirmations   INTEGER NOT NULL,
    reject_reason   TEXT,
    paid_epoch      INTEGER
);
CREATE INDEX blocks_by_height ON blocks (height);

-- status: closed, committed, finalized.
CREATE TABLE epochs (
    epoch             INTEGER PRIMARY KEY,
    status            TEXT    NOT NULL,
    share_count       INTEGER NOT NULL,
    first_seq         INTEGER,
    last_seq          INTEGER,
    share_root        BLOB    NOT NULL,
    reward_root       BLOB    NOT NULL,
    total_cumulative  BLOB    NOT NULL,
    blocks_hash       BLOB    NOT NULL,
    params_hash       BLOB    NOT NULL,
    data_hash         BLOB    NOT NULL,
    prev_epoch_hash   BLOB    NOT NULL,
    file_name         TEXT    NOT NULL,
    commit_tx         BLOB,
    finalize_tx       BLOB,
    updated_ms        INTEGER NOT NULL
);

-- Per block and miner: sats credited by PPLNS, paid in `epoch`.
CREATE TABLE credits (
    epoch       INTEGER NOT NULL,
    block_hash  BLOB    NOT NULL,
    miner       BLOB    NOT NULL,
    sats        INTEGER NOT NULL,
    PRIMARY KEY (epoch, block_hash, miner)
);
CREATE INDEX credits_by_miner ON credits (miner, epoch);
