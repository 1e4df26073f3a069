//! Bitcoin headers: the difficulty rules, shared by the checks against
//! bitcoind and those from the files alone, and the header chain the epoch
//! files carry.
//!
//! The chain: each file's `bitcoin.headers` continue the headers the
//! earlier files carried (a lower start is a reorg: the replaced headers
//! stay known, as stale ones). Every header must link to its parent, meet
//! its own target, and carry the `nbits` the network's rules require after
//! its parent whenever the history to compute it is carried (from the
//! second header of the first file on; a retarget needs its period's first
//! header). The first carried header is tied to the real chain by an anchor:
//! `--checkpoint HEIGHT:HASH` (the header carried at HEIGHT must be HASH;
//! the headers below it are fixed by their hashes) or bitcoind (the first
//! header is in its best chain). Without an anchor the checks hold only for
//! a chain the auditor trusts, and the audit says so.

use super::AuditError;
use super::finding::{Findings, Subject};
use alloy::primitives::B256;
use bitcoin::block::Header;
use bitcoin::hashes::Hash;
use bitcoin::pow::CompactTarget;
use bitcoin::{Network, params::Params};
use proofpool_epoch::epoch_file::FileBitcoin;
use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;

/// What the difficulty rules read of a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderInfo {
    /// Display (RPC) order.
    pub(crate) hash: B256,
    pub(crate) height: u64,
    pub(crate) bits: u32,
    pub(crate) time: u64,
    /// The parent's hash, display order (`None` for the genesis block).
    pub(crate) prev: Option<B256>,
}

/// Where the difficulty rules find a header's ancestors.
pub(crate) trait HeaderLookup {
    /// A header by hash, display order; `None` if unknown.
    fn by_hash(
        &self,
        hash: B256,
    ) -> impl Future<Output = Result<Option<HeaderInfo>, AuditError>> + Send;
    /// `of`'s ancestor at `height` (below `of`'s); `None` if unknown.
    fn ancestor(
        &self,
        of: &HeaderInfo,
        height: u64,
    ) -> impl Future<Output = Result<Option<HeaderInfo>, AuditError>> + Send;
}

/// The network bitcoind's `chain` name (`getblockchaininfo`) stands for.
pub fn network_of(chain: &str) -> Option<Network> {
    Some(match chain {
        "main" => Network::Bitcoin,
        "test" => Network::Testnet,
        "testnet4" => Network::Testnet4,
        "signet" => Network::Signet,
        "regtest" => Network::Regtest,
        _ => return None,
    })
}

/// The `nbits` values a block after `prev` may carry, with `time` its own
/// time (or its template's): one, or two on a testnet when the block is
/// late enough for the minimum difficulty. `None` when the history the rule
/// reads is not known. Rust-bitcoin computes the retarget
/// ([`CompactTarget::from_next_work_required`]); no retargeting on regtest,
/// the testnets' minimum-difficulty rule, testnet4's BIP94 base.
pub(crate) async fn required_nbits<L: HeaderLookup>(
    network: Network,
    lookup: &L,
    prev: &HeaderInfo,
    time: u64,
) -> Result<Option<Vec<u32>>, AuditError> {
    let params = Params::new(network);
    let height = prev.height.saturating_add(1);
    let interval = params.difficulty_adjustment_interval();
    let pow_limit = params
        .max_attainable_target
        .to_compact_lossy()
        .to_consensus();
    if params.no_pow_retargeting {
        return Ok(Some(vec![prev.bits]));
    }
    if !height.is_multiple_of(interval) {
        if !params.allow_min_difficulty_blocks {
            return Ok(Some(vec![prev.bits]));
        }
        // Testnets: a block more than two spacings after its parent may use
        // the minimum difficulty; otherwise the last block of the period
        // that did not.
        let mut cur = prev.clone();
        while !cur.height.is_multiple_of(interval) && cur.bits == pow_limit {
            let Some(parent) = cur.prev else {
                break;
            };
            match lookup.by_hash(parent).await? {
                Some(h) => cur = h,
                None => return Ok(None),
            }
        }
        let mut allowed = vec![cur.bits];
        if time > prev.time.saturating_add(2 * params.pow_target_spacing) && cur.bits != pow_limit {
            allowed.push(pow_limit);
        }
        return Ok(Some(allowed));
    }
    let Some(first) = lookup.ancestor(prev, height - interval).await? else {
        return Ok(None);
    };
    // BIP94 (testnet4): the period's first block's target is the base.
    let base = if network == Network::Testnet4 {
        first.bits
    } else {
        prev.bits
    };
    let timespan = prev.time.saturating_sub(first.time);
    let next = CompactTarget::from_next_work_required(
        CompactTarget::from_consensus(base),
        timespan,
        &params,
    );
    Ok(Some(vec![next.to_consensus()]))
}

/// `--checkpoint HEIGHT:HASH`: a block of the real chain the auditor knows
/// (from a block explorer, its own node, a friend's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Its height.
    pub height: u64,
    /// Its hash, display (RPC) order.
    pub hash: B256,
}

impl FromStr for Checkpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (height, hash) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not HEIGHT:HASH"))?;
        let height = height
            .trim()
            .parse()
            .map_err(|e| format!("checkpoint height {height:?}: {e}"))?;
        let hash = hash
            .trim()
            .parse()
            .map_err(|e| format!("checkpoint hash {hash:?}: {e} (64 hex digits)"))?;
        Ok(Self { height, hash })
    }
}

/// The headers the audited files carried (see the module docs).
#[derive(Debug, Clone, Default)]
pub(crate) struct HeaderChain {
    network: Option<Network>,
    /// Height of `best[0]`.
    base: u64,
    /// The best chain the files carried, display order hashes.
    best: Vec<B256>,
    /// Every header carried, best chain and stale, by hash.
    known: HashMap<B256, HeaderInfo>,
    /// The first carried header, until an anchor vouches for it.
    first: Option<(u64, B256)>,
    checkpoint: Option<Checkpoint>,
    /// Whether the checkpoint was found among the carried headers.
    checkpoint_met: bool,
}

impl HeaderLookup for HeaderChain {
    async fn by_hash(&self, hash: B256) -> Result<Option<HeaderInfo>, AuditError> {
        Ok(self.known.get(&hash).cloned())
    }

    async fn ancestor(
        &self,
        of: &HeaderInfo,
        height: u64,
    ) -> Result<Option<HeaderInfo>, AuditError> {
        if self.best_at(of.height) == Some(of.hash) {
            return Ok(self
                .best_at(height)
                .and_then(|h| self.known.get(&h))
                .cloned());
        }
        let mut cur = of.clone();
        while cur.height > height {
            match cur.prev.and_then(|p| self.known.get(&p)) {
                Some(parent) => cur = parent.clone(),
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }
}

/// Runs a future that never waits (the carried chain's lookups answer at
/// once); `None` if it would.
pub(crate) fn now<T>(fut: impl Future<Output = T>) -> Option<T> {
    let mut fut = std::pin::pin!(fut);
    match fut
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// A header's hash, display order.
fn hash_of(h: &Header) -> B256 {
    let mut bytes = h.block_hash().to_byte_array();
    bytes.reverse();
    B256::from(bytes)
}

/// A hash in bitcoin's internal order, as displayed.
fn display(hash: [u8; 32]) -> B256 {
    let mut bytes = hash;
    bytes.reverse();
    B256::from(bytes)
}

fn info(h: &Header, height: u64) -> HeaderInfo {
    let prev = h.prev_blockhash.to_byte_array();
    HeaderInfo {
        hash: hash_of(h),
        height,
        bits: h.bits.to_consensus(),
        time: u64::from(h.time),
        prev: (prev != [0; 32]).then(|| display(prev)),
    }
}

fn decode(raw: &[u8]) -> Result<Header, String> {
    if raw.len() != 80 {
        return Err(format!("{} bytes", raw.len()));
    }
    bitcoin::consensus::deserialize(raw).map_err(|e| e.to_string())
}

impl HeaderChain {
    /// A chain whose carried headers must contain `checkpoint`, if given.
    pub(crate) fn new(checkpoint: Option<Checkpoint>) -> Self {
        Self {
            checkpoint,
            ..Self::default()
        }
    }

    /// Whether any file carried headers.
    pub(crate) fn is_empty(&self) -> bool {
        self.best.is_empty()
    }

    /// The height of the first header of the carried best chain.
    pub(crate) fn base(&self) -> Option<u64> {
        (!self.best.is_empty()).then_some(self.base)
    }

    /// The carried best chain's hash at `height`.
    pub(crate) fn best_at(&self, height: u64) -> Option<B256> {
        let i = usize::try_from(height.checked_sub(self.base)?).ok()?;
        self.best.get(i).copied()
    }

    /// The carried best chain's height.
    pub(crate) fn tip(&self) -> Option<u64> {
        let len = u64::try_from(self.best.len()).ok()?;
        self.base.checked_add(len)?.checked_sub(1)
    }

    /// A carried header, best chain or stale.
    pub(crate) fn get(&self, hash: B256) -> Option<&HeaderInfo> {
        self.known.get(&hash)
    }

    /// The first carried header (height, hash) until [`Self::anchored`]:
    /// what bitcoind must have in its best chain.
    pub(crate) fn unanchored(&self) -> Option<(u64, B256)> {
        self.first
    }

    /// Bitcoind was asked about the first header.
    pub(crate) fn anchored(&mut self) {
        self.first = None;
    }

    /// Whether the checkpoint, if one was given, was met.
    pub(crate) fn checkpoint(&self) -> Option<(Checkpoint, bool)> {
        self.checkpoint.map(|c| (c, self.checkpoint_met))
    }

    /// Adds one file's headers, reporting every header that does not link,
    /// lacks its proof of work or carries the wrong target. A segment that
    /// cannot be placed is left out (the jobs on it then fail).
    pub(crate) fn apply(&mut self, f: &mut Findings, b: &FileBitcoin) {
        let Some(network) = network_of(&b.network) else {
            f.mismatch(
                Subject::Epoch,
                "bitcoin.network",
                "main, test, testnet4, signet or regtest",
                format_args!("{:?}", proofpool_primitives::Excerpt::new(&b.network)),
            );
            return;
        };
        if let Some(n) = self.network
            && n != network
        {
            f.mismatch(
                Subject::Epoch,
                "bitcoin.network",
                format_args!("{n}, as earlier files"),
                network,
            );
            return;
        }
        self.network = Some(network);
        let mut headers = Vec::with_capacity(b.headers.len());
        for (i, raw) in b.headers.iter().enumerate() {
            let height = b.start_height.saturating_add(i as u64);
            match decode(raw) {
                Ok(h) => headers.push(h),
                Err(why) => {
                    f.mismatch(
                        Subject::Header { height },
                        "bitcoin.headers",
                        "an 80-byte block header",
                        why,
                    );
                    return;
                }
            }
        }
        if !self.place(f, b.start_height, headers.first()) {
            return;
        }
        let mut parent: Option<HeaderInfo> = b
            .start_height
            .checked_sub(1)
            .and_then(|h| self.best_at(h))
            .and_then(|h| self.known.get(&h))
            .cloned();
        for (i, h) in headers.iter().enumerate() {
            let height = b.start_height.saturating_add(i as u64);
            if let Some(p) = &parent
                && i > 0
                && info(h, height).prev != Some(p.hash)
            {
                f.mismatch(
                    Subject::Header { height },
                    "prev_blockhash",
                    format_args!("{}, the header before it", p.hash),
                    info(h, height)
                        .prev
                        .map_or("none".to_owned(), |p| p.to_string()),
                );
                return;
            }
            let header = info(h, height);
            self.check(f, network, h, &header, parent.as_ref());
            if self.first.is_none() && self.best.is_empty() {
                self.first = Some((height, header.hash));
            }
            self.best.push(header.hash);
            self.known.insert(header.hash, header.clone());
            parent = Some(header);
        }
        if let Some(c) = self.checkpoint
            && let Some(at) = self.best_at(c.height)
        {
            if at == c.hash {
                self.checkpoint_met = true;
            } else if !self.checkpoint_met {
                f.mismatch(
                    Subject::Header { height: c.height },
                    "checkpoint",
                    c.hash,
                    at,
                );
            }
        }
        for raw in &b.stale {
            let h = match decode(raw) {
                Ok(h) => h,
                Err(why) => {
                    f.mismatch(
                        Subject::Epoch,
                        "bitcoin.stale",
                        "an 80-byte block header",
                        why,
                    );
                    continue;
                }
            };
            let prev = display(h.prev_blockhash.to_byte_array());
            let Some(parent) = self.known.get(&prev).cloned() else {
                f.mismatch(
                    Subject::Epoch,
                    "bitcoin.stale",
                    "a header whose parent the files carry",
                    format_args!("{} on {prev}, which they do not", hash_of(&h)),
                );
                continue;
            };
            let header = info(&h, parent.height.saturating_add(1));
            self.check(f, network, &h, &header, Some(&parent));
            self.known.entry(header.hash).or_insert(header);
        }
    }

    /// Places a segment starting at `start` whose first header is `first`:
    /// the first segment anywhere; later ones on a carried header (the last,
    /// or lower for a reorg, dropping the best chain above it). Reports and
    /// returns false if it cannot be placed.
    fn place(&mut self, f: &mut Findings, start: u64, first: Option<&Header>) -> bool {
        let Some(tip) = self.tip() else {
            self.base = start;
            return true;
        };
        let Some(first) = first else {
            // No new header: the tip is unchanged.
            if start == tip.saturating_add(1) {
                return true;
            }
            f.mismatch(
                Subject::Epoch,
                "bitcoin.start_height",
                format_args!("{} (no headers, so after the carried tip)", tip + 1),
                start,
            );
            return false;
        };
        if start <= self.base || start > tip.saturating_add(1) {
            f.mismatch(
                Subject::Epoch,
                "bitcoin.start_height",
                format_args!(
                    "a height in {}..={} (continuing the headers earlier files carried)",
                    self.base + 1,
                    tip + 1
                ),
                start,
            );
            return false;
        }
        let parent = self.best_at(start - 1).unwrap_or_default();
        let links = display(first.prev_blockhash.to_byte_array());
        if links != parent {
            f.mismatch(
                Subject::Header { height: start },
                "prev_blockhash",
                format_args!("{parent}, the header carried at height {}", start - 1),
                links,
            );
            return false;
        }
        // A reorg: the replaced headers stay known (jobs may build on them).
        let keep = usize::try_from(start - self.base).unwrap_or(usize::MAX);
        self.best.truncate(keep);
        true
    }

    /// One header's proof of work and target.
    fn check(
        &self,
        f: &mut Findings,
        network: Network,
        h: &Header,
        header: &HeaderInfo,
        parent: Option<&HeaderInfo>,
    ) {
        let subject = Subject::Header {
            height: header.height,
        };
        let params = Params::new(network);
        if h.target() > params.max_attainable_target || h.validate_pow(h.target()).is_err() {
            f.mismatch(
                subject,
                "bits",
                format_args!(
                    "a hash at or below the header's own target {:#010x}, within the network's limit",
                    header.bits
                ),
                header.hash,
            );
        }
        let Some(parent) = parent else {
            return;
        };
        match now(required_nbits(network, self, parent, header.time)) {
            Some(Ok(Some(allowed))) if !allowed.contains(&header.bits) => f.mismatch(
                subject,
                "bits",
                format_args!("{}, what the rules require", nbits_list(&allowed)),
                format_args!("{:#010x}", header.bits),
            ),
            _ => {}
        }
    }

    /// The `nbits` values a job building on `prev` may carry, from the
    /// carried headers; `None` if they do not reach back far enough.
    pub(crate) fn job_nbits(&self, prev: &HeaderInfo, template_time: u32) -> Option<Vec<u32>> {
        let network = self.network?;
        now(required_nbits(
            network,
            self,
            prev,
            u64::from(template_time),
        ))?
        .ok()
        .flatten()
    }
}

/// `a or b`, as hex.
pub(crate) fn nbits_list(allowed: &[u32]) -> String {
    allowed
        .iter()
        .map(|b| format!("{b:#010x}"))
        .collect::<Vec<_>>()
        .join(" or ")
}
