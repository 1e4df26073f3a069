-- proofpool store, PostgreSQL flavour. Integers that can exceed i64 (targets,
-- work, token amounts) are 32-byte big-endian blobs; addresses are 20 bytes;
-- hashes are 32 bytes in internal (little-endian) byte order.

-- One row: the gapless sequence counter, the newest epoch closed for
-- settlement (no share may be written into it or earlier), and the epoch
-- clock the pool was started with.
CREATE TABLE pool_state (
    id            BIGINT PRIMARY KEY CHECK (id = 1),
    next_seq      BIGINT NOT NULL,
    closed_epoch  BIGINT NOT NULL,
    genesis_unix  BIGINT NOT NULL,
    epoch_secs    BIGINT NOT NULL
);

-- Everything an auditor needs to rebuild a share's header.
CREATE TABLE jobs (
    instance        BIGINT NOT NULL,
    job_id          BIGINT NOT NULL,
    created         BIGINT NOT NULL,
    height          BIGINT NOT NULL,
    prev_hash       BYTEA    NOT NULL,
    version         BIGINT NOT NULL,
    nbits           BIGINT NOT NULL,
    template_time   BIGINT NOT NULL,
    coinbase1       BYTEA    NOT NULL,
    coinbase2       BYTEA    NOT NULL,
    branch          BYTEA    NOT NULL,
    network_target  BYTEA    NOT NULL,
    coinbase_value  BIGINT NOT NULL,
    PRIMARY KEY (instance, job_id)
);

-- Append-only.
CREATE TABLE shares (
    seq             BIGINT PRIMARY KEY,
    epoch           BIGINT NOT NULL,
    time_ms         BIGINT NOT NULL,
    instance        BIGINT NOT NULL,
    job_id          BIGINT NOT NULL,
    miner           BYTEA    NOT NULL,
    worker          TEXT    NOT NULL,
    extranonce1     BYTEA    NOT NULL,
    extranonce2     BYTEA    NOT NULL,
    ntime           BIGINT NOT NULL,
    nonce           BIGINT NOT NULL,
    version         BIGINT NOT NULL,
    hash            BYTEA    NOT NULL,
    share_target    BYTEA    NOT NULL,
    work            BYTEA    NOT NULL,
    network_target  BYTEA    NOT NULL
);
CREATE INDEX shares_by_epoch ON shares (epoch, seq);

CREATE TABLE workers (
    miner       BYTEA    NOT NULL,
    worker      TEXT    NOT NULL,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    PRIMARY KEY (miner, worker)
);

-- status: submitted, accepted, rejected, immature, mature, orphaned.
CREATE TABLE blocks (
    hash            BYTEA    PRIMARY KEY,
    height          BIGINT NOT NULL,
    coinbase_value  BIGINT NOT NULL,
    finder          BYTEA    NOT NULL,
    worker          TEXT    NOT NULL,
    share_seq       BIGINT NOT NULL,
    instance        BIGINT NOT NULL,
    found_ms        BIGINT NOT NULL,
    status          TEXT    NOT NULL,
    confirmations   BIGINT NOT NULL,
    reject_reason   TEXT,
    paid_epoch      BIGINT
);
CREATE INDEX blocks_by_height ON blocks (height);

-- status: closed, committed, finalized.
CREATE TABLE epochs (
    epoch             BIGINT PRIMARY KEY,
    status            TEXT    NOT NULL,
    share_count       BIGINT NOT NULL,
    first_seq         BIGINT,
    last_seq          BIGINT,
    share_root        BYTEA    NOT NULL,
    reward_root       BYTEA    NOT NULL,
    total_cumulative  BYTEA    NOT NULL,
    blocks_hash       BYTEA    NOT NULL,
    params_hash       BYTEA    NOT NULL,
    data_hash         BYTEA    NOT NULL,
    prev_epoch_hash   BYTEA    NOT NULL,
    file_name         TEXT    NOT NULL,
    commit_tx         BYTEA,
    finalize_tx       BYTEA,
    updated_ms        BIGINT NOT NULL
);

-- Per block and miner: sats credited by PPLNS, paid in `epoch`.
CREATE TABLE credits (
    epoch       BIGINT NOT NULL,
    block_hash  BYTEA    NOT NULL,
    miner       BYTEA    NOT NULL,
    sats        BIGINT NOT NULL,
    PRIMARY KEY (epoch, block_hash, miner)
);
CREATE INDEX credits_by_miner ON credits (miner, epoch);
