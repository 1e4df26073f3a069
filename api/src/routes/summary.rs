//! `GET /api/v1/summary` and `GET /api/v1/hashrate`.

use super::{block_json, clock, current_epoch, db, hashrate as rate, nonzero, now_ms, window};
use crate::Shared;
use crate::error::ApiError;
use crate::params::QueryArgs;
use crate::types::{
    CurrentEpoch, ErrorBody, HashratePoint, HashrateSeries, Luck, Network, Summary,
};
use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use proofpool_primitives::{Difficulty, U256};
use proofpool_store::EpochStatus;
use std::collections::BTreeSet;
use utoipa::IntoParams;

/// Most points one series may have.
pub(crate) const MAX_POINTS: u64 = 5_000;
/// Longest series, hours (30 days).
pub(crate) const MAX_HOURS: u64 = 720;

/// Query of `GET /api/v1/summary` (documentation; parsed by `QueryArgs`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct SummaryQuery {
    /// Hashrate window in seconds, 60 to 86400 (default 600).
    #[param(minimum = 60, maximum = 86400, default = 600)]
    window: Option<u64>,
}

/// Pool summary: miners, workers, epochs, hashrate, network, last block.
#[utoipa::path(
    get,
    path = "/api/v1/summary",
    tag = "pool",
    params(SummaryQuery),
    responses(
        (status = 200, description = "The pool now", body = Summary),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn summary(
    State(app): State<Shared>,
    uri: Uri,
) -> Result<Json<Summary>, ApiError> {
    let q = QueryArgs::parse(&uri, &["window"])?;
    let window_secs = window(&q)?;
    let store = &app.state.store;
    let now = now_ms();
    let since = now.saturating_sub(window_secs * 1000);
    let (clock, recent, counts, settled, committed, finalized, network, last_block, luck) = tokio::try_join!(
        clock(store),
        db(store.recent_work_by_worker(since, None)),
        db(store.counts()),
        db(store.last_settled_epoch()),
        db(store.last_epoch_with_status(EpochStatus::Committed)),
        db(store.last_epoch_with_status(EpochStatus::Finalized)),
        db(store.latest_network()),
        db(store.blocks_page(0, 1)),
        db(store.luck()),
    )?;
    let scheme = match settled {
        0 => None,
        e => store.epoch_scheme(e).await?,
    };
    let current = match &clock {
        Some(c) => {
            let n = current_epoch(c, now);
            let (start_unix, end_unix) = c.bounds(n);
            Some(CurrentEpoch {
                number: n,
                start_unix,
                end_unix,
                shares: store.share_count(n).await?,
            })
        }
        None => None,
    };
    let work = recent
        .iter()
        .fold(U256::ZERO, |acc, w| acc.saturating_add(w.work));
    let shares = recent.iter().map(|w| w.shares).sum();
    let active_miners = recent
        .iter()
        .map(|w| w.miner)
        .collect::<BTreeSet<_>>()
        .len() as u64;
    Ok(Json(Summary {
        now_ms: now,
        epoch_secs: clock.map(|c| c.epoch_secs),
        last_settled_epoch: nonzero(settled),
        last_committed_epoch: nonzero(committed.max(finalized)),
        last_finalized_epoch: nonzero(finalized),
        miners: counts.miners,
        workers: counts.workers,
        active_miners,
        active_workers: recent.len() as u64,
        hashrate: rate(window_secs, work, shares),
        network: network.map(|n| Network {
            difficulty: Difficulty::from_target(n.target).to_string(),
            target: format!("{:#066x}", n.target),
            height: n.height,
        }),
        last_block: last_block
            .first()
            .map(|b| block_json(b, &app.state.explorer_base_url)),
        blocks_found: counts.blocks,
        next_credit_unix: current
            .as_ref()
            .filter(|_| scheme.as_deref().is_some_and(|s| s != "pplns"))
            .map(|c| c.end_unix),
        current_epoch: current,
        scheme,
        luck: luck.map(luck_json),
    }))
}

/// The store's luck as the API shows it: `2^128` score units are one block.
fn luck_json(l: proofpool_store::Luck) -> Luck {
    const PLACES: u32 = 4;
    let one = U256::from(1u8) << 128usize;
    let scale = U256::from(10u64.pow(PLACES));
    let fixed = l.expected_work.saturating_mul(scale) / one;
    let whole = fixed / scale;
    let frac = u64::try_from(fixed % scale).unwrap_or(0);
    let percent = (!l.expected_work.is_zero()).then(|| {
        let p = (U256::from(l.blocks_found) << 128usize).saturating_mul(U256::from(100u8))
            / l.expected_work;
        u64::try_from(p).unwrap_or(u64::MAX)
    });
    Luck {
        first_epoch: l.epochs.0,
        last_epoch: l.epochs.1,
        blocks_found: l.blocks_found,
        expected_blocks: format!("{whole}.{frac:04}"),
        percent,
    }
}

/// Query of `GET /api/v1/hashrate` (documentation; parsed by `QueryArgs`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct HashrateQuery {
    /// One miner's series (EIP-55 checksum enforced on mixed case); the whole pool when absent.
    miner: Option<String>,
    /// Bucket length in seconds, 60 to 86400 (default 600).
    #[param(minimum = 60, maximum = 86400, default = 600)]
    bucket: Option<u64>,
    /// Hours covered, 1 to 720 (default 24); at most 5000 buckets.
    #[param(minimum = 1, maximum = 720, default = 24)]
    hours: Option<u64>,
}

/// Hashrate time series: work per second in each bucket, oldest first.
/// How long after a bucket ends no share can still land in it, so it is
/// kept in the store's rollup table: a share's time is its acceptance on the
/// pool, and the share log commits (or gives up on) a share within seconds;
/// five minutes also covers clock skew between pool instances and the API.
const SETTLED_AFTER_MS: u64 = 5 * 60 * 1000;

#[utoipa::path(
    get,
    path = "/api/v1/hashrate",
    tag = "pool",
    params(HashrateQuery),
    responses(
        (status = 200, description = "The series", body = HashrateSeries),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn hashrate(
    State(app): State<Shared>,
    uri: Uri,
) -> Result<Json<HashrateSeries>, ApiError> {
    let q = QueryArgs::parse(&uri, &["miner", "bucket", "hours"])?;
    let miner = q.address("miner")?;
    let bucket = q.u64_in("bucket", 600, 60, 86_400)?;
    let hours = q.u64_in("hours", 24, 1, MAX_HOURS)?;
    let span = hours * 3600;
    let points = span / bucket;
    if points == 0 {
        return Err(ApiError::bad(
            "bucket",
            format!("bucket={bucket} is longer than hours={hours} ({span} s)"),
        ));
    }
    if points > MAX_POINTS {
        return Err(ApiError::bad(
            "bucket",
            format!(
                "bucket={bucket} over hours={hours} gives {points} points, at most {MAX_POINTS}: use a longer bucket or fewer hours"
            ),
        ));
    }
    let now = now_ms();
    let bucket_ms = bucket * 1000;
    let first = (now / bucket_ms + 1).saturating_sub(points);
    let since = first * bucket_ms;
    let data = app
        .state
        .store
        .work_buckets(
            since,
            now.saturating_add(1),
            bucket_ms,
            miner,
            now.saturating_sub(SETTLED_AFTER_MS),
        )
        .await?;
    let mut data = data.into_iter().peekable();
    let mut out = Vec::with_capacity(points as usize);
    for i in 0..points {
        let start_ms = (first + i) * bucket_ms;
        let seconds = if i + 1 == points {
            // The current bucket: only the part that has passed.
            (now.saturating_sub(start_ms))
                .div_ceil(1000)
                .clamp(1, bucket)
        } else {
            bucket
        };
        let (work, shares) = data
            .next_if(|b| b.start_ms == start_ms)
            .map_or((U256::ZERO, 0), |b| (b.work, b.shares));
        let r = rate(seconds, work, shares);
        out.push(HashratePoint {
            start_unix: start_ms / 1000,
            seconds,
            work: r.work,
            shares,
            hashes_per_second: r.hashes_per_second,
        });
    }
    Ok(Json(HashrateSeries {
        miner: miner.map(|m| m.to_checksum(None)),
        bucket_secs: bucket,
        from_unix: since / 1000,
        to_unix: now / 1000,
        points: out,
    }))
}
