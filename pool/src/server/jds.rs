//! The job declaration server (docs/job-declaration.md), on the Stratum V2
//! port: a connection whose `SetupConnection` names the job declaration
//! protocol is served here, over the same Noise handshake as miners.
//!
//! Coinbase-only mode: `AllocateMiningJobToken` is answered with a token and
//! the outputs the pool requires (its payout output and the token's share
//! commitment); the client then sets its jobs on its mining connection
//! (`SetCustomMiningJob`, in [`super::sv2`]). Full-template declaration
//! (`DeclareMiningJob`) is refused with the spec's error.

use super::Shared;
use super::guard::{Admission, Fault, RateLimiter};
use crate::job::required_outputs;
use crate::sv2::noise::{Incoming, Sv2Error, Sv2Writer};
use crate::username::MinerId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use stratum_core::binary_sv2::{B064KOwned, B0255Owned};
use stratum_core::job_declaration_sv2::{
    AllocateMiningJobTokenSuccessOwned, DeclareMiningJobErrorOwned,
    ERROR_CODE_DECLARE_MINING_JOB_INVALID_JOB,
};
use stratum_core::parsers_sv2::{AnyMessageOwned, JobDeclarationOwned};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

/// Tokens one connection may be issued a second, and in a burst: a client
/// asks for one per job, and the registry is shared by every client.
const TOKENS_PER_SECOND: u32 = 2;
const TOKEN_BURST: u32 = 20;

/// Serves one job declaration connection whose setup was accepted.
pub(crate) async fn serve(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    admission: &Admission,
    writer: &mut Sv2Writer<OwnedWriteHalf>,
    rx: &mut mpsc::Receiver<Incoming>,
) -> Result<(), Sv2Error> {
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
                shared.metrics.jd_full_template_jobs.increment(1);
                let details =
                    b"full-template job declaration is not served; use coinbase-only mode";
                writer
                    .send(AnyMessageOwned::JobDeclaration(
                        JobDeclarationOwned::DeclareMiningJobError(DeclareMiningJobErrorOwned {
                            request_id: m.request_id,
                            error_code: ERROR_CODE_DECLARE_MINING_JOB_INVALID_JOB
                                .try_into()
                                .expect("the spec's error codes are short ASCII"),
                            error_details: B064KOwned::try_from(details.to_vec())
                                .map_err(|e| Sv2Error::Encode(format!("{e:?}")))?,
                        }),
                    ))
                    .await?;
            }
            other => {
                tracing::debug!(%peer, message = %other, "job declaration message ignored");
            }
        }
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
