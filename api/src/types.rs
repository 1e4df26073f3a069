//! The JSON bodies the API answers with (field names in camelCase).
//!
//! Numbers that can exceed 2^53 — work, hashrates, token amounts — are
//! decimal strings; sats and counts are JSON numbers. EVM hashes and
//! addresses are `0x` hex (addresses EIP-55 checksummed); Bitcoin block
//! hashes are plain hex in display byte order, as `bitcoin-cli` prints them.
//! Times are unix seconds (`…Unix`) or milliseconds (`…Ms`). No body ever
//! carries a worker's IP address.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An error: what is wrong and, for bad input, which parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
    /// The offending parameter, when the input was at fault.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub parameter: Option<String>,
}

/// A hashrate estimate: the work of the shares accepted in a window, over its length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hashrate {
    /// The window, seconds.
    pub window_secs: u64,
    /// Sum of the shares' work (decimal).
    pub work: String,
    /// Shares in the window.
    pub shares: u64,
    /// `floor(work / windowSecs)`, hashes per second (decimal).
    pub hashes_per_second: String,
}

/// The epoch the clock is in now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentEpoch {
    /// Its number.
    pub number: u64,
    /// Start, unix seconds.
    pub start_unix: u64,
    /// End (exclusive), unix seconds.
    pub end_unix: u64,
    /// Shares accepted into it so far.
    pub shares: u64,
}

/// The Bitcoin network as the pool's newest share saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// Network difficulty, an exact decimal (`DIFF1_TARGET / target`, rounded down).
    pub difficulty: String,
    /// Network target, `0x` hex.
    pub target: String,
    /// Height of the block being mined, if known.
    pub height: Option<u64>,
}

/// `GET /api/v1/summary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Server time, unix milliseconds.
    pub now_ms: u64,
    /// Epoch length, seconds (absent before the pool first started).
    pub epoch_secs: Option<u64>,
    /// The epoch in progress (absent before the pool first started).
    pub current_epoch: Option<CurrentEpoch>,
    /// Newest settled epoch (computed, maybe not yet on-chain).
    pub last_settled_epoch: Option<u64>,
    /// Newest epoch committed or finalized on-chain.
    pub last_committed_epoch: Option<u64>,
    /// Newest finalized epoch: claims verify against its reward root.
    pub last_finalized_epoch: Option<u64>,
    /// Miners that have ever authorized.
    pub miners: u64,
    /// Workers (miner, rig name) that have ever authorized.
    pub workers: u64,
    /// Miners with shares in the hashrate window.
    pub active_miners: u64,
    /// Workers with shares in the hashrate window.
    pub active_workers: u64,
    /// Pool hashrate over the window.
    pub hashrate: Hashrate,
    /// Network difficulty and height (absent before the first share).
    pub network: Option<Network>,
    /// The highest block found.
    pub last_block: Option<Block>,
    /// Blocks found, any status.
    pub blocks_found: u64,
    /// How the newest settled epoch paid: `pplns`, `pps` or `fpps` (absent
    /// before the first is settled). The scheme in force is pinned on-chain
    /// (`proofpool params show`); this is what the settler last applied.
    pub scheme: Option<String>,
    /// Under PPS and FPPS, when the current epoch ends (unix seconds): its
    /// shares are credited when it closes, and claimable once that epoch
    /// is finalized (after the challenge period). Absent under PPLNS, which
    /// credits blocks as they mature.
    pub next_credit_unix: Option<u64>,
    /// The pool's luck over the settled epochs (absent before any).
    pub luck: Option<Luck>,
}

/// Blocks found against the blocks the shares were expected to find.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Luck {
    /// The first settled epoch counted.
    pub first_epoch: u64,
    /// The last settled epoch counted.
    pub last_epoch: u64,
    /// Blocks found by shares of those epochs (refused ones excluded,
    /// orphaned ones included).
    pub blocks_found: u64,
    /// Blocks expected, `Σ W_share / W_net` over those epochs' shares, an
    /// exact decimal rounded down to 4 places.
    pub expected_blocks: String,
    /// `blocks_found / expected_blocks` in percent, rounded down (absent
    /// while nothing is expected).
    pub percent: Option<u64>,
}

/// One bucket of a hashrate series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HashratePoint {
    /// Bucket start, unix seconds.
    pub start_unix: u64,
    /// Seconds the bucket covers (less than `bucketSecs` for the current one).
    pub seconds: u64,
    /// Work of its shares (decimal).
    pub work: String,
    /// Shares in it.
    pub shares: u64,
    /// `floor(work / seconds)` (decimal).
    pub hashes_per_second: String,
}

/// `GET /api/v1/hashrate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HashrateSeries {
    /// The miner, or absent for the whole pool.
    pub miner: Option<String>,
    /// Bucket length, seconds.
    pub bucket_secs: u64,
    /// Start of the first bucket, unix seconds.
    pub from_unix: u64,
    /// End of the series (now), unix seconds.
    pub to_unix: u64,
    /// Every bucket, oldest first, empty ones included.
    pub points: Vec<HashratePoint>,
}

/// A miner in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MinerItem {
    /// The account, EIP-55.
    pub address: String,
    /// Workers it has authorized.
    pub workers: u64,
    /// First authorization, unix milliseconds.
    pub first_seen_ms: u64,
    /// Latest authorization, unix milliseconds.
    pub last_seen_ms: u64,
    /// Its hashrate over the window.
    pub hashrate: Hashrate,
}

/// `GET /api/v1/miners`: miners, most recently seen first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MinerPage {
    /// This page.
    pub items: Vec<MinerItem>,
    /// Items skipped.
    pub offset: u64,
    /// Page size asked for.
    pub limit: u32,
    /// Items in the whole list.
    pub total: u64,
}

/// One of a miner's workers. No IP address, ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Worker {
    /// The rig name (empty when the miner gave none).
    pub name: String,
    /// First authorization, unix milliseconds.
    pub first_seen_ms: u64,
    /// Latest authorization, unix milliseconds.
    pub last_seen_ms: u64,
    /// Its newest share inside the window, unix milliseconds.
    pub last_share_ms: Option<u64>,
    /// Its hashrate over the window.
    pub hashrate: Hashrate,
}

/// A miner's shares in one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EpochShareCount {
    /// The epoch.
    pub epoch: u64,
    /// Shares.
    pub shares: u64,
    /// Their work (decimal).
    pub work: String,
}

/// What one epoch paid a miner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EpochCreditItem {
    /// The paying epoch.
    pub epoch: u64,
    /// Sats credited.
    pub sats: u64,
    /// The same in token base units (decimal).
    pub amount: String,
    /// Whether the epoch is finalized, so the credit is claimable.
    pub claimable: bool,
}

/// A miner's credits.
///
/// A found block's PPLNS credits are computed by the first epoch settled
/// after it matures; they are pending until that epoch (or a later one) is
/// finalized on-chain, then claimable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credits {
    /// Sats credited by epochs not yet finalized.
    pub pending_sats: u64,
    /// The same in token base units (decimal).
    pub pending_amount: String,
    /// Cumulative sats at the newest finalized epoch.
    pub claimable_sats: u64,
    /// The cumulative amount a claim proves (decimal, token base units).
    pub claimable_amount: String,
    /// The newest finalized epoch, whose root claims verify against.
    pub claimable_epoch: Option<u64>,
    /// Credits per paying epoch, newest first (at most `epochs` of them).
    pub per_epoch: Vec<EpochCreditItem>,
}

/// What the distributor has paid a miner, read from the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnChainClaims {
    /// `claimed(account)`: token base units already paid (decimal).
    pub claimed: String,
    /// `claimableAmount − claimed`, never negative (decimal).
    pub unclaimed: String,
}

/// `GET /api/v1/miners/{address}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MinerDetail {
    /// The account, EIP-55.
    pub address: String,
    /// First authorization, unix milliseconds.
    pub first_seen_ms: Option<u64>,
    /// Latest authorization, unix milliseconds.
    pub last_seen_ms: Option<u64>,
    /// Its hashrate over the window.
    pub hashrate: Hashrate,
    /// Workers it has authorized.
    pub worker_count: u64,
    /// A page of its workers (`offset`, `limit`), most recently seen first.
    pub workers: Vec<Worker>,
    /// Workers skipped.
    pub workers_offset: u64,
    /// Worker page size.
    pub workers_limit: u32,
    /// Shares per epoch over the last `epochs` epochs, newest first.
    pub shares_per_epoch: Vec<EpochShareCount>,
    /// Pending and claimable credits.
    pub credits: Credits,
    /// Read from the distributor when the API has an RPC endpoint.
    pub on_chain: Option<OnChainClaims>,
    /// Why `onChain` is missing although an RPC endpoint is configured.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub on_chain_error: Option<String>,
}

/// Where a found block stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BlockState {
    /// Sent to the node, not yet seen in the best chain.
    Submitted,
    /// Refused by the node.
    Rejected,
    /// In the best chain, not yet mature.
    Immature,
    /// Mature: its credits count.
    Mature,
    /// Left the best chain: credits nothing.
    Orphaned,
}

/// A block the pool found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    /// Height.
    pub height: u64,
    /// Block hash, hex in display byte order.
    pub hash: String,
    /// Status.
    pub status: BlockState,
    /// Confirmations at the settler's last check.
    pub confirmations: u64,
    /// What the coinbase paid the pool (subsidy + fees), sats.
    pub reward_sats: u64,
    /// The account whose share solved it, EIP-55.
    pub finder: String,
    /// The finder's rig name.
    pub worker: String,
    /// When it was found, unix milliseconds.
    pub found_ms: u64,
    /// The epoch that paid its credits, once one has.
    pub paid_epoch: Option<u64>,
    /// Why the node rejected it.
    pub reject_reason: Option<String>,
    /// `{explorer}/block/{hash}`.
    pub explorer_url: String,
}

/// `GET /api/v1/blocks`: highest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockPage {
    /// This page.
    pub items: Vec<Block>,
    /// Items skipped.
    pub offset: u64,
    /// Page size asked for.
    pub limit: u32,
    /// Items in the whole list.
    pub total: u64,
}

/// Where a settled epoch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EpochState {
    /// Computed and recorded, not yet on-chain.
    Closed,
    /// `commitEpoch` confirmed; in its challenge period.
    Committed,
    /// `finalize` confirmed.
    Finalized,
}

/// A settled epoch's commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Epoch {
    /// The epoch.
    pub epoch: u64,
    /// Status.
    pub status: EpochState,
    /// Start, unix seconds.
    pub start_unix: Option<u64>,
    /// End (exclusive), unix seconds.
    pub end_unix: Option<u64>,
    /// Shares in it.
    pub share_count: u64,
    /// Its first share's sequence number.
    pub first_seq: Option<u64>,
    /// Its last share's sequence number.
    pub last_seq: Option<u64>,
    /// Share tree root.
    pub share_root: String,
    /// Reward tree root.
    pub reward_root: String,
    /// Sum of every cumulative amount after it, token base units (decimal).
    pub total_cumulative: String,
    /// Hash of the blocks it paid.
    pub blocks_hash: String,
    /// Hash of the PPLNS parameters.
    pub params_hash: String,
    /// keccak256 of the epoch file.
    pub data_hash: String,
    /// The previous epoch's on-chain record hash.
    pub prev_epoch_hash: String,
    /// The `commitEpoch` transaction.
    pub commit_tx: Option<String>,
    /// The `finalize` transaction.
    pub finalize_tx: Option<String>,
    /// Last status change, unix milliseconds.
    pub updated_ms: u64,
    /// Where its file is served.
    pub file_url: String,
}

/// `GET /api/v1/epochs`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EpochPage {
    /// This page.
    pub items: Vec<Epoch>,
    /// Items skipped.
    pub offset: u64,
    /// Page size asked for.
    pub limit: u32,
    /// Items in the whole list.
    pub total: u64,
}

/// `GET /api/v1/epochs/{n}`: the commitment and its totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EpochDetail {
    /// The commitment.
    #[serde(flatten)]
    pub record: Epoch,
    /// Work of its shares (decimal).
    pub total_work: String,
    /// Sats it credited to miners.
    pub credited_sats: u64,
    /// The same in token base units (decimal).
    pub credited_amount: String,
    /// Accounts in its reward tree.
    pub accounts: u64,
    /// The blocks it paid, by height.
    pub blocks: Vec<Block>,
}

/// `GET /api/v1/epochs/{n}/proof/{address}`: exactly what
/// `claim(account, cumulativeAmount, proof)` takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Proof {
    /// The account, EIP-55.
    pub account: String,
    /// Its cumulative amount at the epoch, token base units (decimal).
    pub cumulative_amount: String,
    /// Sibling hashes, leaf level first.
    pub proof: Vec<String>,
    /// The root the proof verifies against.
    pub reward_root: String,
    /// The epoch.
    pub epoch: u64,
    /// The epoch's status.
    pub epoch_status: EpochState,
    /// Whether this is the newest finalized epoch, the only root `claim` accepts.
    pub claimable_now: bool,
    /// The chain id bound into the leaf.
    pub chain_id: u64,
    /// The distributor bound into the leaf.
    pub distributor: String,
}

/// `GET /api/v1/epochs/{n}/shares/{hash}/proof`: a share's leaf and its
/// path to the epoch's committed share root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShareProof {
    /// The epoch.
    pub epoch: u64,
    /// The share's sequence number.
    pub seq: u64,
    /// The miner credited, EIP-55.
    pub miner: String,
    /// The work credited (decimal).
    pub work: String,
    /// sha256d of the share's header, as the epoch file lists it.
    pub share_hash: String,
    /// The leaf: `keccak256(abi.encode(uint64 epoch, uint64 seq, address miner, uint256 work, bytes32 shareHash))`, hashed as the share tree hashes leaves.
    pub leaf: String,
    /// Sibling hashes, leaf level first.
    pub proof: Vec<String>,
    /// The share root committed on-chain for the epoch.
    pub share_root: String,
    /// The epoch's status.
    pub epoch_status: EpochState,
}

/// The reward token, read from the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// The ERC-20's address.
    pub address: String,
    /// `name()`.
    pub name: String,
    /// `symbol()`.
    pub symbol: String,
    /// `decimals()`.
    pub decimals: u8,
}

/// The distributor's state, read from the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainHeads {
    /// `lastCommittedEpoch()`.
    pub last_committed_epoch: u64,
    /// `lastFinalizedEpoch()`.
    pub last_finalized_epoch: u64,
    /// `finalizedRewardRoot()`.
    pub finalized_reward_root: String,
}

/// `GET /api/v1/chain`: what the front end needs to claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainInfo {
    /// The EVM chain id.
    pub chain_id: u64,
    /// The distributor contract, EIP-55.
    pub distributor: String,
    /// Token base units per satoshi (decimal).
    pub token_per_sat: String,
    /// Bitcoin block explorer base URL.
    pub explorer_base_url: String,
    /// Whether this API reads the chain (token, heads, claimed amounts).
    pub rpc_configured: bool,
    /// The reward token, when the chain was reachable.
    pub token: Option<TokenInfo>,
    /// The distributor's heads, when the chain was reachable.
    pub on_chain: Option<ChainHeads>,
    /// Why `token` or `onChain` is missing although an RPC endpoint is configured.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub on_chain_error: Option<String>,
}
