//! The checks against bitcoind: paid blocks are in the best chain with the
//! value their file says; every job builds on a block bitcoind knows, at the
//! height after it, with the target the consensus rules require there; and
//! every block the shares found is paid, or orphaned, or too young to be.
//!
//! Headers are read with `getblockheader` and cached, so an epoch's jobs
//! (most of which build on a handful of blocks) cost a few calls. The
//! required target comes from the same rules as the carried headers'
//! ([`super::headers`]), with bitcoind's `chain` naming the network.
//! Findings from bitcoind are named `bitcoind.*`, beside the ones the files
//! alone give.

use super::blocks::display_order;
use super::finding::{Findings, Subject};
use super::headers::{HeaderInfo, HeaderLookup, nbits_list, network_of, required_nbits};
use super::{AuditError, Finding, FoundBlock, JobAnchor};
use alloy::primitives::B256;
use bitcoin::Network;
use proofpool_epoch::PaidBlock;
use proofpool_node::{NodeClient, NodeError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Default `--maturity`: the confirmations after which the pool pays a
/// block (Bitcoin's coinbase maturity).
pub const DEFAULT_MATURITY: u64 = 100;

/// Confirmations past maturity by which a found block must be paid, for
/// epochs of `epoch_secs`: the blocks of two epochs (at Bitcoin's
/// 10-minute spacing, rounded up) plus an hour's worth. A block that
/// matured just after the newest audited epoch was settled is paid by the
/// epoch after it, which may not be committed yet: such a block is pending,
/// not hidden.
pub fn maturity_slack(epoch_secs: u64) -> u64 {
    (2 * epoch_secs).div_ceil(600) + 6
}

/// How far past the clock Bitcoin lets a block's time run.
const MAX_FUTURE_BLOCK_SECS: u64 = 7200;

/// What `getblock HASH 1` says, as far as the scan reads it.
#[derive(Debug, serde::Deserialize)]
struct BlockTxids {
    /// The block's txids, coinbase first.
    tx: Vec<String>,
    /// The header time.
    time: u64,
}

/// What `getblockheader HASH true` says, as far as these checks read it.
#[derive(Debug, Clone, serde::Deserialize)]
struct HeaderView {
    /// Confirmations; -1 when the block is not in the best chain.
    confirmations: i64,
    height: u64,
    /// The compact target, as hex.
    bits: String,
    time: u64,
    #[serde(default)]
    previousblockhash: Option<String>,
}

impl HeaderView {
    fn nbits(&self) -> Result<u32, AuditError> {
        u32::from_str_radix(&self.bits, 16).map_err(|_| {
            AuditError::Node(NodeError::Decode {
                method: "getblockheader",
                reason: format!("bits {:?} is not hex", self.bits),
            })
        })
    }

    /// What the difficulty rules read, for the header whose hash is `hash`
    /// (display order).
    fn info(&self, hash: B256) -> Result<HeaderInfo, AuditError> {
        let prev = match &self.previousblockhash {
            Some(p) => Some(p.parse::<B256>().map_err(|e| {
                AuditError::Node(NodeError::Decode {
                    method: "getblockheader",
                    reason: format!("previousblockhash {p:?}: {e}"),
                })
            })?),
            None => None,
        };
        Ok(HeaderInfo {
            hash,
            height: self.height,
            bits: self.nbits()?,
            time: self.time,
            prev,
        })
    }
}

impl HeaderLookup for BlockChecker {
    async fn by_hash(&self, hash: B256) -> Result<Option<HeaderInfo>, AuditError> {
        match self.header(&alloy::hex::encode(hash)).await? {
            Some(view) => Ok(Some(view.info(hash)?)),
            None => Ok(None),
        }
    }

    /// The best chain's block at `height` (the branch `of` is on differs
    /// only for a stale tip, and then only above the fork).
    async fn ancestor(
        &self,
        _of: &HeaderInfo,
        height: u64,
    ) -> Result<Option<HeaderInfo>, AuditError> {
        let Some(hex) = self.node.get_block_hash(height).await? else {
            return Ok(None);
        };
        let hash = hex.parse::<B256>().map_err(|e| {
            AuditError::Node(NodeError::Decode {
                method: "getblockhash",
                reason: e.to_string(),
            })
        })?;
        self.by_hash(hash).await
    }
}

/// Checks an audit's blocks and jobs against bitcoind (see the module docs).
#[derive(Debug)]
pub struct BlockChecker {
    node: NodeClient,
    network: Mutex<Option<Network>>,
    /// Headers by display-order hex hash; `None` for blocks bitcoind does
    /// not know.
    headers: Mutex<HashMap<String, Option<Arc<HeaderView>>>>,
    /// What the best chain's block at a height paid in its coinbase
    /// (`None` above the tip).
    mined_values: Mutex<HashMap<u64, Option<u64>>>,
}

impl BlockChecker {
    /// Checks through `node`.
    pub fn new(node: NodeClient) -> Self {
        Self {
            node,
            network: Mutex::new(None),
            headers: Mutex::new(HashMap::new()),
            mined_values: Mutex::new(HashMap::new()),
        }
    }

    /// The findings for one paid block (empty if bitcoind agrees): in the
    /// best chain, at the height and with the coinbase value the file says.
    pub async fn check(&self, block: &PaidBlock) -> Result<Vec<Finding>, AuditError> {
        let subject = Subject::Block {
            height: block.height,
        };
        let mut f = Findings::default();
        let hex = alloy::hex::encode(block.hash);
        let Some(header) = self.header(&hex).await? else {
            f.mismatch(
                subject,
                "bitcoind.hash",
                "a block bitcoind knows",
                "an unknown block",
            );
            return Ok(f.into_list());
        };
        if header.confirmations < 1 {
            f.mismatch(
                subject,
                "bitcoind.hash",
                "a block in bitcoind's best chain",
                format_args!("an orphaned block ({} confirmations)", header.confirmations),
            );
        }
        f.compare(subject, "bitcoind.height", header.height, block.height);
        match self.coinbase_value_of(&hex).await? {
            Ok((hash, value)) => {
                f.compare(subject, "bitcoind.hash", hash, block.hash);
                f.compare(
                    subject,
                    "bitcoind.coinbase_value",
                    value,
                    block.coinbase_value.0,
                );
            }
            Err(why) => f.mismatch(
                subject,
                "bitcoind.coinbase_value",
                "a block bitcoind serves whole",
                why,
            ),
        }
        Ok(f.into_list())
    }

    /// The findings for one job (empty if it builds on the real chain): its
    /// previous block is one bitcoind knows (in the best chain, or a stale
    /// tip it saw), the job's height is the one after it, and its `nbits`
    /// is what the consensus rules require there.
    pub async fn check_job(&self, job: &JobAnchor) -> Result<Vec<Finding>, AuditError> {
        let subject = Subject::Job {
            instance: job.instance,
            job_id: job.job_id,
        };
        let mut f = Findings::default();
        let prev_hex = alloy::hex::encode(display_order(job.prev_hash));
        let Some(prev) = self.header(&prev_hex).await? else {
            f.mismatch(
                subject,
                "bitcoind.prev_hash",
                "a block bitcoind knows (in its best chain, or a stale tip it saw)",
                format_args!("{prev_hex}, which bitcoind does not know"),
            );
            return Ok(f.into_list());
        };
        f.compare(
            subject,
            "bitcoind.height",
            prev.height.saturating_add(1),
            job.height,
        );
        let network = self.network().await?;
        let prev = prev.info(display_order(job.prev_hash))?;
        match required_nbits(network, self, &prev, u64::from(job.template_time)).await? {
            Some(required) if !required.contains(&job.nbits) => f.mismatch(
                subject,
                "bitcoind.nbits",
                format_args!(
                    "{}, what the consensus rules require at height {}",
                    nbits_list(&required),
                    prev.height.saturating_add(1)
                ),
                format_args!("{:#010x}", job.nbits),
            ),
            Some(_) => {}
            None => f.warn(
                subject,
                "bitcoind.nbits",
                "the target the rules require, from bitcoind's headers",
                "a header they read that bitcoind does not serve",
            ),
        }
        if let Some(value) = job.fpps_value
            && let Some(mined) = self.mined_value(job.height).await?
            && value > mined
        {
            // A bound, not a proof: another template at the same height
            // can hold more fees than the block that won it (an empty
            // block, say), so this is for a person to look at. Shares
            // valued on it were paid more than that block was worth.
            f.warn(
                subject,
                "bitcoind.coinbase_value",
                format_args!(
                    "at most {mined}, what the block mined at height {} paid (subsidy and fees)",
                    job.height
                ),
                value,
            );
        }
        Ok(f.into_list())
    }

    /// Block `hex` (display order) as bitcoind serves it whole: its hash
    /// and what its coinbase pays, or why it cannot be read.
    async fn coinbase_value_of(
        &self,
        hex: &str,
    ) -> Result<Result<(B256, u64), String>, AuditError> {
        let raw: String = self
            .node
            .call("getblock", serde_json::json!([hex, 0]), None)
            .await?;
        Ok(alloy::hex::decode(raw.trim())
            .map_err(|e| e.to_string())
            .and_then(|bytes| coinbase_value_of_block(&bytes)))
    }

    /// What the best chain's block at `height` paid in its coinbase, asked
    /// once per height.
    async fn mined_value(&self, height: u64) -> Result<Option<u64>, AuditError> {
        if let Some(v) = self
            .mined_values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&height)
        {
            return Ok(*v);
        }
        let value = match self.node.get_block_hash(height).await? {
            None => None,
            Some(hex) => {
                let decoded = self.coinbase_value_of(&hex).await?.map_err(|reason| {
                    AuditError::Node(NodeError::Decode {
                        method: "getblock",
                        reason,
                    })
                })?;
                Some(decoded.1)
            }
        };
        self.mined_values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(height, value);
        Ok(value)
    }

    /// The findings for a block the shares found that no audited epoch
    /// pays or lists as orphaned. In bitcoind's best chain: a warning if it
    /// matured less than `slack` blocks ago ([`maturity_slack`]), a mismatch
    /// if it is older (a block the pool found, kept and did not pay). Off
    /// the best chain or unknown to bitcoind: a mismatch once the chain is
    /// `slack` blocks past it (an orphan the files never listed), unless it
    /// is [`FoundBlock::superseded`].
    pub async fn check_found(
        &self,
        block: &FoundBlock,
        maturity: u64,
        slack: u64,
    ) -> Result<Vec<Finding>, AuditError> {
        let mut f = Findings::default();
        let subject = Subject::Block {
            height: block.height,
        };
        let hex = alloy::hex::encode(block.hash);
        let found = format_args!(
            "in no epoch's blocks (its solving share {} is in epoch {})",
            block.seq, block.epoch
        );
        let confirmations = self
            .header(&hex)
            .await?
            .and_then(|h| u64::try_from(h.confirmations).ok())
            .filter(|c| *c > 0);
        let Some(confirmations) = confirmations else {
            if block.superseded {
                return Ok(Vec::new());
            }
            let tip = self.node.get_blockchain_info().await?.blocks;
            if tip >= block.height.saturating_add(slack) {
                f.mismatch(
                    subject,
                    "bitcoind.orphaned",
                    format_args!(
                        "{hex} listed among an epoch's orphaned blocks: bitcoind does not have it in its best chain, which is {} blocks past it",
                        tip - block.height
                    ),
                    found,
                );
            }
            return Ok(f.into_list());
        };
        if confirmations < maturity {
            return Ok(Vec::new());
        }
        let expected = format_args!(
            "paid in an epoch: bitcoind has {hex} in its best chain with {confirmations} confirmations (maturity {maturity})"
        );
        if confirmations >= maturity.saturating_add(slack) {
            f.mismatch(subject, "bitcoind.paid_epoch", expected, found);
        } else {
            f.warn(subject, "bitcoind.paid_epoch", expected, found);
        }
        Ok(f.into_list())
    }

    /// The findings for a block a file lists as orphaned: bitcoind must not
    /// have it in its best chain.
    pub async fn check_orphan(&self, height: u64, hash: B256) -> Result<Vec<Finding>, AuditError> {
        let mut f = Findings::default();
        let hex = alloy::hex::encode(hash);
        if let Some(h) = self.header(&hex).await?
            && h.confirmations > 0
        {
            f.mismatch(
                Subject::Block { height },
                "bitcoind.orphaned",
                "a block off bitcoind's best chain",
                format_args!(
                    "{hex} in its best chain at height {} with {} confirmations",
                    h.height, h.confirmations
                ),
            );
        }
        Ok(f.into_list())
    }

    /// The findings for the first header the files carry: bitcoind must have
    /// it in its best chain at that height (it anchors the carried chain).
    pub async fn check_anchor(&self, height: u64, hash: B256) -> Result<Vec<Finding>, AuditError> {
        let mut f = Findings::default();
        let hex = alloy::hex::encode(hash);
        let expected = format_args!("a header in bitcoind's best chain at height {height}");
        match self.header(&hex).await? {
            Some(h) if h.confirmations > 0 && h.height == height => {}
            Some(h) => f.mismatch(
                Subject::Header { height },
                "bitcoind.hash",
                expected,
                format_args!(
                    "{hex} at height {} with {} confirmations",
                    h.height, h.confirmations
                ),
            ),
            None => f.mismatch(
                Subject::Header { height },
                "bitcoind.hash",
                expected,
                format_args!("{hex}, which bitcoind does not know"),
            ),
        }
        Ok(f.into_list())
    }

    /// The findings for the blocks of bitcoind's best chain whose coinbase
    /// pays `payout_script` but that no share in the files found (`known`:
    /// every found or paid block, display order): a block mined on the
    /// pool's work whose share was dropped from the log.
    ///
    /// `jobs` runs from the lowest to the highest height the files' jobs
    /// build, `span` from the start of the first epoch read to the end of
    /// the newest. Inside `jobs` (short of its top) every such block is
    /// one: the chain moved past it while an audited epoch was taking
    /// shares. Outside it, a block counts only if its solving share must
    /// have been accepted inside `span`: a share is accepted within
    /// [`NTIME_SKEW_SECS`](proofpool_epoch::share_commitment::NTIME_SKEW_SECS)
    /// (plus slack) of its header time, the block's. The scan each way stops
    /// at the first block two hours past the span (block times run at most
    /// that far from the clock), or at the tip.
    pub async fn check_unclaimed(
        &self,
        jobs: std::ops::RangeInclusive<u64>,
        span: (u64, u64),
        payout_script: &[u8],
        known: &std::collections::HashSet<B256>,
    ) -> Result<Vec<Finding>, AuditError> {
        let bound = u64::from(proofpool_epoch::share_commitment::NTIME_SKEW_SECS)
            + crate::shares::NTIME_SLACK_SECS;
        let (from, until) = span;
        let mut f = Findings::default();
        let (low, high) = (*jobs.start(), *jobs.end());
        for height in low.. {
            let Some((hex, listed)) = self.block_at(height).await? else {
                break;
            };
            if height >= high {
                if listed.time >= until.saturating_add(MAX_FUTURE_BLOCK_SECS) {
                    break;
                }
                if listed.time.saturating_add(bound) >= until {
                    continue;
                }
            }
            self.unclaimed(&mut f, height, &hex, &listed, payout_script, known)
                .await?;
        }
        for height in (0..low).rev() {
            let Some((hex, listed)) = self.block_at(height).await? else {
                break;
            };
            if listed.time.saturating_add(MAX_FUTURE_BLOCK_SECS) < from {
                break;
            }
            if listed.time >= from.saturating_add(bound) {
                self.unclaimed(&mut f, height, &hex, &listed, payout_script, known)
                    .await?;
            }
        }
        Ok(f.into_list())
    }

    /// The best chain's block at `height`: its hash (display order, hex)
    /// and its txids and time; `None` above the tip.
    async fn block_at(&self, height: u64) -> Result<Option<(String, BlockTxids)>, AuditError> {
        let Some(hex) = self.node.get_block_hash(height).await? else {
            return Ok(None);
        };
        let listed: BlockTxids = self
            .node
            .call("getblock", serde_json::json!([hex, 1]), None)
            .await?;
        Ok(Some((hex, listed)))
    }

    /// A finding in `f` if the block `hex` at `height` pays `payout_script`
    /// and is not `known`.
    async fn unclaimed(
        &self,
        f: &mut Findings,
        height: u64,
        hex: &str,
        listed: &BlockTxids,
        payout_script: &[u8],
        known: &std::collections::HashSet<B256>,
    ) -> Result<(), AuditError> {
        let hash = hex.parse::<B256>().map_err(|e| {
            AuditError::Node(NodeError::Decode {
                method: "getblockhash",
                reason: e.to_string(),
            })
        })?;
        if known.contains(&hash) {
            return Ok(());
        }
        // Only the coinbase, not the whole block: its txid from the block's
        // list, then the transaction itself (no txindex needed when the
        // block is named).
        let Some(coinbase_txid) = listed.tx.first() else {
            return Ok(());
        };
        let raw: String = self
            .node
            .call(
                "getrawtransaction",
                serde_json::json!([coinbase_txid, false, hex]),
                None,
            )
            .await?;
        let pays_pool = alloy::hex::decode(raw.trim())
            .ok()
            .and_then(|bytes| bitcoin::consensus::deserialize::<bitcoin::Transaction>(&bytes).ok())
            .is_some_and(|coinbase| {
                coinbase.output.iter().any(|out| {
                    out.value.to_sat() > 0 && out.script_pubkey.as_bytes() == payout_script
                })
            });
        if pays_pool {
            f.mismatch(
                Subject::Block { height },
                "hash",
                "every block paying the pool's payout script found by a share in the files",
                format_args!("{hex} pays the pool, but no share in the files found it"),
            );
        }
        Ok(())
    }

    /// bitcoind's network, asked once.
    pub(crate) async fn network(&self) -> Result<Network, AuditError> {
        if let Some(n) = *self.network.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(n);
        }
        let info = self.node.get_blockchain_info().await?;
        let network = network_of(&info.chain).ok_or_else(|| {
            AuditError::Node(NodeError::Decode {
                method: "getblockchaininfo",
                reason: format!("an unknown chain {:?}", info.chain),
            })
        })?;
        *self.network.lock().unwrap_or_else(|p| p.into_inner()) = Some(network);
        Ok(network)
    }

    /// A header by display-order hex hash, cached.
    async fn header(&self, hex: &str) -> Result<Option<Arc<HeaderView>>, AuditError> {
        if let Some(h) = self
            .headers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(hex)
        {
            return Ok(h.clone());
        }
        let view = match self
            .node
            .call::<HeaderView>("getblockheader", serde_json::json!([hex, true]), None)
            .await
        {
            Ok(view) => Some(Arc::new(view)),
            // -5: block not found; -8: not a hash.
            Err(NodeError::Rpc { code: -5 | -8, .. }) => None,
            Err(e) => return Err(e.into()),
        };
        self.headers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hex.to_owned(), view.clone());
        Ok(view)
    }
}

/// A serialized block's hash (display order) and what its coinbase
/// transaction's outputs add up to.
pub(super) fn coinbase_value_of_block(raw: &[u8]) -> Result<(B256, u64), String> {
    let block: bitcoin::Block =
        bitcoin::consensus::deserialize(raw).map_err(|e| format!("not a block: {e}"))?;
    let coinbase = block
        .txdata
        .first()
        .filter(|tx| tx.is_coinbase())
        .ok_or("the block has no coinbase transaction")?;
    let value = coinbase
        .output
        .iter()
        .try_fold(0u64, |sum, out| sum.checked_add(out.value.to_sat()))
        .ok_or("the coinbase outputs overflow")?;
    use bitcoin::hashes::Hash;
    let hash = display_order(B256::from(block.block_hash().to_byte_array()));
    Ok((hash, value))
}
