//! The job declaration server (docs/job-declaration.md), on the Stratum V2
//! port: a connection whose `SetupConnection` names the job declaration
//! protocol is served here, over the same Noise handshake as miners.
//!
//! `AllocateMiningJobToken` is answered with a token and the outputs the
//! pool requires (its payout output and the token's share commitment). In
//! coinbase-only mode the client then sets its jobs on its mining
//! connection (`SetCustomMiningJob`, in [`super::session`]).
//!
//! In full-template mode it first declares the block (`DeclareMiningJob`):
//! the coinbase is checked as a set job's is, the transactions are looked
//! up among the pool's current template's (those it lacks it asks for with
//! `ProvideMissingTransactions`), and the node checks the whole block
//! (`getblocktemplate` in proposal mode: every rule but the proof of work,
//! the coinbase's value against the fees included). The answer is a new
//! token that carries the transactions: the job set with it must be the
//! declared one, and the pool assembles and submits its blocks itself.

use crate::job::{DeclaredTemplate, Requirements, required_outputs};
use crate::server::Shared;
use crate::server::guard::{Admission, Fault, RateLimiter};
use crate::sv2::noise::{FrameLimit, Incoming, Sv2Error, Sv2Writer};
use crate::username::MinerId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use stratum_core::binary_sv2::{B064KOwned, B0255Owned, Seq064KOwned};
use stratum_core::job_declaration_sv2::{
    AllocateMiningJobTokenSuccessOwned, DeclareMiningJobErrorOwned, DeclareMiningJobOwned,
    DeclareMiningJobSuccessOwned, ERROR_CODE_DECLARE_MINING_JOB_INTERNAL_ERROR,
    ERROR_CODE_DECLARE_MINING_JOB_INVALID_COINBASE_TX, ERROR_CODE_DECLARE_MINING_JOB_INVALID_JOB,
    ERROR_CODE_DECLARE_MINING_JOB_INVALID_MINING_JOB_TOKEN,
    ERROR_CODE_DECLARE_MINING_JOB_MISSING_TXS, ERROR_CODE_DECLARE_MINING_JOB_STALE_CHAIN_TIP,
    ProvideMissingTransactionsOwned,
};
use stratum_core::parsers_sv2::{AnyMessageOwned, JobDeclarationOwned};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

/// Tokens one connection may be issued a second, and in a burst: a client
/// asks for one per job, and the registry is shared by every client.
const TOKENS_PER_SECOND: u32 = 2;
const TOKEN_BURST: u32 = 20;

/// The largest frame a job declaration connection reads: a declaration
/// naming a full block's transactions, or a block's worth of them provided.
const MAX_JD_FRAME: usize = 5 * 1024 * 1024;

/// Job declaration connections that may read frames that large at once
/// (each may buffer one); the others keep the mining port's limit.
const MAX_LARGE_FRAMES: usize = 16;

/// A job declaration connection's claim on block-sized frames, given back
/// when it ends.
struct LargeFrames<'a>(Option<&'a Shared>);

impl<'a> LargeFrames<'a> {
    /// Raises `limit` to [`MAX_JD_FRAME`] if fewer than
    /// [`MAX_LARGE_FRAMES`] connections hold it.
    fn claim(shared: &'a Shared, limit: &FrameLimit) -> Self {
        let taken = shared.jd_large_frames.fetch_update(
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
            |n| (n < MAX_LARGE_FRAMES).then_some(n + 1),
        );
        if taken.is_err() {
            tracing::info!(
                "job declaration connection limited to the mining frame size: {MAX_LARGE_FRAMES} already read block-sized frames"
            );
            return Self(None);
        }
        limit.raise(MAX_JD_FRAME);
        Self(Some(shared))
    }
}

impl Drop for LargeFrames<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.0 {
            shared
                .jd_large_frames
                .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        }
    }
}

/// How long a client has to provide the transactions the pool lacks.
const PROVIDE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The most transactions one declaration may name: more than a block of
/// the smallest transactions holds.
const MAX_DECLARED_TXS: usize = 25_000;

/// The most bytes of transactions one declaration may name, whether the
/// pool has them or the client provides them: a block's weight limit,
/// every byte weighing at least one.
const MAX_BLOCK_BYTES: usize = 4_000_000;

/// Blocks the node checks for declarations at once, over every
/// connection: each check holds the node's main lock.
fn proposals() -> &'static tokio::sync::Semaphore {
    static PROPOSALS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PROPOSALS.get_or_init(|| tokio::sync::Semaphore::new(1))
}

/// A refused declaration: the spec's error code and why.
type Refused = (&'static str, String);

/// Serves one job declaration connection whose setup was accepted: sends
/// `ok` once its frames may be block-sized (the client's next message may
/// be).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    admission: &Admission,
    writer: &mut Sv2Writer<OwnedWriteHalf>,
    rx: &mut mpsc::Receiver<Incoming>,
    limit: &FrameLimit,
    ok: stratum_core::common_messages_sv2::SetupConnectionSuccess,
) -> Result<(), Sv2Error> {
    let _large = LargeFrames::claim(shared, limit);
    writer.send(ok).await?;
    let mut stop = std::pin::pin!(shared.stop.clone().cancelled_owned());
    let mut limiter = RateLimiter::new(TOKENS_PER_SECOND, TOKEN_BURST);
    loop {
        let message = tokio::select! {
            m = rx.recv() => m,
            () = &mut stop => return Ok(()),
        };
        let message = match message {
            Some(Ok(Some(m))) => *m,
            Some(Err(e)) => return Err(e),
            Some(Ok(None)) | None => return Ok(()),
        };
        match message {
            AnyMessageOwned::JobDeclaration(JobDeclarationOwned::AllocateMiningJobToken(m)) => {
                let user = m.user_identifier.as_utf8_or_hex();
                // The spec has no error for this message: a client that is
                // not a miner of this pool is disconnected.
                let Ok(miner) = MinerId::parse(&user) else {
                    tracing::info!(%peer, user = %proofpool_primitives::Excerpt::new(&user), "job declaration refused: not a payout address");
                    admission.record(0, Some(Fault::Malformed), Instant::now());
                    return Ok(());
                };
                // Past the rate, the answer waits: a flood of requests
                // cannot evict other clients' tokens.
                while !limiter.allow(Instant::now()) {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                let (token, outputs) = allocate(shared, &miner);
                writer
                    .send(AnyMessageOwned::JobDeclaration(
                        JobDeclarationOwned::AllocateMiningJobTokenSuccess(
                            AllocateMiningJobTokenSuccessOwned {
                                request_id: m.request_id,
                                mining_job_token: B0255Owned::try_from(token.to_vec())
                                    .map_err(|e| Sv2Error::Encode(format!("{e:?}")))?,
                                coinbase_outputs: B064KOwned::try_from(outputs)
                                    .map_err(|e| Sv2Error::Encode(format!("{e:?}")))?,
                            },
                        ),
                    ))
                    .await?;
            }
            AnyMessageOwned::JobDeclaration(JobDeclarationOwned::DeclareMiningJob(m)) => {
                // Each costs the node a block check: rate limited with
                // the tokens.
                while !limiter.allow(Instant::now()) {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                let request_id = m.request_id;
                let answer = match declare(shared, writer, rx, m).await? {
                    Ok(token) => {
                        shared.metrics.jd_full_template_jobs.increment(1);
                        JobDeclarationOwned::DeclareMiningJobSuccess(DeclareMiningJobSuccessOwned {
                            request_id,
                            new_mining_job_token: B0255Owned::try_from(token.to_vec())
                                .map_err(|e| Sv2Error::Encode(format!("{e:?}")))?,
                        })
                    }
                    Err((code, details)) => {
                        tracing::debug!(%peer, code, %details, "job declaration refused");
                        if code == ERROR_CODE_DECLARE_MINING_JOB_INVALID_COINBASE_TX {
                            admission.record(0, Some(Fault::Malformed), Instant::now());
                        }
                        let mut details = details.into_bytes();
                        details.truncate(1024);
                        JobDeclarationOwned::DeclareMiningJobError(DeclareMiningJobErrorOwned {
                            request_id,
                            error_code: code
                                .try_into()
                                .expect("the spec's error codes are short ASCII"),
                            error_details: B064KOwned::try_from(details)
                                .map_err(|e| Sv2Error::Encode(format!("{e:?}")))?,
                        })
                    }
                };
                writer.send(AnyMessageOwned::JobDeclaration(answer)).await?;
            }
            other => {
                tracing::debug!(%peer, message = %other, "job declaration message ignored");
            }
        }
    }
}

/// A full-template declaration (`DeclareMiningJob`), checked: the token,
/// the coinbase, the transactions (asking the client for those the pool
/// lacks) and the whole block, by the node. A new token carrying the
/// declared block if it passes, the spec's error code and why if not; an
/// error only if the connection failed.
async fn declare(
    shared: &Arc<Shared>,
    writer: &mut Sv2Writer<OwnedWriteHalf>,
    rx: &mut mpsc::Receiver<Incoming>,
    m: DeclareMiningJobOwned,
) -> Result<Result<[u8; crate::jd::TOKEN_LEN], Refused>, Sv2Error> {
    let now = Instant::now();
    let token = shared
        .tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(m.mining_job_token.as_ref(), now);
    let Some(token) = token.filter(|t| t.template.is_none()) else {
        return Ok(Err((
            ERROR_CODE_DECLARE_MINING_JOB_INVALID_MINING_JOB_TOKEN,
            "not a live token from AllocateMiningJobToken".into(),
        )));
    };
    let Some(tip) = shared.work.current() else {
        return Ok(Err((
            ERROR_CODE_DECLARE_MINING_JOB_INTERNAL_ERROR,
            "the pool has no work yet".into(),
        )));
    };
    let coinbase = match crate::job::declared_coinbase(
        m.coinbase_tx_prefix.as_ref(),
        m.coinbase_tx_suffix.as_ref(),
    ) {
        Ok(tx) => tx,
        Err(e) => {
            return Ok(Err((
                ERROR_CODE_DECLARE_MINING_JOB_INVALID_COINBASE_TX,
                e.to_string(),
            )));
        }
    };
    let config = shared.work.job_config();
    let requirements = Requirements {
        tip: &tip,
        payout_script: &config.payout_script,
        commitment: token.commitment(),
        extranonce1_len: 0,
        extranonce2_len: 0,
        now: (crate::server::unix_ms() / 1000) as u32,
        min_value: crate::job::subsidy(shared.config.network, tip.height()),
    };
    if let Err(e) = crate::job::check_declared_coinbase(&coinbase, &requirements) {
        return Ok(Err((
            ERROR_CODE_DECLARE_MINING_JOB_INVALID_COINBASE_TX,
            e.to_string(),
        )));
    }
    if m.version >> 29 != 0b001 {
        return Ok(Err((
            ERROR_CODE_DECLARE_MINING_JOB_INVALID_JOB,
            format!("version {:#010x} is not a BIP9 version", m.version),
        )));
    }
    let wtxids: Vec<[u8; 32]> = m
        .wtxid_list
        .into_inner()
        .into_iter()
        .map(|w| w.to_array())
        .collect();
    if wtxids.len() > MAX_DECLARED_TXS {
        return Ok(Err((
            ERROR_CODE_DECLARE_MINING_JOB_INVALID_JOB,
            format!("{} transactions; at most {MAX_DECLARED_TXS}", wtxids.len()),
        )));
    }
    let transactions = match resolve(&tip, &wtxids, m.request_id, writer, rx).await? {
        Ok(txs) => txs,
        Err(refused) => return Ok(Err(refused)),
    };
    let template = DeclaredTemplate::new(&tip, m.version, coinbase, transactions);
    let block = template.proposal(&tip);
    let proposal = serde_json::json!([{
        "mode": "proposal",
        "data": bitcoin::consensus::encode::serialize_hex(&block),
        "rules": ["segwit"],
    }]);
    let checked = {
        let _one_at_a_time = proposals().acquire().await;
        shared
            .node
            .call::<serde_json::Value>("getblocktemplate", proposal, None)
            .await
    };
    match checked {
        Ok(serde_json::Value::Null) => {}
        Ok(reason) => {
            let reason = reason
                .as_str()
                .map_or_else(|| reason.to_string(), str::to_owned);
            let code = if reason.contains("prevblk") {
                ERROR_CODE_DECLARE_MINING_JOB_STALE_CHAIN_TIP
            } else {
                ERROR_CODE_DECLARE_MINING_JOB_INVALID_JOB
            };
            return Ok(Err((code, format!("the node refused the block: {reason}"))));
        }
        Err(e) => {
            return Ok(Err((
                ERROR_CODE_DECLARE_MINING_JOB_INTERNAL_ERROR,
                format!("the node could not check the block: {e}"),
            )));
        }
    }
    let issued = shared
        .tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .allocate_template(&token, template, Instant::now());
    shared.metrics.jd_tokens_allocated.increment(1);
    Ok(Ok(issued))
}

/// The declared transactions, in order: those in the pool's current
/// template from it, the others asked of the client
/// (`ProvideMissingTransactions`), each checked to be the transaction its
/// wtxid names.
async fn resolve(
    tip: &crate::job::Job,
    wtxids: &[[u8; 32]],
    request_id: u32,
    writer: &mut Sv2Writer<OwnedWriteHalf>,
    rx: &mut mpsc::Receiver<Incoming>,
) -> Result<Result<Vec<bitcoin::Transaction>, Refused>, Sv2Error> {
    use bitcoin::hashes::Hash as _;
    let distinct: std::collections::HashSet<&[u8; 32]> = wtxids.iter().collect();
    if distinct.len() != wtxids.len() {
        return Ok(Err((
            ERROR_CODE_DECLARE_MINING_JOB_INVALID_JOB,
            "a transaction is named twice".into(),
        )));
    }
    let known: std::collections::HashMap<[u8; 32], &bitcoin::Transaction> = tip
        .transactions()
        .iter()
        .map(|tx| (tx.compute_wtxid().to_byte_array(), tx))
        .collect();
    let found: Vec<Option<&bitcoin::Transaction>> =
        wtxids.iter().map(|w| known.get(w).copied()).collect();
    let mut size: usize = found.iter().flatten().map(|tx| tx.total_size()).sum();
    if size > MAX_BLOCK_BYTES {
        return Ok(Err((
            ERROR_CODE_DECLARE_MINING_JOB_INVALID_JOB,
            format!("{size} bytes of transactions; a block holds at most {MAX_BLOCK_BYTES}"),
        )));
    }
    let mut txs: Vec<Option<bitcoin::Transaction>> =
        found.into_iter().map(|tx| tx.cloned()).collect();
    let missing: Vec<u16> = txs
        .iter()
        .enumerate()
        .filter(|(_, tx)| tx.is_none())
        .filter_map(|(i, _)| u16::try_from(i).ok())
        .collect();
    if !missing.is_empty() {
        let ask = ProvideMissingTransactionsOwned {
            request_id,
            unknown_tx_position_list: Seq064KOwned::new(missing.clone())
                .map_err(|e| Sv2Error::Encode(format!("{e:?}")))?,
        };
        writer
            .send(AnyMessageOwned::JobDeclaration(
                JobDeclarationOwned::ProvideMissingTransactions(ask),
            ))
            .await?;
        let provided = match tokio::time::timeout(PROVIDE_TIMEOUT, rx.recv()).await {
            Ok(Some(Ok(Some(message)))) => match *message {
                AnyMessageOwned::JobDeclaration(
                    JobDeclarationOwned::ProvideMissingTransactionsSuccess(p),
                ) if p.request_id == request_id => p.transaction_list.into_inner(),
                other => {
                    return Ok(Err((
                        ERROR_CODE_DECLARE_MINING_JOB_MISSING_TXS,
                        format!("expected ProvideMissingTransactions.Success, got {other}"),
                    )));
                }
            },
            Ok(Some(Err(e))) => return Err(e),
            Ok(Some(Ok(None)) | None) => return Err(Sv2Error::Frame("closed".into())),
            Err(_) => {
                return Ok(Err((
                    ERROR_CODE_DECLARE_MINING_JOB_MISSING_TXS,
                    format!("no transactions within {PROVIDE_TIMEOUT:?}"),
                )));
            }
        };
        if provided.len() != missing.len() {
            return Ok(Err((
                ERROR_CODE_DECLARE_MINING_JOB_MISSING_TXS,
                format!(
                    "{} transactions asked for, {} provided",
                    missing.len(),
                    provided.len()
                ),
            )));
        }
        size += provided.iter().map(|raw| raw.as_ref().len()).sum::<usize>();
        if size > MAX_BLOCK_BYTES {
            return Ok(Err((
                ERROR_CODE_DECLARE_MINING_JOB_INVALID_JOB,
                format!("{size} bytes of transactions; a block holds at most {MAX_BLOCK_BYTES}"),
            )));
        }
        for (&position, raw) in missing.iter().zip(provided) {
            let at = usize::from(position);
            let tx: bitcoin::Transaction = match bitcoin::consensus::deserialize(raw.as_ref()) {
                Ok(tx) => tx,
                Err(e) => {
                    return Ok(Err((
                        ERROR_CODE_DECLARE_MINING_JOB_INVALID_JOB,
                        format!("transaction {at} is not a transaction: {e}"),
                    )));
                }
            };
            if Some(&tx.compute_wtxid().to_byte_array()) != wtxids.get(at) {
                return Ok(Err((
                    ERROR_CODE_DECLARE_MINING_JOB_INVALID_JOB,
                    format!("transaction {at} is not the one its wtxid names"),
                )));
            }
            if let Some(slot) = txs.get_mut(at) {
                *slot = Some(tx);
            }
        }
    }
    match txs.into_iter().collect::<Option<Vec<_>>>() {
        Some(txs) => Ok(Ok(txs)),
        None => Ok(Err((
            ERROR_CODE_DECLARE_MINING_JOB_MISSING_TXS,
            "a transaction past the 65,535th position is missing".into(),
        ))),
    }
}

/// Issues a token for `miner` at the pool's start difficulty and the log
/// head now, and the outputs a job declared with it must carry.
fn allocate(shared: &Shared, miner: &MinerId) -> ([u8; crate::jd::TOKEN_LEN], Vec<u8>) {
    let target = shared.config.start_difficulty.to_target();
    let (target_bits, _) = proofpool_epoch::share_commitment::committed_target(target);
    let log_head = shared.work.log_head();
    let token = shared
        .tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .allocate(
            miner.address.to_address(),
            target_bits,
            log_head,
            Instant::now(),
        );
    shared.metrics.jd_tokens_allocated.increment(1);
    let commitment = proofpool_epoch::share_commitment::ShareCommitment {
        miner: miner.address.to_address(),
        target_bits,
        log_head,
    };
    let payout = shared.work.job_config().payout_script;
    (token, required_outputs(&payout, &commitment))
}
