//! The handlers, one module per resource, and the conversions from store
//! records to the JSON [`types`](crate::types).

pub(crate) mod blocks;
pub(crate) mod chain;
pub(crate) mod epochs;
pub(crate) mod meta;
pub(crate) mod miners;
pub(crate) mod summary;

use crate::error::ApiError;
use crate::params::QueryArgs;
use crate::types::{Block, BlockState, Epoch, EpochState, Hashrate};
use proofpool_primitives::U256;
use proofpool_store::{
    BlockRecord, BlockStatus, EpochClock, EpochRecord, EpochStatus, Store, StoreError,
};

/// Default hashrate window, seconds.
pub(crate) const DEFAULT_WINDOW_SECS: u64 = 600;
/// Shortest hashrate window, seconds.
pub(crate) const MIN_WINDOW_SECS: u64 = 60;
/// Longest hashrate window, seconds.
pub(crate) const MAX_WINDOW_SECS: u64 = 86_400;

/// The `window` parameter, seconds.
pub(crate) fn window(q: &QueryArgs) -> Result<u64, ApiError> {
    q.u64_in(
        "window",
        DEFAULT_WINDOW_SECS,
        MIN_WINDOW_SECS,
        MAX_WINDOW_SECS,
    )
}

/// A store call with its error made an [`ApiError`] (for `try_join!`).
pub(crate) async fn db<T>(
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, ApiError> {
    Ok(call.await?)
}

/// Wall-clock time, unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The store's epoch clock, or `None` before the pool first started.
pub(crate) async fn clock(store: &Store) -> Result<Option<EpochClock>, ApiError> {
    match store.clock().await {
        Ok(c) => Ok(Some(c)),
        Err(StoreError::NotInitialised) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The epoch shares are going into now: the one the clock is in, but never
/// one settlement has already closed (as the share writer assigns them).
pub(crate) fn current_epoch(clock: &EpochClock, now_ms: u64) -> u64 {
    clock
        .epoch_of_ms(now_ms)
        .max(clock.closed_epoch.saturating_add(1))
}

/// `work` over `secs` seconds.
pub(crate) fn hashrate(window_secs: u64, work: U256, shares: u64) -> Hashrate {
    Hashrate {
        window_secs,
        work: work.to_string(),
        shares,
        hashes_per_second: (work / U256::from(window_secs.max(1))).to_string(),
    }
}

/// Sats in token base units (decimal); saturates, as a display value only.
pub(crate) fn amount(sats: u64, token_per_sat: U256) -> String {
    token_amount(sats, token_per_sat).to_string()
}

/// Sats in token base units, saturating (for display; proofs use the
/// checked conversion inside the reward tree).
pub(crate) fn token_amount(sats: u64, token_per_sat: U256) -> U256 {
    proofpool_epoch::sats_to_token(proofpool_primitives::Sats(sats), token_per_sat)
        .unwrap_or(U256::MAX)
}

/// `0` means "none" in the store's `MAX(...)` answers.
pub(crate) fn nonzero(v: u64) -> Option<u64> {
    (v > 0).then_some(v)
}

pub(crate) fn block_state(s: BlockStatus) -> BlockState {
    match s {
        BlockStatus::Submitted => BlockState::Submitted,
        BlockStatus::Rejected => BlockState::Rejected,
        BlockStatus::Immature => BlockState::Immature,
        BlockStatus::Mature => BlockState::Mature,
        BlockStatus::Orphaned => BlockState::Orphaned,
    }
}

pub(crate) fn epoch_state(s: EpochStatus) -> EpochState {
    match s {
        EpochStatus::Closed => EpochState::Closed,
        EpochStatus::Committed => EpochState::Committed,
        EpochStatus::Finalized => EpochState::Finalized,
    }
}

/// A found block as JSON, linked to the explorer.
pub(crate) fn block_json(b: &BlockRecord, explorer: &str) -> Block {
    let hash = hex::encode(b.hash);
    Block {
        height: b.height,
        explorer_url: format!("{}/block/{hash}", explorer.trim_end_matches('/')),
        hash,
        status: block_state(b.status),
        confirmations: b.confirmations,
        reward_sats: b.coinbase_value,
        finder: b.finder.to_checksum(None),
        worker: b.worker.clone(),
        found_ms: b.found_ms,
        paid_epoch: b.paid_epoch,
        reject_reason: b.reject_reason.clone(),
    }
}

/// A settled epoch as JSON.
pub(crate) fn epoch_json(r: &EpochRecord, clock: Option<&EpochClock>) -> Epoch {
    let bounds = clock.map(|c| c.bounds(r.epoch));
    Epoch {
        epoch: r.epoch,
        status: epoch_state(r.status),
        start_unix: bounds.map(|b| b.0),
        end_unix: bounds.map(|b| b.1),
        share_count: r.share_count,
        first_seq: r.seq_range.map(|s| s.0),
        last_seq: r.seq_range.map(|s| s.1),
        share_root: r.share_root.to_string(),
        reward_root: r.reward_root.to_string(),
        total_cumulative: r.total_cumulative.to_string(),
        blocks_hash: r.blocks_hash.to_string(),
        params_hash: r.params_hash.to_string(),
        data_hash: r.data_hash.to_string(),
        prev_epoch_hash: r.prev_epoch_hash.to_string(),
        commit_tx: r.commit_tx.map(|h| h.to_string()),
        finalize_tx: r.finalize_tx.map(|h| h.to_string()),
        updated_ms: r.updated_ms,
        file_url: format!("/api/v1/epochs/{}/file", r.epoch),
    }
}

/// The record of settled epoch `n`, or a 404 that says how far settlement is.
pub(crate) async fn settled_epoch(store: &Store, n: u64) -> Result<EpochRecord, ApiError> {
    if let Some(r) = store.epoch(n).await? {
        return Ok(r);
    }
    let last = store.last_settled_epoch().await?;
    Err(ApiError::not_found(
        "epoch",
        if last == 0 {
            format!("epoch {n} is not settled: no epoch has been settled yet")
        } else {
            format!("epoch {n} is not settled: the newest settled epoch is {last}")
        },
    ))
}
