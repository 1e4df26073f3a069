//! The pool's typed configuration.

use bitcoin::{Network, ScriptBuf};
use proofpool_node::NodeEndpoint;
use proofpool_primitives::Difficulty;
use proofpool_store::WriterConfig;
use std::time::Duration;

/// Everything the Stratum server needs, parsed and checked.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// bitcoind nodes, tried in order.
    pub nodes: Vec<NodeEndpoint>,
    /// The Bitcoin network the payout address belongs to.
    pub network: Network,
    /// The coinbase output script: the pool's payout address.
    pub payout_script: ScriptBuf,
    /// Bytes in the coinbase scriptSig after the height, e.g. `/proofpool/`.
    pub pool_tag: Vec<u8>,
    /// This instance's id, the first byte of every extranonce1 it hands out.
    pub instance_id: u8,
    /// Extranonce2 size in bytes (1–8).
    pub extranonce2_len: usize,
    /// Difficulty a new connection starts at.
    pub start_difficulty: Difficulty,
    /// Lowest difficulty a miner may ask for.
    pub min_difficulty: Difficulty,
    /// Highest difficulty a miner may ask for.
    pub max_difficulty: Difficulty,
    /// Version bits miners may roll (BIP310); BIP320's `0x1fffe000` by default.
    pub version_mask: u32,
    /// How often to fetch a fresh template for new fees (`clean_jobs = false`).
    pub template_refresh: Duration,
    /// How long one long-poll `getblocktemplate` may wait.
    pub longpoll_timeout: Duration,
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// Length of a settlement epoch, seconds.
    pub epoch_secs: u64,
    /// Group-commit tuning for the share log.
    pub writer: WriterConfig,
}

impl PoolConfig {
    /// Defaults for everything but the node list and payout script.
    pub fn new(nodes: Vec<NodeEndpoint>, network: Network, payout_script: ScriptBuf) -> Self {
        Self {
            nodes,
            network,
            payout_script,
            pool_tag: b"/proofpool/".to_vec(),
            instance_id: 0,
            extranonce2_len: 8,
            start_difficulty: Difficulty::ONE,
            // 0.00001: a 1e-5 difficulty is exact as 1 / 10^5.
            min_difficulty: Difficulty::from_parts(1, 5).expect("1e-5 is a valid difficulty"),
            max_difficulty: Difficulty::from_parts(1 << 40, 0).expect("2^40 is a valid difficulty"),
            version_mask: 0x1fff_e000,
            template_refresh: Duration::from_secs(30),
            longpoll_timeout: Duration::from_secs(90),
            max_connections: 100_000,
            epoch_secs: 3600,
            writer: WriterConfig::default(),
        }
    }
}
