//! The pool's typed configuration.

use crate::vardiff::VardiffConfig;
use bitcoin::{Network, ScriptBuf};
use proofpool_node::NodeEndpoint;
use proofpool_primitives::Difficulty;
use proofpool_store::WriterConfig;
use std::net::SocketAddr;
use std::time::Duration;

/// Everything the Stratum server needs, parsed and checked.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// bitcoind nodes, tried in order.
    pub nodes: Vec<NodeEndpoint>,
    /// The Bitcoin network the payout address belongs to.
    pub network: Network,
    /// The coinbase output script: the pool's payout address. This and
    /// `pool_tag` and `extranonce2_len` are the values the pool starts with;
    /// [`crate::Pool::set_coinbase`] changes them while it runs.
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
    /// bitcoind's `-zmqpubhashblock` endpoint (`tcp://HOST:PORT`): each
    /// announced block fetches a template at once, beside the long-poll;
    /// `None` relies on the long-poll alone.
    pub zmq_hashblock: Option<String>,
    /// Most simultaneous connections; past it the pool stops accepting until
    /// one closes.
    pub max_connections: usize,
    /// Most simultaneous connections from one address (IPv6: one /64);
    /// `None` for no limit. Behind a TCP proxy every miner shares the
    /// proxy's address, so set `None` there.
    pub max_connections_per_ip: Option<u32>,
    /// Most distinct workers (usernames) one connection may authorize; a
    /// farm proxy needs hundreds, a single rig one. Authorizing past it is
    /// refused and counts towards a ban like a malformed request.
    pub max_workers_per_connection: usize,
    /// A connection that has not subscribed and authorized within this is
    /// closed; `None` waits forever.
    pub handshake_timeout: Option<Duration>,
    /// A connection that sends no line for this long is closed; `None`
    /// waits forever.
    pub idle_timeout: Option<Duration>,
    /// A connection whose miner stops reading, so that one write to it
    /// waits this long, is closed; `None` waits forever.
    pub write_timeout: Option<Duration>,
    /// Most `mining.submit`s per second on one connection, with bursts of
    /// twice that absorbed; the excess is answered with error 20 "rate
    /// limited". `None` for no limit.
    pub max_shares_per_second: Option<u32>,
    /// When an address is banned; `None` never bans.
    pub ban_threshold: Option<BanThreshold>,
    /// How long a ban lasts.
    pub ban_duration: Duration,
    /// Variable difficulty per connection; `None` keeps every connection at
    /// the difficulty it starts with or suggests. Its `min_difficulty` and
    /// `max_difficulty` are replaced by the pool's.
    pub vardiff: Option<VardiffConfig>,
    /// Certificate and key for Stratum over TLS; required to serve a TLS
    /// listener (see [`crate::Pool::run_with_tls`]).
    pub tls: Option<crate::TlsFiles>,
    /// Where miners are told to go (`client.reconnect`) when the pool shuts
    /// down: `None` for the same host and port, which behind a load
    /// balancer means another instance.
    pub reconnect_to: Option<(String, u16)>,
    /// Where to serve Prometheus metrics (`GET /metrics`); `None` records
    /// none.
    pub metrics_listen: Option<SocketAddr>,
    /// Length of a settlement epoch, seconds.
    pub epoch_secs: u64,
    /// Group-commit tuning for the share log.
    pub writer: WriterConfig,
    /// Job declaration (docs/job-declaration.md) on the Stratum V2 port, in
    /// coinbase-only mode; `None` serves none (`SetCustomMiningJob` is
    /// refused with `jd-not-supported`).
    pub jd: Option<JdConfig>,
}

/// Job declaration settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JdConfig {
    /// How long a token may be used: a declared job never commits to a
    /// share-log head older than this.
    pub token_ttl: Duration,
    /// The most tokens live at once (the oldest go first).
    pub max_tokens: usize,
    /// Only jobs declared in full-template mode may be set: every declared
    /// block was checked by the node before its shares count.
    pub full_template_only: bool,
}

impl Default for JdConfig {
    /// Ten minutes, 65,536 tokens, both modes.
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(600),
            max_tokens: 65_536,
            full_template_only: false,
        }
    }
}

impl PoolConfig {
    /// The coinbase tag a pool starts with unless configured otherwise.
    pub const DEFAULT_POOL_TAG: &'static [u8] = b"/proofpool/";

    /// Defaults for everything but the node list and payout script.
    pub fn new(nodes: Vec<NodeEndpoint>, network: Network, payout_script: ScriptBuf) -> Self {
        Self {
            nodes,
            network,
            payout_script,
            pool_tag: Self::DEFAULT_POOL_TAG.to_vec(),
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
            max_connections_per_ip: Some(1000),
            max_workers_per_connection: 256,
            handshake_timeout: Some(Duration::from_secs(30)),
            idle_timeout: Some(Duration::from_secs(600)),
            write_timeout: Some(Duration::from_secs(30)),
            max_shares_per_second: Some(50),
            ban_threshold: Some(BanThreshold::default()),
            ban_duration: Duration::from_secs(600),
            vardiff: Some(VardiffConfig::default()),
            tls: None,
            reconnect_to: None,
            zmq_hashblock: None,
            metrics_listen: None,
            epoch_secs: 3600,
            writer: WriterConfig::default(),
            jd: None,
        }
    }
}

/// When an address gets banned: too many of its shares rejected, or too many
/// malformed requests.
///
/// Counts are kept per address (IPv6: per /64) across its connections and
/// halve every [`window`](Self::window), so old mistakes fade. Rejected
/// shares are stale, duplicate, low-difficulty or otherwise invalid ones;
/// shares refused for the pool's own reasons (rate limit, an overloaded
/// store) do not count. Malformed requests are lines that are not valid
/// JSON-RPC or are too long, bad parameters, unknown methods, and submits
/// before subscribing or for a worker that is not authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanThreshold {
    /// Shares (accepted plus rejected) needed before the reject ratio counts.
    pub min_shares: u32,
    /// Ban once at least this percentage of those shares was rejected.
    pub reject_percent: u32,
    /// Ban once this many malformed requests arrived.
    pub invalid_inputs: u32,
    /// How long counts last before halving.
    pub window: Duration,
}

impl Default for BanThreshold {
    /// 90% of at least 100 shares rejected, or 100 malformed requests,
    /// counted over about 10 minutes: far beyond what a working miner does.
    fn default() -> Self {
        Self {
            min_shares: 100,
            reject_percent: 90,
            invalid_inputs: 100,
            window: Duration::from_secs(600),
        }
    }
}
