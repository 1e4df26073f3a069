//! The parts of bitcoind's RPC answers the pool reads.

use serde::Deserialize;

/// `getblockchaininfo`.
#[derive(Debug, Clone, Deserialize)]
pub struct BlockchainInfo {
    /// `main`, `test`, `testnet4`, `signet` or `regtest`.
    pub chain: String,
    /// Height of the best block.
    pub blocks: u64,
    /// Best block hash, display order.
    pub bestblockhash: String,
    /// Whether the node is still syncing.
    pub initialblockdownload: bool,
}

/// `getblockheader hash true`.
#[derive(Debug, Clone, Deserialize)]
pub struct BlockHeaderInfo {
    /// The block hash, display order.
    pub hash: String,
    /// Confirmations; -1 when the block is not in the best chain.
    pub confirmations: i64,
    /// Its height.
    pub height: u64,
}
