//! Submitting a block that a share solved, and confirming bitcoind took it.

use super::Shared;
use crate::session::Solved;
use proofpool_primitives::{Address, B256, Sats};
use proofpool_store::{BlockRecord, BlockStatus, NewShare, SubmitError, WriteError};
use std::sync::Arc;

/// A block found by the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundBlock {
    /// Its height.
    pub height: u64,
    /// Its hash, display (RPC) order.
    pub hash: String,
    /// What the coinbase pays the pool.
    pub coinbase_value: Sats,
    /// The miner whose share solved it.
    pub finder: Address,
    /// The solving share's sequence number.
    pub share_seq: u64,
    /// Whether bitcoind has it in its best chain at `height` right after submission.
    pub accepted: bool,
    /// `submitblock`'s answer when it was not null.
    pub reject_reason: Option<String>,
}

/// What the session hands over when a share meets the network target.
#[derive(Debug)]
pub(crate) struct Solution {
    /// The block.
    pub(crate) solved: Solved,
    /// Resolves to the solving share's sequence number once it is durable,
    /// or to the store's error if it was not written.
    pub(crate) share_seq: tokio::sync::oneshot::Receiver<Result<u64, WriteError>>,
    /// The solving share, to write again if the store failed it.
    pub(crate) share: NewShare,
}

/// Tells a block's task the solving share's sequence number once it is
/// durable, or the store's error.
pub(crate) type ShareSeq = tokio::sync::oneshot::Sender<Result<u64, WriteError>>;

/// Hands an accepted share to the share log (through `log`) and, if it
/// solved a block, the block to bitcoind, whatever the store said: a full
/// share queue must not cost the pool a block. Only the first solution per
/// previous block is submitted: on a chain as easy as regtest every share
/// can meet the target, and the rest would only be stale siblings.
///
/// A solving share is kept, so that the block task can write it again if
/// the store fails it: a block must always be tied to its share (the audit
/// fails a block without one). The session sends the share's outcome down
/// the returned [`ShareSeq`].
pub(crate) fn hand_over<T>(
    shared: &Arc<Shared>,
    share: NewShare,
    solved: Option<Solved>,
    log: impl FnOnce(NewShare) -> Result<T, SubmitError>,
) -> (Result<T, SubmitError>, Option<ShareSeq>) {
    // A declared job's block is the miner's to propagate: it does not take
    // the claim, or a declared block that never appears would keep the
    // pool's own solution at that height from being submitted.
    let solving = solved
        .filter(|s| !s.job.knows_transactions() || shared.claim_height(s.job.prev_hash()))
        .map(|solved| (solved, share.clone()));
    let submitted = log(share);
    let block = solving.map(|(solved, share)| {
        let (seq_tx, seq_rx) = tokio::sync::oneshot::channel();
        shared.tasks.spawn(submit(
            shared.clone(),
            Solution {
                solved,
                share_seq: seq_rx,
                share,
            },
        ));
        seq_tx
    });
    (submitted, block)
}

/// How often a solving share the store failed is written again, at most.
const SHARE_RETRIES: u32 = 12;

/// The longest wait between two of those writes.
const SHARE_RETRY_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Writes a solving share the store failed once more, and again with a
/// growing wait while the store keeps failing (an outage at the moment a
/// block is found must not leave the block without its share: the PPLNS
/// window starts there, and the audit fails a block whose share is not in
/// the files). Gives up when the pool stops or after [`SHARE_RETRIES`].
async fn write_again(shared: &Shared, mut share: NewShare, height: u64) -> Option<u64> {
    let mut wait = std::time::Duration::from_secs(1);
    for attempt in 1..=SHARE_RETRIES {
        if shared.stop.is_cancelled() {
            break;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(SHARE_RETRY_MAX_WAIT);
        // Stamped when it is written: its epoch may have closed during the
        // outage, and a share must lie inside the epoch it is filed in.
        share.time_ms = super::unix_ms();
        match shared.log.submit(share.clone()) {
            Ok(written) => match written.await {
                Ok(Ok(committed)) => {
                    tracing::info!(
                        height,
                        seq = committed.seq,
                        attempt,
                        "the solving share was written on a retry"
                    );
                    return Some(committed.seq);
                }
                Ok(Err(e)) => {
                    tracing::warn!(height, attempt, error = %e, "the solving share is still not written; retrying");
                }
                Err(_) => break,
            },
            Err(SubmitError::Closed) => break,
            Err(e) => {
                tracing::warn!(height, attempt, error = %e, "the solving share is still not written; retrying");
            }
        }
    }
    None
}

/// Submits the block, then checks the chain: a null `submitblock` answer is
/// not proof, so acceptance means `getblockhash(height)` is our hash (or the
/// node knows the block with at least one confirmation).
pub(crate) async fn submit(shared: Arc<Shared>, solution: Solution) {
    let Solution {
        solved: s,
        share_seq,
        share,
    } = solution;
    let height = u64::from(s.job.height());
    if !s.job.knows_transactions() {
        // A job the miner declared without its transactions: the miner's
        // own node propagates the block; the pool waits for its node to
        // have it, then records it like its own.
        let accepted = wait_for_declared_block(&shared, &s.hash_display).await;
        // Not seen yet is not rejected: recorded as submitted, settlement
        // looks for it again at its next pass (and calls it orphaned only
        // if the node still does not know it).
        let status = if accepted {
            BlockStatus::Immature
        } else {
            tracing::warn!(height, hash = %s.hash_display, wait_secs = DECLARED_BLOCK_WAIT.as_secs(), "a block on a declared job is not in the pool's node's chain yet");
            BlockStatus::Submitted
        };
        return record(&shared, s, share_seq, share, status, None).await;
    }
    let hex = match s.job.block_hex(
        &s.binding,
        &s.extranonce1,
        &s.extranonce2,
        s.ntime,
        s.nonce,
        s.version,
    ) {
        Ok(hex) => hex,
        Err(e) => {
            tracing::error!(height, error = %e, "cannot assemble the block");
            return;
        }
    };
    let reject_reason = match shared.node.submit_block(&hex).await {
        Ok(reason) => reason,
        Err(e) => {
            tracing::error!(height, hash = %s.hash_display, error = %e, "submitblock failed");
            Some(e.to_string())
        }
    };
    // A new block changes the template: push new work at once.
    shared.work.refresh_now();
    let at_height = shared.node.get_block_hash(height).await;
    let accepted = match &at_height {
        Ok(Some(hash)) if *hash == s.hash_display => true,
        _ => matches!(
            shared.node.get_block_header(&s.hash_display).await,
            Ok(Some(h)) if h.confirmations >= 1
        ),
    };
    if !accepted {
        tracing::debug!(height, hash = %s.hash_display, at_height = ?at_height.ok(), "another block at the height");
    }
    let status = if accepted {
        BlockStatus::Immature
    } else {
        BlockStatus::Rejected
    };
    record(&shared, s, share_seq, share, status, reject_reason).await;
}

/// How long the pool waits for a block on a declared job to reach its node.
const DECLARED_BLOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether the pool's node has the block `hash` (display order) in its
/// chain, asked once a second for up to [`DECLARED_BLOCK_WAIT`] or until
/// the pool stops.
async fn wait_for_declared_block(shared: &Shared, hash: &str) -> bool {
    let deadline = tokio::time::Instant::now() + DECLARED_BLOCK_WAIT;
    loop {
        if matches!(
            shared.node.get_block_header(hash).await,
            Ok(Some(h)) if h.confirmations >= 1
        ) {
            shared.work.refresh_now();
            return true;
        }
        if tokio::time::Instant::now() >= deadline || shared.stop.is_cancelled() {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Counts and records a block the pool submitted (or saw), once its
/// solving share's number is known.
async fn record(
    shared: &Arc<Shared>,
    s: Solved,
    share_seq: tokio::sync::oneshot::Receiver<Result<u64, WriteError>>,
    share: NewShare,
    status: BlockStatus,
    reject_reason: Option<String>,
) {
    let shared = shared.clone();
    let height = u64::from(s.job.height());
    let accepted = status == BlockStatus::Immature;
    match status {
        BlockStatus::Immature => shared.metrics.blocks_found.increment(1),
        BlockStatus::Rejected => shared.metrics.blocks_rejected.increment(1),
        _ => {}
    }
    if accepted {
        tracing::info!(height, hash = %s.hash_display, finder = %s.finder, "block found and accepted");
    } else if status == BlockStatus::Rejected {
        tracing::warn!(height, hash = %s.hash_display, reason = ?reject_reason, "block not accepted");
    }
    // The solving share is committed before its submit is answered; wait
    // for its number. One the store failed is written again (see
    // `write_again`); only if that never succeeds is the block recorded
    // with seq 0 (settlement then walks back from the newest share before
    // the block's time, and the audit reports the block).
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(300), share_seq).await;
    let share_seq = match outcome {
        Ok(Ok(Ok(seq))) => Some(seq),
        Ok(Ok(Err(e))) => {
            tracing::error!(height, hash = %s.hash_display, error = %e, "the store failed the solving share; writing it again");
            write_again(&shared, share, height).await
        }
        // The outcome was lost (the session ended mid-way): whether the
        // share was written is unknown, and writing it twice would be worse.
        Ok(Err(_)) | Err(_) => None,
    };
    let share_seq = share_seq.unwrap_or_else(|| {
        tracing::error!(height, hash = %s.hash_display, "the solving share was not recorded");
        0
    });
    match s.hash_display.parse::<B256>() {
        Ok(hash) => shared.log.record_block(BlockRecord {
            hash,
            height,
            coinbase_value: s.job.coinbase_value().0,
            finder: s.finder,
            worker: s.worker.clone(),
            share_seq,
            instance: shared.config.instance_id,
            found_ms: super::unix_ms(),
            status,
            confirmations: u64::from(accepted),
            reject_reason: reject_reason.clone(),
            paid_epoch: None,
        }),
        Err(e) => tracing::error!(hash = %s.hash_display, error = %e, "block hash does not parse"),
    }
    let block = FoundBlock {
        height,
        hash: s.hash_display,
        coinbase_value: s.job.coinbase_value(),
        finder: s.finder,
        share_seq,
        accepted,
        reject_reason,
    };
    shared
        .blocks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(block);
}
