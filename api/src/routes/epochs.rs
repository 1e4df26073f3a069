//! `GET /api/v1/epochs`, `/epochs/{n}`, `/epochs/{n}/proof/{address}` and
//! `/epochs/{n}/file`.

use super::blocks::PageQuery;
use super::{amount, block_json, clock, db, epoch_json, epoch_state, settled_epoch};
use crate::Shared;
use crate::error::ApiError;
use crate::params::{QueryArgs, parse_address, parse_epoch, segments};
use crate::proofs::{shares_for, tree_for};
use crate::types::{EpochDetail, EpochPage, ErrorBody, Proof, ShareProof};
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use proofpool_store::EpochStatus;
use tower_http::services::ServeFile;

/// The header carrying an epoch file's committed `dataHash`.
pub(crate) const DATA_HASH_HEADER: &str = "x-data-hash";

/// Settled epochs, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/epochs",
    tag = "epochs",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of epochs", body = EpochPage),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(app): State<Shared>, uri: Uri) -> Result<Json<EpochPage>, ApiError> {
    let page = QueryArgs::parse(&uri, &["offset", "limit"])?.page()?;
    let store = &app.state.store;
    let (records, counts, clock) = tokio::try_join!(
        db(store.epochs(page.offset, page.limit)),
        db(store.counts()),
        clock(store),
    )?;
    Ok(Json(EpochPage {
        items: records
            .iter()
            .map(|r| epoch_json(r, clock.as_ref()))
            .collect(),
        offset: page.offset,
        limit: page.limit,
        total: counts.epochs,
    }))
}

/// One settled epoch: its commitment (status, roots, hashes, transactions)
/// and totals (work, credits, accounts, blocks paid).
#[utoipa::path(
    get,
    path = "/api/v1/epochs/{n}",
    tag = "epochs",
    params(("n" = u64, Path, description = "The epoch number, from 1")),
    responses(
        (status = 200, description = "The epoch", body = EpochDetail),
        (status = 400, description = "Bad epoch number", body = ErrorBody),
        (status = 404, description = "Epoch not settled", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn detail(
    State(app): State<Shared>,
    n: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Json<EpochDetail>, ApiError> {
    let n = parse_epoch(&segments(n)?)?;
    QueryArgs::parse(&uri, &[])?;
    let store = &app.state.store;
    let record = settled_epoch(store, n).await?;
    let (work, credits, balances, blocks, clock) = tokio::try_join!(
        db(store.epoch_work(n)),
        db(store.credits_in(n)),
        db(store.balances_at(n)),
        db(store.blocks_paid_in(n)),
        clock(store),
    )?;
    let credited: u64 = credits.iter().map(|c| c.sats).fold(0, u64::saturating_add);
    Ok(Json(EpochDetail {
        record: epoch_json(&record, clock.as_ref()),
        total_work: work.work.to_string(),
        credited_sats: credited,
        credited_amount: amount(credited, app.state.token_per_sat),
        accounts: balances.values().filter(|s| **s > 0).count() as u64,
        blocks: blocks
            .iter()
            .map(|b| block_json(b, &app.state.explorer_base_url))
            .collect(),
    }))
}

/// Resolves the `{n}` of a proof: a number, or `latest` for the newest
/// finalized epoch.
async fn proof_epoch(app: &Shared, raw: &str) -> Result<u64, ApiError> {
    if raw != "latest" {
        return parse_epoch(raw);
    }
    match app
        .state
        .store
        .last_epoch_with_status(EpochStatus::Finalized)
        .await?
    {
        0 => Err(ApiError::not_found(
            "epoch",
            "no epoch has been finalized yet, so nothing is claimable",
        )),
        n => Ok(n),
    }
}

/// The account's cumulative amount and Merkle proof against epoch `n`'s
/// reward root: exactly the arguments of `claim(account, cumulativeAmount,
/// proof)`. The contract accepts only the newest finalized root
/// (`claimableNow`); `latest` names that epoch.
#[utoipa::path(
    get,
    path = "/api/v1/epochs/{n}/proof/{address}",
    tag = "epochs",
    params(
        ("n" = String, Path, description = "The epoch number, from 1, or `latest` for the newest finalized epoch"),
        ("address" = String, Path, description = "The account (EIP-55 checksum enforced on mixed case)"),
    ),
    responses(
        (status = 200, description = "The claim arguments", body = Proof),
        (status = 400, description = "Bad epoch number or address", body = ErrorBody),
        (status = 404, description = "Epoch not settled, or nothing to claim for the address", body = ErrorBody),
        (status = 500, description = "The rebuilt tree does not match the stored root (misconfigured API)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn proof(
    State(app): State<Shared>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
) -> Result<Json<Proof>, ApiError> {
    let (n, address) = segments(path)?;
    let n = proof_epoch(&app, &n).await?;
    let account = parse_address("address", &address)?;
    QueryArgs::parse(&uri, &[])?;
    let store = &app.state.store;
    let record = settled_epoch(store, n).await?;
    let tree = tree_for(&app, &record).await?;
    let Some((leaf, proof)) = tree.proof_for(account) else {
        return Err(ApiError::not_found(
            "address",
            format!(
                "{} has nothing to claim in epoch {n}: it has no credits up to that epoch, so it is not in the epoch's reward tree",
                account.to_checksum(None)
            ),
        ));
    };
    let finalized = store.last_epoch_with_status(EpochStatus::Finalized).await?;
    let domain = app.state.domain;
    Ok(Json(Proof {
        account: account.to_checksum(None),
        cumulative_amount: leaf.cumulative.to_string(),
        proof: proof.iter().map(ToString::to_string).collect(),
        reward_root: record.reward_root.to_string(),
        epoch: n,
        epoch_status: epoch_state(record.status),
        claimable_now: record.status == EpochStatus::Finalized && n == finalized,
        chain_id: domain.chain_id,
        distributor: domain.distributor.to_checksum(None),
    }))
}

/// A share's inclusion proof in its epoch's share tree, by the share's
/// hash (as the epoch file lists it): what a miner checks its own shares
/// against the committed share root with.
#[utoipa::path(
    get,
    path = "/api/v1/epochs/{n}/shares/{hash}/proof",
    tag = "epochs",
    params(
        ("n" = u64, Path, description = "The epoch number, from 1"),
        ("hash" = String, Path, description = "The share's hash, 0x and 64 hex digits, as in the epoch file's `shares[].hash`"),
    ),
    responses(
        (status = 200, description = "The share's leaf and proof", body = ShareProof),
        (status = 400, description = "Bad epoch number or hash", body = ErrorBody),
        (status = 404, description = "Epoch not settled, or no share of it has this hash", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn share_proof(
    State(app): State<Shared>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
) -> Result<Json<ShareProof>, ApiError> {
    let (n, hash) = segments(path)?;
    let n = parse_epoch(&n)?;
    let wanted = parse_hash(&hash)?;
    QueryArgs::parse(&uri, &[])?;
    let record = settled_epoch(&app.state.store, n).await?;
    let shares = shares_for(&app, &record).await?;
    let found = shares
        .leaves
        .iter()
        .position(|l| l.share_hash.0 == wanted)
        .and_then(|i| Some((shares.leaves.get(i)?, shares.tree.proof(i)?)));
    let Some((leaf, proof)) = found else {
        return Err(ApiError::not_found(
            "hash",
            format!("no share of epoch {n} has hash {wanted}"),
        ));
    };
    Ok(Json(ShareProof {
        epoch: n,
        seq: leaf.seq,
        miner: leaf.miner.to_checksum(None),
        work: leaf.work.0.to_string(),
        share_hash: wanted.to_string(),
        leaf: leaf.hash().to_string(),
        proof: proof.iter().map(ToString::to_string).collect(),
        share_root: record.share_root.to_string(),
        epoch_status: epoch_state(record.status),
    }))
}

/// A 32-byte hash in `0x` hex.
fn parse_hash(raw: &str) -> Result<alloy::primitives::B256, ApiError> {
    let digits = raw.strip_prefix("0x").unwrap_or(raw);
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad(
            "hash",
            format!(
                "expected 0x and 64 hex digits, got {} characters",
                raw.chars().count()
            ),
        ));
    }
    digits
        .parse()
        .map_err(|_| ApiError::bad("hash", "expected 0x and 64 hex digits".to_owned()))
}

/// The epoch file exactly as committed (its keccak256 is the on-chain
/// `dataHash`, also sent in the `X-Data-Hash` header), streamed from disk.
/// Range and conditional requests are honoured.
#[utoipa::path(
    get,
    path = "/api/v1/epochs/{n}/file",
    tag = "epochs",
    params(("n" = u64, Path, description = "The epoch number, from 1")),
    responses(
        (status = 200, description = "The epoch file (JSON, format proofpool-epoch)", content_type = "application/json",
            headers(("X-Data-Hash" = String, description = "keccak256 of the file, as committed on-chain"))),
        (status = 400, description = "Bad epoch number", body = ErrorBody),
        (status = 404, description = "Epoch not settled, or its file is not in the epochs directory", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn file(
    State(app): State<Shared>,
    n: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let n = parse_epoch(&segments(n)?)?;
    QueryArgs::parse(request.uri(), &[])?;
    let record = settled_epoch(&app.state.store, n).await?;
    let name = &record.file_name;
    // The name comes from our own store, but a path must never leave the
    // epochs directory.
    let plain =
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    if !plain {
        return Err(ApiError::Internal(format!(
            "epoch {n}'s stored file name {name:?} is not a plain file name"
        )));
    }
    let path = app.state.epochs_dir.join(name);
    let missing = || {
        ApiError::not_found(
            "epoch",
            format!(
                "epoch {n} is settled but its file {name} is not in this API's epochs directory; \
                 the API must read the directory the settler writes to"
            ),
        )
    };
    match tokio::fs::metadata(&path).await {
        Ok(m) if m.is_file() => {}
        _ => return Err(missing()),
    }
    let response = ServeFile::new(&path)
        .try_call(request)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot read {}: {e}", path.display())))?;
    if response.status() == StatusCode::NOT_FOUND {
        return Err(missing());
    }
    let mut response = response.map(Body::new);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        HeaderName::from_static(DATA_HASH_HEADER),
        HeaderValue::from_str(&record.data_hash.to_string())
            .map_err(|e| ApiError::Internal(format!("data hash header: {e}")))?,
    );
    // An epoch's file never changes once written.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(response)
}
