//! `GET /api/v1/miners` and `GET /api/v1/miners/{address}`.

use super::{amount, clock, current_epoch, db, hashrate, nonzero, now_ms, window};
use crate::Shared;
use crate::error::ApiError;
use crate::params::{QueryArgs, parse_address, segments};
use crate::types::{
    Credits, EpochCreditItem, EpochShareCount, ErrorBody, MinerDetail, MinerItem, MinerPage,
    OnChainClaims, Worker,
};
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Uri;
use proofpool_primitives::{Address, U256};
use proofpool_store::EpochStatus;
use proofpool_store::api::WorkerWork;
use std::collections::HashMap;
use utoipa::IntoParams;

/// Default number of epochs in a miner's per-epoch lists.
const DEFAULT_EPOCHS: u64 = 24;
/// Most epochs in a miner's per-epoch lists.
const MAX_EPOCHS: u64 = 1000;

/// Query of `GET /api/v1/miners` (documentation; parsed by `QueryArgs`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct MinersQuery {
    /// Miners to skip (default 0).
    #[param(minimum = 0, default = 0)]
    offset: Option<u64>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// Hashrate window in seconds, 60 to 86400 (default 600).
    #[param(minimum = 60, maximum = 86400, default = 600)]
    window: Option<u64>,
}

/// Miners that have authorized, most recently seen first, with their hashrate.
#[utoipa::path(
    get,
    path = "/api/v1/miners",
    tag = "miners",
    params(MinersQuery),
    responses(
        (status = 200, description = "A page of miners", body = MinerPage),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(app): State<Shared>, uri: Uri) -> Result<Json<MinerPage>, ApiError> {
    let q = QueryArgs::parse(&uri, &["offset", "limit", "window"])?;
    let page = q.page()?;
    let window_secs = window(&q)?;
    let store = &app.state.store;
    let since = now_ms().saturating_sub(window_secs * 1000);
    let (records, counts, recent) = tokio::try_join!(
        db(store.miner_records(page.offset, page.limit)),
        db(store.counts()),
        db(store.recent_work_by_worker(since, None)),
    )?;
    let mut by_miner: HashMap<Address, (U256, u64)> = HashMap::new();
    for w in &recent {
        let e = by_miner.entry(w.miner).or_default();
        e.0 = e.0.saturating_add(w.work);
        e.1 += w.shares;
    }
    let items = records
        .iter()
        .map(|r| {
            let (work, shares) = by_miner.get(&r.miner).copied().unwrap_or_default();
            MinerItem {
                address: r.miner.to_checksum(None),
                workers: r.workers,
                first_seen_ms: r.first_seen_ms,
                last_seen_ms: r.last_seen_ms,
                hashrate: hashrate(window_secs, work, shares),
            }
        })
        .collect();
    Ok(Json(MinerPage {
        items,
        offset: page.offset,
        limit: page.limit,
        total: counts.miners,
    }))
}

/// Query of `GET /api/v1/miners/{address}` (documentation; parsed by `QueryArgs`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct MinerQuery {
    /// Workers to skip (default 0).
    #[param(minimum = 0, default = 0)]
    offset: Option<u64>,
    /// Worker page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// Hashrate window in seconds, 60 to 86400 (default 600).
    #[param(minimum = 60, maximum = 86400, default = 600)]
    window: Option<u64>,
    /// Epochs covered by `sharesPerEpoch` and `credits.perEpoch`, 1 to 1000 (default 24).
    #[param(minimum = 1, maximum = 1000, default = 24)]
    epochs: Option<u64>,
}

/// One miner: workers, hashrate, shares per epoch, pending and claimable
/// credits, and (with an RPC endpoint) what it has claimed on-chain.
#[utoipa::path(
    get,
    path = "/api/v1/miners/{address}",
    tag = "miners",
    params(
        ("address" = String, Path, description = "The miner's EVM address (EIP-55 checksum enforced on mixed case)"),
        MinerQuery,
    ),
    responses(
        (status = 200, description = "The miner", body = MinerDetail),
        (status = 400, description = "Bad address or parameter", body = ErrorBody),
        (status = 404, description = "The pool has never seen this address", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn detail(
    State(app): State<Shared>,
    address: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Json<MinerDetail>, ApiError> {
    let miner = parse_address("address", &segments(address)?)?;
    let q = QueryArgs::parse(&uri, &["offset", "limit", "window", "epochs"])?;
    let page = q.page()?;
    let window_secs = window(&q)?;
    let epochs = q.u64_in("epochs", DEFAULT_EPOCHS, 1, MAX_EPOCHS)?;
    let store = &app.state.store;
    let tps = app.state.token_per_sat;
    let now = now_ms();
    let since = now.saturating_sub(window_secs * 1000);
    let (record, credits, clock, finalized) = tokio::try_join!(
        db(store.miner_record(miner)),
        db(store.credits_of(miner)),
        clock(store),
        db(store.last_epoch_with_status(EpochStatus::Finalized)),
    )?;
    if record.is_none() && credits.is_empty() {
        return Err(ApiError::not_found(
            "address",
            format!(
                "{} has never mined on this pool: no share of it was accepted and it has no credits",
                miner.to_checksum(None)
            ),
        ));
    }
    let first_epoch = clock
        .as_ref()
        .map(|c| current_epoch(c, now).saturating_sub(epochs - 1).max(1));
    let (workers, recent, per_epoch) = tokio::try_join!(
        db(store.workers_of(miner, page.offset, page.limit)),
        db(store.recent_work_by_worker(since, Some(miner))),
        async {
            match first_epoch {
                Some(first) => db(store.shares_per_epoch(first, Some(miner))).await,
                None => Ok(Vec::new()),
            }
        },
    )?;
    let by_worker: HashMap<&str, &WorkerWork> =
        recent.iter().map(|w| (w.worker.as_str(), w)).collect();
    let total_work = recent
        .iter()
        .fold(U256::ZERO, |acc, w| acc.saturating_add(w.work));
    let total_shares = recent.iter().map(|w| w.shares).sum();

    let (mut claimable_sats, mut pending_sats) = (0u64, 0u64);
    for c in &credits {
        if c.epoch <= finalized {
            claimable_sats = claimable_sats.saturating_add(c.sats);
        } else {
            pending_sats = pending_sats.saturating_add(c.sats);
        }
    }
    let claimable_amount = super::token_amount(claimable_sats, tps);
    let (on_chain, on_chain_error) = match &app.chain {
        None => (None, None),
        Some(chain) => match chain.claimed(miner).await {
            Ok(claimed) => (
                Some(OnChainClaims {
                    claimed: claimed.to_string(),
                    unclaimed: claimable_amount.saturating_sub(claimed).to_string(),
                }),
                None,
            ),
            Err(e) => (None, Some(e)),
        },
    };
    Ok(Json(MinerDetail {
        address: miner.to_checksum(None),
        first_seen_ms: record.as_ref().map(|r| r.first_seen_ms),
        last_seen_ms: record.as_ref().map(|r| r.last_seen_ms),
        hashrate: hashrate(window_secs, total_work, total_shares),
        worker_count: record.as_ref().map_or(0, |r| r.workers),
        workers: workers
            .iter()
            .map(|w| {
                let recent = by_worker.get(w.worker.as_str());
                Worker {
                    name: w.worker.clone(),
                    first_seen_ms: w.first_seen_ms,
                    last_seen_ms: w.last_seen_ms,
                    last_share_ms: recent.map(|r| r.last_share_ms),
                    hashrate: hashrate(
                        window_secs,
                        recent.map_or(U256::ZERO, |r| r.work),
                        recent.map_or(0, |r| r.shares),
                    ),
                }
            })
            .collect(),
        workers_offset: page.offset,
        workers_limit: page.limit,
        shares_per_epoch: per_epoch
            .iter()
            .map(|e| EpochShareCount {
                epoch: e.epoch,
                shares: e.shares,
                work: e.work.to_string(),
            })
            .collect(),
        credits: Credits {
            pending_sats,
            pending_amount: amount(pending_sats, tps),
            claimable_sats,
            claimable_amount: claimable_amount.to_string(),
            claimable_epoch: nonzero(finalized),
            per_epoch: credits
                .iter()
                .take(usize::try_from(epochs).unwrap_or(usize::MAX))
                .map(|c| EpochCreditItem {
                    epoch: c.epoch,
                    sats: c.sats,
                    amount: amount(c.sats, tps),
                    claimable: c.epoch <= finalized,
                })
                .collect(),
        },
        on_chain,
        on_chain_error,
    }))
}
