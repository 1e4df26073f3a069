//! The SRI translator proxy (`translator_sv2` from crates.io, installed by
//! `scripts/install-translator.sh`): Stratum V1 miners connect to it, and it
//! mines for them on one aggregated extended channel of a Stratum V2 pool.

use crate::{TempDir, ToolError, locate, repo_root};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The translator wrapper written by `scripts/install-translator.sh`, or
/// `$TRANSLATOR_SV2`.
pub fn translator_path() -> Result<PathBuf, ToolError> {
    locate(
        "translator_sv2",
        "TRANSLATOR_SV2",
        repo_root().join(".cache/bin/translator_sv2"),
    )
}

/// What the translator is told.
#[derive(Debug, Clone)]
pub struct TranslatorConfig {
    /// The pool's Stratum V2 address.
    pub upstream: SocketAddr,
    /// The pool's authority public key (SRI's base58check encoding).
    pub authority_pubkey: String,
    /// The channel's user identity: the pool credits every share to it
    /// (`0xADDRESS`; the translator appends `.translator-proxy`).
    pub user_identity: String,
    /// The hashrate the translator assumes for each V1 miner, hashes a
    /// second; with `shares_per_minute` it sets the miners' difficulty
    /// (`hashrate × 60 / shares_per_minute / 2^32`) and the channel's
    /// maximum target.
    pub miner_hashrate: f64,
    /// The share rate the difficulty aims at.
    pub shares_per_minute: f64,
}

/// Why the translator could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranslatorError {
    /// The binary is missing.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// Writing its config or starting it failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// It exited, or did not listen in time.
    #[error("translator_sv2 {what}; its log:\n{log}")]
    Start {
        /// What went wrong.
        what: String,
        /// What it printed.
        log: String,
    },
}

/// A running translator on a free loopback port; killed (and its temp dir
/// with the config and log removed) when dropped.
#[derive(Debug)]
pub struct Translator {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: TempDir,
}

impl Translator {
    /// Writes the config, starts the translator, and waits (up to 30 s)
    /// until it accepts V1 miners. Vardiff is off: the miners keep the
    /// difficulty `config` implies.
    pub fn start(config: &TranslatorConfig) -> Result<Self, TranslatorError> {
        let binary = translator_path()?;
        let dir = TempDir::new("translator")?;
        let port = crate::free_port()?;
        let text = format!(
            "downstream_address = \"127.0.0.1\"\n\
             downstream_port = {port}\n\
             max_supported_version = 2\n\
             min_supported_version = 2\n\
             downstream_extranonce2_size = 4\n\
             verify_payout = false\n\
             aggregate_channels = true\n\
             supported_extensions = []\n\
             \n\
             [downstream_difficulty_config]\n\
             min_individual_miner_hashrate = {hashrate:?}\n\
             shares_per_minute = {spm:?}\n\
             enable_vardiff = false\n\
             job_keepalive_interval_secs = 60\n\
             \n\
             [[upstreams]]\n\
             address = \"{host}\"\n\
             port = {upstream_port}\n\
             authority_pubkey = \"{key}\"\n\
             user_identity = \"{user}\"\n",
            hashrate = config.miner_hashrate,
            spm = config.shares_per_minute,
            host = config.upstream.ip(),
            upstream_port = config.upstream.port(),
            key = config.authority_pubkey,
            user = config.user_identity,
        );
        let config_path = dir.path().join("tproxy.toml");
        std::fs::write(&config_path, text)?;
        let log = dir.path().join("tproxy.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(&binary)
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        let mut translator = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = translator.child.try_wait()? {
                return Err(translator.failed(format!("exited at start ({status})")));
            }
            if std::net::TcpStream::connect_timeout(&translator.addr, Duration::from_millis(200))
                .is_ok()
            {
                return Ok(translator);
            }
            if Instant::now() > deadline {
                return Err(translator.failed(format!("did not listen on {port} within 30 s")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Where V1 miners connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it has printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn failed(&self, what: String) -> TranslatorError {
        TranslatorError::Start {
            what,
            log: self.log(),
        }
    }
}

impl Drop for Translator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
