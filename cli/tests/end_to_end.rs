//! The whole path, end to end, on the real system (issue 7).
//!
//! `proofpool devnet` (the binary, as a user runs it) brings up a regtest
//! bitcoind, anvil with MockBTC and the distributor, the pool on TCP and TLS,
//! settlement, the API serving the web app, and two reference miners on
//! anvil's accounts 1 and 2 (the second over TLS). Their blocks mature, and
//! epochs settle and finalize on-chain with credits for both. Then:
//! - miner A claims from its page in real Chromium
//!   (`web/tests/e2e-claim.spec.mjs`: an injected wallet forwarding to anvil,
//!   where A's account is unlocked);
//! - miner B claims with the API's proof in a transaction it signs itself;
//! - both token balances equal the PPLNS credits to the base unit: the
//!   published epoch file's cumulative amounts, the sum of the per-block
//!   credits of every epoch file, and (once devnet has stopped) the store;
//! - `proofpool audit` passes against the API and the chain, then fails,
//!   naming the share, once one share in a published epoch file is altered.
//!
//! devnet runs with `--mine-until-claimable`: the miners stop once both are
//! credited, so the reward root holds still while the claims happen. Every
//! wait is bounded. devnet runs in its own process group: it is stopped with
//! SIGINT and must exit cleanly, leaving no process behind; on a failure or a
//! timeout the group is killed. Chromium's group is killed after its script.
//! Screenshots go to `<target dir>/web-artifacts/e2e-*.png`.

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use proofpool_chain::DistributorClient;
use proofpool_devtools::TempDir;
use proofpool_epoch::epoch_file::EpochFile;
use proofpool_store::{Store, StoreOptions};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The whole test, from devnet's start to the second audit.
const TEST_LIMIT: Duration = Duration::from_secs(480);
/// From the start until devnet has printed its banner.
const BANNER_LIMIT: Duration = Duration::from_secs(120);
/// From the banner until an epoch crediting both miners is finalized.
const CREDITED_LIMIT: Duration = Duration::from_secs(240);
/// From then until the epoch from which credits hold still is finalized.
const SETTLED_LIMIT: Duration = Duration::from_secs(90);
/// The browser script, Chromium included.
const SCRIPT_LIMIT: Duration = Duration::from_secs(150);
/// One `proofpool audit` run.
const AUDIT_LIMIT: Duration = Duration::from_secs(120);
/// anvil's first default key: the devnet's owner, settler and guardian.
const ANVIL_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// From SIGINT until devnet has exited.
const STOP_LIMIT: Duration = Duration::from_secs(60);
/// devnet's epoch length, seconds.
const EPOCH_SECS: u64 = 5;
/// The private key of anvil's well-known account 2 (from its default
/// mnemonic), devnet's second reference miner: B signs its own claim.
const MINER_B_KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

fn web_dir() -> PathBuf {
    proofpool_devtools::repo_root().join("web")
}

/// `<target dir>/web-artifacts`, shared with `tests/tests/web_chromium.rs`.
fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp")
        .join("web-artifacts")
}

/// Chromium, playwright-core and an up-to-date web/dist (devnet serves it
/// only if it exists when devnet starts), or a clear panic.
fn prerequisites() {
    assert!(
        Path::new("/usr/bin/chromium").is_file(),
        "/usr/bin/chromium is missing: run `make setup` (scripts/install-chromium.sh installs Debian's chromium)"
    );
    let built = Command::new(proofpool_devtools::repo_root().join("scripts/build-web.sh"))
        .stdin(Stdio::null())
        .status()
        .expect("run scripts/build-web.sh");
    assert!(built.success(), "scripts/build-web.sh failed");
    assert!(
        web_dir().join("node_modules/playwright-core").is_dir(),
        "web/node_modules/playwright-core is missing: run `make setup`"
    );
}

fn free_port() -> String {
    proofpool_devtools::free_port()
        .expect("a free loopback port")
        .to_string()
}

/// Sends `signal` (e.g. `-INT`, `-KILL`) to `target` (a pid, or `-PGID` for
/// a whole process group) with kill(1).
fn signal(signal: &str, target: &str) {
    // The target may be gone already, so kill's exit status says nothing;
    // only failing to run it at all is worth a word.
    if let Err(e) = Command::new("kill")
        .args([signal, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        eprintln!("could not run kill {signal} {target}: {e}");
    }
}

/// The live (not zombie) processes in process group `pgid`, as `pid (name)`.
fn group_members(pgid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut members = Vec::new();
    for entry in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may contain spaces.
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = tail.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
            members.push(format!("{head})"));
        }
    }
    members
}

/// `proofpool devnet` in its own process group, its output collected line by
/// line. Dropping it stops it (SIGINT, then SIGKILL to the group).
struct Devnet {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    api: String,
    state_dir: PathBuf,
}

impl Devnet {
    fn start(state_dir: PathBuf) -> Self {
        let api_port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_proofpool"))
            .args(["devnet", "--mine-until-claimable"])
            .args(["--epoch-secs", &EPOCH_SECS.to_string()])
            .args(["--anvil-port", &free_port()])
            .args(["--stratum-port", &free_port()])
            .args(["--stratum-tls-port", &free_port()])
            .args(["--stratum-v2-port", &free_port()])
            .args(["--api-port", &api_port])
            .args(["--metrics-port", &free_port()])
            .arg("--state-dir")
            .arg(&state_dir)
            .env("PROOFPOOL_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start proofpool devnet");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let streams: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("stdout is piped")),
            Box::new(child.stderr.take().expect("stderr is piped")),
        ];
        for stream in streams {
            let lines = lines.clone();
            // Ends when devnet and everything it started have closed the pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().expect("no reader panics").push(line);
                }
            });
        }
        Self {
            child,
            lines,
            api: format!("http://127.0.0.1:{api_port}"),
            state_dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn output(&self) -> String {
        self.lines.lock().expect("no reader panics").join("\n")
    }

    /// The first output line starting with `prefix`, waiting at most `limit`.
    async fn line(&mut self, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let found = self
                .lines
                .lock()
                .expect("no reader panics")
                .iter()
                .find(|l| l.starts_with(prefix))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            if let Some(status) = self.child.try_wait().expect("poll devnet") {
                panic!("devnet exited ({status}) before printing {prefix:?}");
            }
            assert!(
                Instant::now() < deadline,
                "devnet printed no {prefix:?} within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The banner's value for `label` (its first word after the label).
    fn banner(&self, label: &str) -> String {
        let lines = self.lines.lock().expect("no reader panics");
        lines
            .iter()
            .find_map(|l| {
                l.strip_prefix("  ")?
                    .strip_prefix(label)?
                    .split_whitespace()
                    .next()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("no {label:?} in devnet's banner"))
    }

    /// SIGINT (Ctrl-C), then waits up to [`STOP_LIMIT`] for devnet to exit;
    /// `None` if it did not.
    fn interrupt(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        signal("-INT", &self.pid().to_string());
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Whatever is left of devnet's process group (anvil, bitcoind), after
    /// waiting up to 10 s for it to go.
    fn leftovers(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let members = group_members(self.pid());
            if members.is_empty() || Instant::now() >= deadline {
                return members;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// bitcoind datadirs devnet made (`proofpool-bitcoind-<devnet pid>-N`).
    fn bitcoind_dirs(&self) -> Vec<PathBuf> {
        let prefix = format!("proofpool-bitcoind-{}-", self.pid());
        std::fs::read_dir(std::env::temp_dir())
            .map(|dir| {
                dir.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- devnet output ----\n{}\n----", self.output());
        }
        let exited = self.interrupt().is_some();
        if !exited {
            eprintln!("devnet did not stop within {STOP_LIMIT:?} of SIGINT; killing its group");
        }
        if !group_members(self.pid()).is_empty() {
            signal("-KILL", &format!("-{}", self.pid()));
        }
        if !exited && let Err(e) = self.child.wait() {
            eprintln!("cannot reap devnet: {e}");
        }
        for dir in self.bitcoind_dirs() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                eprintln!("cannot remove {}: {e}", dir.display());
            }
        }
    }
}

/// What the banner says about the chain and bitcoind.
struct Deployment {
    rpc: reqwest::Url,
    /// bitcoind's RPC URL and cookie file, and the settler's maturity, for
    /// the audit's checks against bitcoind.
    bitcoind: (String, String, String),
    chain_id: u64,
    token: Address,
    distributor: Address,
    /// Miner A (over TCP) and miner B (over TLS).
    miners: [Address; 2],
}

fn deployment(devnet: &Devnet) -> Deployment {
    let rpc = devnet.banner("anvil rpc");
    let output = devnet.output();
    let chain_id = output
        .split("(chain id ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|id| id.parse().ok())
        .expect("the banner names the chain id");
    let address = |label: &str| Address::from_str(&devnet.banner(label)).expect("an address");
    let after = |marker: &str| {
        output
            .split(marker)
            .nth(1)
            .and_then(|rest| rest.split([' ', ')']).next())
            .unwrap_or_else(|| panic!("the banner has {marker:?}"))
            .to_owned()
    };
    let bitcoind = (
        devnet.banner("bitcoind rpc"),
        after("(cookie "),
        after("--maturity "),
    );
    Deployment {
        rpc: rpc.parse().expect("anvil's URL"),
        bitcoind,
        chain_id,
        token: address("token"),
        distributor: address("distributor"),
        miners: [address("miner 1"), address("miner 2")],
    }
}

/// A GET that answers JSON, with its status.
async fn get_json(http: &reqwest::Client, url: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let response = http.get(url).send().await.expect("the API answers");
    let status = response.status();
    let body = response.json().await.expect("the API answers JSON");
    (status, body)
}

/// A miner's claim arguments from `/api/v1/epochs/latest/proof/{miner}`.
struct ClaimProof {
    epoch: u64,
    cumulative: U256,
    proof: Vec<B256>,
    root: B256,
}

fn parse_proof(body: &serde_json::Value) -> ClaimProof {
    let text = |key: &str| {
        body[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {body}"))
    };
    ClaimProof {
        epoch: body["epoch"].as_u64().expect("an epoch number"),
        cumulative: text("cumulativeAmount").parse().expect("a decimal amount"),
        proof: body["proof"]
            .as_array()
            .expect("a proof array")
            .iter()
            .map(|h| h.as_str().expect("a hex hash").parse().expect("32 bytes"))
            .collect(),
        root: text("rewardRoot").parse().expect("32 bytes"),
    }
}

/// Polls the API until both miners' latest proofs are claimable at epoch
/// `from` or later.
async fn settled_proofs(
    http: &reqwest::Client,
    api: &str,
    miners: &[Address; 2],
    from: u64,
) -> [ClaimProof; 2] {
    let deadline = Instant::now() + SETTLED_LIMIT;
    loop {
        let mut proofs = Vec::new();
        for miner in miners {
            let url = format!("{api}/api/v1/epochs/latest/proof/{miner}");
            let (status, body) = get_json(http, &url).await;
            // `claimableNow` is false for an instant when a newer epoch is
            // finalized during the request.
            if status.is_success()
                && body["epoch"].as_u64().is_some_and(|e| e >= from)
                && body["claimableNow"].as_bool() == Some(true)
            {
                proofs.push(parse_proof(&body));
            }
        }
        if let Ok(both) = <[ClaimProof; 2]>::try_from(proofs) {
            return both;
        }
        assert!(
            Instant::now() < deadline,
            "epoch {from} was not finalized with proofs for both miners within {SETTLED_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Epoch `e`'s file as the API publishes it, checked against its
/// `X-Data-Hash` header.
async fn epoch_file(http: &reqwest::Client, api: &str, e: u64) -> EpochFile {
    let response = http
        .get(format!("{api}/api/v1/epochs/{e}/file"))
        .send()
        .await
        .expect("the API answers")
        .error_for_status()
        .expect("the epoch file is published");
    let header: B256 = response
        .headers()
        .get("x-data-hash")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse().ok())
        .expect("an X-Data-Hash header");
    let bytes = response.bytes().await.expect("the file's bytes");
    assert_eq!(keccak256(&bytes), header, "epoch {e}'s file hash");
    EpochFile::from_bytes(&bytes).expect("a valid epoch file")
}

/// SIGKILLs process group `.0` when dropped.
struct KillGroupOnDrop(u32);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        signal("-KILL", &format!("-{}", self.0));
    }
}

/// Runs `web/tests/e2e-claim.spec.mjs` for `miner`, bounded by
/// [`SCRIPT_LIMIT`]; node and Chromium run in their own process group, which
/// is killed afterwards whatever happened.
async fn claim_in_chromium(api: &str, d: &Deployment, miner: Address) -> Duration {
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(web_dir().join("tests/e2e-claim.spec.mjs"))
        .current_dir(web_dir())
        .env("WEB_URL", api)
        .env("ANVIL_URL", d.rpc.as_str())
        .env("MINER", miner.to_string())
        .env("CHAIN_ID", d.chain_id.to_string())
        .env("ARTIFACTS", artifacts_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn().expect("node is installed (Node.js 20+)");
    // Whatever happens, even if this future is dropped, no Chromium is left.
    let group = KillGroupOnDrop(child.id().expect("a running child has a pid"));
    let output = tokio::time::timeout(SCRIPT_LIMIT, child.wait_with_output()).await;
    drop(group);
    let output = output
        .unwrap_or_else(|_| panic!("the browser script ran past {SCRIPT_LIMIT:?}; killed it"))
        .expect("the browser script ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!(
        "e2e-claim.spec.mjs took {:.1} s\n{stdout}{}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && stdout.contains(" passed, 0 failed"),
        "the claim in Chromium failed ({}); screenshots in {}",
        output.status,
        artifacts_dir().display()
    );
    started.elapsed()
}

/// Where `proofpool audit` ties jobs and blocks to Bitcoin.
enum Bitcoin {
    /// bitcoind itself.
    Node,
    /// The headers the files carry, anchored by `--checkpoint HEIGHT:HASH`.
    Checkpoint(String),
}

/// `proofpool audit` against the API, the chain and `bitcoin`, up to
/// epoch `to`.
async fn audit(api: &str, d: &Deployment, to: u64, bitcoin: &Bitcoin) -> (bool, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_proofpool"));
    command
        .arg("audit")
        .args(["--api-url", &format!("{api}/")])
        .args(["--rpc-url", d.rpc.as_str()])
        .args(["--distributor", &d.distributor.to_string()])
        .args(["--maturity", &d.bitcoind.2])
        .args(["--to", &to.to_string()]);
    match bitcoin {
        Bitcoin::Node => command
            .args(["--btc-rpc-url", &d.bitcoind.0])
            .args(["--btc-cookie", &d.bitcoind.1]),
        Bitcoin::Checkpoint(c) => command.args(["--checkpoint", c]),
    };
    let run = command
        .env("PROOFPOOL_LOG", "error")
        // As an auditor runs it: the verdicts, without the test's backtraces.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(AUDIT_LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("proofpool audit ran past {AUDIT_LIMIT:?}"))
        .expect("run proofpool audit");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("proofpool audit ({}):\n{text}", out.status);
    (out.status.success(), text)
}

/// bitcoind's `getblockhash HEIGHT`, over JSON-RPC with the devnet's cookie.
async fn block_hash(d: &Deployment, height: u64) -> String {
    let cookie = std::fs::read_to_string(&d.bitcoind.1).expect("bitcoind's cookie");
    let (user, password) = cookie.trim().split_once(':').expect("user:password");
    let answer: serde_json::Value = reqwest::Client::new()
        .post(&d.bitcoind.0)
        .basic_auth(user, Some(password))
        .json(&serde_json::json!({"jsonrpc": "1.0", "id": 1, "method": "getblockhash", "params": [height]}))
        .send()
        .await
        .expect("bitcoind answers")
        .json()
        .await
        .expect("JSON");
    answer["result"]
        .as_str()
        .unwrap_or_else(|| panic!("getblockhash {height}: {answer}"))
        .to_owned()
}

/// What the scenario measured and what the store is checked against after
/// devnet stops.
struct Outcome {
    epoch: u64,
    token_per_sat: U256,
    balances: [U256; 2],
    miners: [Address; 2],
    credited_after: Duration,
    settled_after: Duration,
    browser: Duration,
}

async fn scenario(devnet: &mut Devnet, started: Instant) -> Outcome {
    devnet.line("Ctrl-C stops everything", BANNER_LIMIT).await;
    let d = deployment(devnet);
    let [a, b] = d.miners;

    // Blocks found through the pool mature; an epoch crediting both miners is
    // finalized, and devnet stops the miners so the credits hold still.
    let line = devnet
        .line("every reference miner has credits", CREDITED_LIMIT)
        .await;
    let credited_after = started.elapsed();
    println!("{line}");
    let stable_from: u64 = line
        .rsplit("from epoch ")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("devnet says from which epoch credits hold still");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("an HTTP client");
    let [proof_a, proof_b] = settled_proofs(&http, &devnet.api, &d.miners, stable_from).await;
    let settled_after = started.elapsed();
    let epoch = proof_a.epoch.min(proof_b.epoch);
    assert_eq!(proof_a.root, proof_b.root, "the reward root holds still");

    // B signs its own transactions; reads go through the same provider.
    let signer_b = PrivateKeySigner::from_str(MINER_B_KEY).expect("a private key");
    assert_eq!(
        signer_b.address(),
        b,
        "devnet's second miner is anvil's account 2"
    );
    let chain = DistributorClient::new(
        d.distributor,
        proofpool_chain::connect(d.rpc.clone(), signer_b),
    );
    assert_eq!(chain.token().await.unwrap(), d.token);
    assert_eq!(chain.finalized_reward_root().await.unwrap(), proof_a.root);
    let (_, finalized) = chain.heads().await.unwrap();
    assert!(finalized >= epoch, "the chain has finalized epoch {epoch}");

    // The PPLNS credits, from the published epoch files: the newest one's
    // cumulative amounts, and the per-block credits of every one summed.
    let mut files = Vec::new();
    for e in 1..=epoch {
        files.push(epoch_file(&http, &devnet.api, e).await);
    }
    let last = files.last().expect("at least one epoch");
    let token_per_sat = last.chain.token_per_sat;
    assert_eq!(last.chain.distributor, d.distributor);
    assert_eq!(last.reward_root, proof_a.root);
    let mut credited: BTreeMap<Address, u64> = BTreeMap::new();
    for block in files.iter().flat_map(|f| &f.blocks) {
        assert_eq!(
            block.credits.iter().map(|c| c.sats).sum::<u64>() + block.operator,
            block.coinbase_value,
            "credits plus the operator's part are the coinbase of block {}",
            block.height
        );
        for c in &block.credits {
            *credited.entry(c.miner).or_default() += c.sats;
        }
    }
    let mut credits = [U256::ZERO; 2];
    for (i, (miner, proof)) in [(a, &proof_a), (b, &proof_b)].into_iter().enumerate() {
        let reward = last
            .rewards
            .iter()
            .find(|r| r.account == miner)
            .unwrap_or_else(|| panic!("{miner} has no reward leaf in epoch {epoch}"));
        assert!(!reward.cumulative_amount.is_zero(), "{miner} was credited");
        assert_eq!(reward.cumulative_amount, proof.cumulative, "{miner}");
        assert_eq!(
            U256::from(credited[&miner]) * token_per_sat,
            reward.cumulative_amount,
            "{miner}: the epochs' block credits add up to the cumulative amount"
        );
        assert_eq!(chain.token_balance(miner).await.unwrap(), U256::ZERO);
        credits[i] = reward.cumulative_amount;
    }

    // Miner A claims from its page in Chromium.
    let browser = claim_in_chromium(&devnet.api, &d, a).await;
    assert_eq!(chain.token_balance(a).await.unwrap(), credits[0]);
    assert_eq!(chain.claimed(a).await.unwrap(), credits[0]);

    // Miner B claims with the API's proof, calling the contract directly.
    let (status, body) = get_json(
        &http,
        &format!("{}/api/v1/epochs/latest/proof/{b}", devnet.api),
    )
    .await;
    assert!(status.is_success(), "{body}");
    let proof = parse_proof(&body);
    assert_eq!(proof.root, proof_a.root, "the reward root holds still");
    let receipt = chain.claim(b, proof.cumulative, proof.proof).await.unwrap();
    assert_eq!(receipt.from, b);
    assert_eq!(chain.token_balance(b).await.unwrap(), credits[1]);
    assert_eq!(chain.claimed(b).await.unwrap(), credits[1]);
    println!(
        "miner A {a} claimed {} in Chromium, miner B {b} claimed {} with the API's proof",
        credits[0], credits[1]
    );

    // The audit reproduces every committed root from the published files,
    // with bitcoind, and from the headers the files carry anchored by a
    // block hash bitcoind gives (an explorer would do in real life).
    // The first file with headers is the first epoch with jobs.
    let mut first = None;
    for e in 1..=epoch {
        if let Some(b) = epoch_file(&http, &devnet.api, e).await.bitcoin {
            first = Some(b);
            break;
        }
    }
    let height = first.expect("the files carry headers").start_height + 1;
    let checkpoint = format!("{height}:{}", block_hash(&d, height).await);
    for bitcoin in [Bitcoin::Node, Bitcoin::Checkpoint(checkpoint)] {
        let (passed, text) = audit(&devnet.api, &d, epoch, &bitcoin).await;
        assert!(passed, "the audit fails on untouched data:\n{text}");
        assert!(
            text.contains(&format!(
                "audit passed: {epoch} epochs recomputed, every commitment matches the chain"
            )),
            "{text}"
        );
    }

    // The guardian (on the devnet, anvil's first key, which is also the
    // owner and settler) audits what is pending and vetoes nothing.
    let guardian = tokio::process::Command::new(env!("CARGO_BIN_EXE_proofpool"))
        .arg("guardian")
        .args(["--api-url", &format!("{}/", devnet.api)])
        .args(["--rpc-url", d.rpc.as_str()])
        .args(["--distributor", &d.distributor.to_string()])
        .args(["--btc-rpc-url", &d.bitcoind.0])
        .args(["--btc-cookie", &d.bitcoind.1])
        .args(["--maturity", &d.bitcoind.2])
        .arg("--once")
        .env("PROOFPOOL_GUARDIAN_KEY", ANVIL_KEY_0)
        .env("PROOFPOOL_LOG", "error")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let guardian = tokio::time::timeout(AUDIT_LIMIT, guardian)
        .await
        .expect("proofpool guardian --once ends")
        .expect("run proofpool guardian");
    let text = String::from_utf8_lossy(&guardian.stdout);
    assert!(
        guardian.status.success() && text.contains("vetoed: None"),
        "{text}{}",
        String::from_utf8_lossy(&guardian.stderr)
    );

    // Anyone reads the pool's pinned parameters in full: the devnet's are in
    // force from the deployment (fee 1%).
    let params = tokio::process::Command::new(env!("CARGO_BIN_EXE_proofpool"))
        .args(["params", "show"])
        .args(["--rpc-url", d.rpc.as_str()])
        .args(["--distributor", &d.distributor.to_string()])
        .env("PROOFPOOL_LOG", "error")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let params = tokio::time::timeout(AUDIT_LIMIT, params)
        .await
        .expect("proofpool params show ends")
        .expect("run proofpool params show");
    let text = String::from_utf8_lossy(&params.stdout);
    assert!(
        params.status.success()
            && text.contains("in force")
            && text.contains("fee_bps 100")
            && text.contains("\"/proofpool/\""),
        "{text}{}",
        String::from_utf8_lossy(&params.stderr)
    );

    // One share of a published epoch file changes its nonce: the API now
    // serves the altered file, and the audit must name the share.
    let (tampered, share) = files
        .iter()
        .find_map(|f| f.shares.first().map(|s| (f.epoch, s.clone())))
        .expect("some epoch has shares");
    let path = devnet
        .state_dir
        .join("epochs")
        .join(EpochFile::file_name(tampered));
    let mut file = EpochFile::from_bytes(&std::fs::read(&path).expect("the published file"))
        .expect("a valid epoch file");
    file.shares[0].nonce ^= 1;
    std::fs::write(&path, file.to_bytes().expect("serializes")).expect("rewrite the file");
    let served = http
        .get(format!("{}/api/v1/epochs/{tampered}/file", devnet.api))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("the API serves the file")
        .bytes()
        .await
        .expect("the file's bytes");
    assert_eq!(
        EpochFile::from_bytes(&served).unwrap().shares[0].nonce,
        share.nonce ^ 1,
        "the API serves the altered file"
    );
    let (passed, text) = audit(&devnet.api, &d, epoch, &Bitcoin::Node).await;
    assert!(!passed, "the audit passes a tampered share:\n{text}");
    for expected in [
        format!("epoch {tampered}: FAIL"),
        format!("share {}: hash: expected", share.seq),
        "audit failed".to_owned(),
    ] {
        assert!(text.contains(&expected), "no {expected:?} in\n{text}");
    }

    Outcome {
        epoch,
        token_per_sat,
        balances: credits,
        miners: d.miners,
        credited_after,
        settled_after,
        browser,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_become_claims_in_chromium_and_by_proof_and_audit_catches_a_tampered_share() {
    prerequisites();
    let started = Instant::now();
    let state = TempDir::new("end-to-end").unwrap();
    let state_dir = state.path().join(".devnet");
    let mut devnet = Devnet::start(state_dir.clone());
    let outcome = tokio::time::timeout(TEST_LIMIT, scenario(&mut devnet, started))
        .await
        .unwrap_or_else(|_| panic!("the end-to-end test ran past {TEST_LIMIT:?}"));

    // Ctrl-C: devnet stops cleanly and leaves nothing behind.
    let status = devnet
        .interrupt()
        .unwrap_or_else(|| panic!("devnet did not stop within {STOP_LIMIT:?} of SIGINT"));
    assert!(status.success(), "devnet exited with {status}");
    let left = devnet.leftovers();
    assert!(left.is_empty(), "devnet left processes behind: {left:?}");
    assert!(
        devnet.bitcoind_dirs().is_empty(),
        "devnet left bitcoind datadirs behind"
    );
    drop(devnet);

    // The store's ledger agrees with the tokens paid, to the base unit.
    let store = Store::open(
        &format!("sqlite://{}", state_dir.join("pool.db").display()),
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    let balances = store.balances_at(outcome.epoch).await.unwrap();
    for (miner, paid) in outcome.miners.iter().zip(outcome.balances) {
        assert_eq!(
            U256::from(balances[miner]) * outcome.token_per_sat,
            paid,
            "{miner}"
        );
    }
    store.close().await;

    println!(
        "end to end: both miners credited after {:.1} s, credits settled (epoch {}) after {:.1} s, browser claim {:.1} s, total {:.1} s",
        outcome.credited_after.as_secs_f64(),
        outcome.epoch,
        outcome.settled_after.as_secs_f64(),
        outcome.browser.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
