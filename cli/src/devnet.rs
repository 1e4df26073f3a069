//! `proofpool devnet`: the whole system on loopback, with embedded defaults.
//!
//! It runs the bootstrap if a tool is missing, then starts and supervises:
//! a regtest bitcoind (with a funded wallet that keeps a few transactions in
//! the mempool), anvil with MockBTC and the distributor deployed and the
//! settler funded, the Stratum pool on a SQLite store in `.devnet/`, the
//! settlement loop (short epochs, small maturity, short challenge period)
//! and reference miners on anvil's test accounts. It prints a banner with
//! everything needed to point hardware or a wallet at it. Ctrl-C stops the
//! miners, drains the pool (every acknowledged share is flushed), runs a
//! last settlement pass and shuts everything down.
//!
//! With `--mine-until-claimable` the miners stop once every one of them is
//! credited in a finalized epoch, and the rest keeps running with credits
//! that no longer change (the end-to-end test claims and audits that way).
//!
//! Each run starts from a clean `.devnet/` (the chain, the node and the
//! store are all fresh, so they always agree).
//!
//! On regtest the network target is the easiest there is, so every share at
//! the miners' difficulty is also a block; the reference miners suggest a
//! difficulty that makes that a block every few seconds, and the PPLNS
//! window is widened to span several shares.

use crate::deploy::deployment_json;
use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use eyre::{WrapErr, eyre};
use proofpool_chain::{DeployParams, DistributorClient};
use proofpool_miner::{MinerConfig, MinerStats};
use proofpool_node::{NodeAuth, NodeClient, NodeEndpoint};
use proofpool_pool::{Pool, PoolConfig, TlsFiles};
use proofpool_settlement::{PoolParams, PplnsParams, SettleConfig, Settler};
use proofpool_store::{EpochStatus, Store, StoreOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Arguments of `proofpool devnet`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// anvil's port on 127.0.0.1.
    #[arg(long, default_value_t = 8545)]
    anvil_port: u16,
    /// The Stratum port on 127.0.0.1.
    #[arg(long, default_value_t = 3333)]
    stratum_port: u16,
    /// The Stratum-over-TLS port on 127.0.0.1 (a self-signed certificate is
    /// made in the state dir).
    #[arg(long, default_value_t = 3334)]
    stratum_tls_port: u16,
    /// The Stratum V2 port on 127.0.0.1 (the authority key is made in the
    /// state dir).
    #[arg(long, default_value_t = 3336)]
    stratum_v2_port: u16,
    /// The API and web app's port on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    api_port: u16,
    /// The pool's Prometheus metrics port on 127.0.0.1.
    #[arg(long, default_value_t = 9100)]
    metrics_port: u16,
    /// Where the chain (anvil's state), bitcoind's datadir, the store and the
    /// epoch files live. A second run picks up where the last one stopped.
    #[arg(long, default_value = ".devnet")]
    state_dir: PathBuf,
    /// Wipe the state dir and start from genesis (new contracts, new chains).
    #[arg(long)]
    reset: bool,
    /// Length of an epoch, seconds.
    #[arg(long, default_value_t = 10)]
    epoch_secs: u64,
    /// Confirmations before a block's credits count.
    #[arg(long, default_value_t = 2)]
    maturity: u64,
    /// Challenge period of the devnet distributor, seconds.
    #[arg(long, default_value_t = 5)]
    challenge_period: u64,
    /// Payout scheme: pplns, pps or fpps (under pps and fpps every epoch
    /// with shares is credited, block or no block).
    #[arg(long, default_value = "pplns")]
    scheme: proofpool_epoch::Scheme,
    /// Seconds between settlement passes.
    #[arg(long, default_value_t = 3)]
    settle_every: u64,
    /// Reference miners to run (0 = none): over Stratum, Stratum over TLS
    /// and Stratum V2 in turn.
    #[arg(long, default_value_t = 3)]
    miners: usize,
    /// Run no reference miners (same as --miners 0).
    #[arg(long)]
    no_miners: bool,
    /// Difficulty the reference miners suggest (on regtest each share is a block).
    #[arg(long, default_value = "0.002")]
    miner_difficulty: proofpool_primitives::Difficulty,
    /// Start, deploy, print the banner and exit (for smoke tests).
    #[arg(long)]
    exit_after_deploy: bool,
    /// Exit with success once an epoch with credits is finalized on-chain
    /// (claimable) and every reference miner has had a share accepted,
    /// printing how long that took; fail after this many seconds.
    #[arg(long)]
    until_claimable: Option<u64>,
    /// Stop the reference miners once an epoch crediting every one of them is
    /// finalized on-chain, and keep everything else running: the claimable
    /// amounts then hold still (a line says from which epoch on), so a
    /// wallet can claim and an auditor audit without racing new epochs.
    #[arg(long, conflicts_with = "no_miners")]
    mine_until_claimable: bool,
}

/// One million mock BTC for the settler to fund epochs with.
const SETTLER_FUNDING: u64 = 1_000_000 * 100_000_000;

/// The PPLNS window on the devnet, in network difficulties: at the default
/// miner difficulty a share is worth millions of regtest network
/// difficulties, so this spans a handful of shares.
const DEVNET_WINDOW_X: u64 = 20_000_000;

fn port_free(port: u16, what: &str, flag: &str) -> eyre::Result<()> {
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        eyre::bail!(
            "port {port} on 127.0.0.1 ({what}) is taken; stop whatever uses it (`ss -ltnp | grep {port}`) or pass {flag}"
        );
    }
    Ok(())
}

/// Runs the bootstrap when anvil or bitcoind is missing.
fn ensure_tools() -> eyre::Result<()> {
    if proofpool_devtools::anvil_path().is_ok() && proofpool_devtools::bitcoind_path().is_ok() {
        return Ok(());
    }
    let script = proofpool_devtools::repo_root().join("scripts/bootstrap.sh");
    eprintln!("tools missing: running {}", script.display());
    let status = std::process::Command::new("bash")
        .arg(&script)
        .status()
        .wrap_err_with(|| format!("cannot run {}", script.display()))?;
    if !status.success() {
        eyre::bail!(
            "{} failed ({status}); see its output above",
            script.display()
        );
    }
    proofpool_devtools::anvil_path()?;
    proofpool_devtools::bitcoind_path()?;
    Ok(())
}

pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    let started = Instant::now();
    port_free(args.anvil_port, "anvil", "--anvil-port")?;
    if !args.exit_after_deploy {
        port_free(args.stratum_port, "Stratum", "--stratum-port")?;
        port_free(
            args.stratum_tls_port,
            "Stratum over TLS",
            "--stratum-tls-port",
        )?;
        port_free(args.stratum_v2_port, "Stratum V2", "--stratum-v2-port")?;
        port_free(args.api_port, "API and web app", "--api-port")?;
        port_free(args.metrics_port, "pool metrics", "--metrics-port")?;
    }
    ensure_tools()?;
    let manifest_path = args.state_dir.join(MANIFEST);
    let previous = if args.reset {
        None
    } else {
        read_manifest(&manifest_path)?
    };
    if previous.is_none() && args.state_dir.exists() {
        // --reset, or a state dir without a finished deployment in it.
        std::fs::remove_dir_all(&args.state_dir)
            .wrap_err_with(|| format!("cannot reset {}", args.state_dir.display()))?;
    }
    std::fs::create_dir_all(&args.state_dir)
        .wrap_err_with(|| format!("cannot create {}", args.state_dir.display()))?;

    // The chain.
    let mut anvil = proofpool_devtools::spawn_anvil_with_state(
        Some(args.anvil_port),
        &args.state_dir.join(ANVIL_STATE),
    )?;
    let keys = anvil.keys().to_vec();
    if keys.len() < 4 {
        eyre::bail!("anvil started without its default accounts");
    }
    let deployer = PrivateKeySigner::from(keys[0].clone());
    let owner = deployer.address();
    let provider = proofpool_chain::connect(anvil.endpoint_url(), deployer);
    let chain_id = provider
        .get_chain_id()
        .await
        .wrap_err("anvil is not answering")?;
    // The same every run: its hash is pinned on the distributor.
    let payout = devnet_payout(&keys[0].to_bytes())?;
    let params = DeployParams {
        params: devnet_params(&payout, &args),
        token: None,
        owner,
        settler: owner,
        guardian: owner,
        challenge_period: args.challenge_period,
        mint_to_settler: U256::from(SETTLER_FUNDING),
    };
    let deployment = match &previous {
        Some(manifest) => {
            let deployment = manifest.check(&provider, chain_id, &args).await?;
            println!(
                "reusing the devnet in {} (contracts, chains and store from the last run; --reset starts afresh)",
                args.state_dir.display()
            );
            deployment
        }
        None => {
            let deployment = proofpool_chain::deploy(&provider, &params).await?;
            let manifest = Manifest {
                chain_id,
                token: deployment.token,
                distributor: deployment.distributor,
                epoch_secs: args.epoch_secs,
                challenge_period: args.challenge_period,
                scheme: args.scheme,
            };
            std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest)?)
                .wrap_err_with(|| format!("cannot write {}", manifest_path.display()))?;
            deployment
        }
    };
    let chain = DistributorClient::new(deployment.distributor, provider.clone());
    if previous.is_some() {
        check_params(&chain, &params.params, &args).await?;
    }
    let miner_keys: Vec<PrivateKeySigner> = keys[1..4]
        .iter()
        .map(|k| PrivateKeySigner::from(k.clone()))
        .collect();
    if args.exit_after_deploy {
        print_banner(
            &args,
            &anvil.endpoint(),
            chain_id,
            &deployment,
            &miner_keys,
            None,
        );
        println!("{}", deployment_json(chain_id, &deployment, &params));
        proofpool_devtools::stop_anvil(&mut anvil);
        return Ok(());
    }

    // Bitcoin.
    // New blocks are announced over ZMQ as well as answered by the long-poll.
    // Not one of the ports asked for: they are bound only later, and a free
    // port picked now could be one of them.
    let taken = [
        args.anvil_port,
        args.stratum_port,
        args.stratum_tls_port,
        args.stratum_v2_port,
        args.api_port,
        args.metrics_port,
    ];
    let mut zmq_port = proofpool_devtools::free_port()?;
    for _ in 0..16 {
        if !taken.contains(&zmq_port) {
            break;
        }
        zmq_port = proofpool_devtools::free_port()?;
    }
    let zmq = format!("tcp://127.0.0.1:{zmq_port}");
    let node = proofpool_devtools::Bitcoind::start_in(
        &args.state_dir.join("bitcoind"),
        &[&format!("-zmqpubhashblock={zmq}")],
    )?;
    if node.cli(&["loadwallet", "devnet"]).is_err() {
        node.cli(&["createwallet", "devnet"])?;
    }
    let funding = node.cli(&["getnewaddress", "", "bech32"])?;
    let height: u64 = node.cli(&["getblockcount"])?.parse().unwrap_or(0);
    if height < 101 {
        node.cli(&["generatetoaddress", &(101 - height).to_string(), &funding])?;
    }
    let endpoint = NodeEndpoint {
        url: node
            .rpc_url()
            .parse()
            .map_err(|e| eyre!("bad bitcoind url: {e}"))?,
        auth: NodeAuth::Cookie(node.cookie_path()),
    };

    // The pool.
    let db = args.state_dir.join("pool.db");
    let store = Store::open(
        &format!("sqlite://{}", db.display()),
        &StoreOptions::default(),
    )
    .await?;
    if previous.is_some() {
        check_store_matches_chain(&store, &chain).await?;
    }
    let mut config = PoolConfig::new(
        vec![endpoint.clone()],
        bitcoin::Network::Regtest,
        payout.script_pubkey(),
    );
    config.epoch_secs = args.epoch_secs;
    config.min_difficulty = "0.000000001".parse()?;
    config.start_difficulty = args.miner_difficulty;
    config.template_refresh = Duration::from_secs(10);
    config.zmq_hashblock = Some(zmq);
    config.metrics_listen = Some(std::net::SocketAddr::from((
        [127, 0, 0, 1],
        args.metrics_port,
    )));
    let tls = self_signed_tls(&args.state_dir)?;
    config.tls = Some(tls.clone());
    let pool = Pool::new(config, store.clone()).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.stratum_port))
        .await
        .wrap_err_with(|| format!("cannot listen on 127.0.0.1:{}", args.stratum_port))?;
    let tls_listener = tokio::net::TcpListener::bind(("127.0.0.1", args.stratum_tls_port))
        .await
        .wrap_err_with(|| format!("cannot listen on 127.0.0.1:{}", args.stratum_tls_port))?;
    let sv2_listener = tokio::net::TcpListener::bind(("127.0.0.1", args.stratum_v2_port))
        .await
        .wrap_err_with(|| format!("cannot listen on 127.0.0.1:{}", args.stratum_v2_port))?;
    let authority = devnet_authority(&args.state_dir)?;
    let (pool_stop, pool_stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = pool.clone();
    let sv2 = Some((sv2_listener, Arc::new(authority.clone())));
    let pool_task = tokio::spawn(async move {
        runner
            .run_with_listeners(listener, Some(tls_listener), sv2, async move {
                let _ = pool_stopped.await;
            })
            .await
    });

    // Settlement.
    let epochs_dir = args.state_dir.join("epochs");
    let node_client = Arc::new(NodeClient::new(vec![endpoint], Duration::from_secs(30))?);
    let settler = Arc::new(Settler::new(
        store.clone(),
        chain.clone(),
        Some(node_client),
        SettleConfig {
            params: params.params.clone(),
            verify_params: true,
            grace: Duration::from_secs(2),
            epochs_dir: epochs_dir.clone(),
            confirmations: 1,
            dry_run: false,
            settler: owner,
        },
    ));

    // The API, serving the web app when it has been built.
    let web_dir = proofpool_devtools::repo_root().join("web/dist");
    let mut api_state = proofpool_api::ApiState::new(
        store.clone(),
        epochs_dir.clone(),
        proofpool_merkle::RewardDomain {
            chain_id,
            distributor: deployment.distributor,
        },
    );
    api_state.chain_rpc_url = Some(anvil.endpoint_url());
    api_state.web_dir = web_dir.join("index.html").is_file().then_some(web_dir);
    let api_listener = tokio::net::TcpListener::bind(("127.0.0.1", args.api_port))
        .await
        .wrap_err_with(|| format!("cannot listen on 127.0.0.1:{}", args.api_port))?;
    let (api_stop, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api_task = tokio::spawn(proofpool_api::serve(api_listener, api_state, async move {
        let _ = api_stopped.await;
    }));

    // Miners.
    let (miners_stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let n_miners = if args.no_miners {
        0
    } else {
        args.miners.min(miner_keys.len())
    };
    let mut miners = tokio::task::JoinSet::new();
    let mut miner_stats = Vec::new();
    for (i, key) in miner_keys.iter().take(n_miners).enumerate() {
        let stats = Arc::new(MinerStats::default());
        miner_stats.push((key.address(), stats.clone()));
        // Plain, TLS and Stratum V2 in turn, so every port carries work.
        let over_tls = i % 3 == 1;
        let over_sv2 = i % 3 == 2;
        let config = MinerConfig {
            address: format!(
                "127.0.0.1:{}",
                match i % 3 {
                    0 => args.stratum_port,
                    1 => args.stratum_tls_port,
                    _ => args.stratum_v2_port,
                }
            ),
            user: format!("{}.cpu{i}", key.address()),
            threads: 1,
            suggest_difficulty: Some(args.miner_difficulty),
            max_shares: None,
            tls_ca: over_tls.then(|| tls.cert.clone()),
            retry_up_to: Some(Duration::from_secs(10)),
            // What `proofpool watch check --log` reads.
            share_log: Some(args.state_dir.join(format!("miner-{i}-shares.db"))),
            sv2_authority: over_sv2.then(|| *authority.public()),
            sv2_standard: false,
        };
        let mut stop = miners_stop.subscribe();
        miners.spawn(async move {
            if let Err(e) = proofpool_miner::run(config, stats, async move {
                let _ = stop.recv().await;
            })
            .await
            {
                tracing::warn!(error = %e, "reference miner stopped");
            }
        });
    }

    print_banner(
        &args,
        &anvil.endpoint(),
        chain_id,
        &deployment,
        &miner_keys,
        Some((&epochs_dir, &node)),
    );
    for (i, (addr, _)) in miner_stats.iter().enumerate() {
        println!(
            "  miner {}        {addr}  (reference CPU miner over {})",
            i + 1,
            ["TCP", "TLS", "Stratum V2"][i % 3]
        );
    }
    println!("Ctrl-C stops everything.");

    // Supervise: mempool traffic, settlement passes, status lines.
    let mut settle_tick = tokio::time::interval(Duration::from_secs(args.settle_every.max(1)));
    settle_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut mempool_tick = tokio::time::interval(Duration::from_secs(15));
    let mut status_tick = tokio::time::interval(Duration::from_secs(30));
    status_tick.tick().await;
    let deadline = args
        .until_claimable
        .map(|secs| tokio::time::Instant::now() + Duration::from_secs(secs));
    let stop = crate::pool::shutdown_signal();
    tokio::pin!(stop);
    let mut mining = !miner_stats.is_empty();
    let outcome: eyre::Result<()> = loop {
        tokio::select! {
            () = &mut stop => break Ok(()),
            () = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => break Err(eyre!("no epoch with credits was finalized within {:?}", args.until_claimable)),
            _ = mempool_tick.tick() => {
                // Keep a transaction or two in the mempool so templates carry fees.
                if let Ok(to) = node.cli(&["getnewaddress", "", "bech32"])
                    && let Err(e) = node.cli(&["sendtoaddress", &to, "0.1"])
                {
                    tracing::debug!(error = %e, "devnet mempool transaction not sent");
                }
            }
            _ = settle_tick.tick() => {
                match settler.run_once().await {
                    Ok(report) => {
                        let mut claimable = false;
                        for (e, tx) in &report.committed {
                            tracing::info!(epoch = e, %tx, "epoch committed");
                        }
                        for e in &report.finalized {
                            let record = store.epoch(*e).await?;
                            let total = record.as_ref().map(|r| r.total_cumulative).unwrap_or_default();
                            println!("epoch {e} finalized: {total} MockBTC base units claimable in total ({:.0?} since start)", started.elapsed());
                            claimable |= !total.is_zero();
                        }
                        // A miner at the devnet's difficulty finds a share
                        // every few seconds, so an early epoch can miss one
                        // of them; `--until-claimable` shows every port
                        // carrying work, so it waits for each miner's first.
                        let all_mined = miner_stats.iter().all(|(_, s)| s.accepted.load(Ordering::Relaxed) > 0);
                        if args.until_claimable.is_some() && claimable && !all_mined {
                            println!("epoch {} claimable; waiting for every reference miner's first accepted share", report.finalized.last().copied().unwrap_or_default());
                        } else if args.until_claimable.is_some() && claimable {
                            match claim_through_api(args.api_port, &chain, &miner_stats).await {
                                Ok(true) => {
                                    println!("first claimable epoch after {:.1?}", started.elapsed());
                                    break Ok(());
                                }
                                // A reused devnet: everything finalized so far was claimed before.
                                Ok(false) => println!("nothing new to claim yet; waiting for the next epoch"),
                                Err(e) => break Err(e),
                            }
                        }
                        if args.mine_until_claimable
                            && mining
                            && let Some(&e) = report.finalized.last()
                        {
                            match every_miner_credited(&store, e, &miner_stats).await {
                                Ok(false) => {}
                                Ok(true) => {
                                    let _ = miners_stop.send(());
                                    while miners.join_next().await.is_some() {}
                                    mining = false;
                                    // Every share is now in this epoch or an
                                    // earlier one, and no block can mature any
                                    // more; the next epoch also covers a block
                                    // submitted as the miners stopped.
                                    let last = match store.clock().await {
                                        Ok(clock) => clock.epoch_of_ms(unix_ms()),
                                        Err(err) => break Err(err.into()),
                                    };
                                    println!(
                                        "every reference miner has credits in finalized epoch {e}; miners stopped in epoch {last}; claimable amounts hold still from epoch {} on",
                                        last + 1
                                    );
                                }
                                Err(err) => tracing::warn!(error = %err, "cannot read the miners' balances"),
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "settlement pass failed; retrying"),
                }
            }
            _ = status_tick.tick() => {
                let finalized = store.epochs(0, 50).await?.into_iter().find(|r| r.status == EpochStatus::Finalized).map(|r| r.epoch);
                for (addr, s) in &miner_stats {
                    tracing::info!(miner = %addr, hashes = s.hashes.load(Ordering::Relaxed), accepted = s.accepted.load(Ordering::Relaxed), rejected = s.rejected.load(Ordering::Relaxed), "miner");
                }
                tracing::info!(blocks = pool.blocks().len(), ?finalized, "devnet status");
            }
        }
    };

    tracing::info!("shutting down: stopping miners");
    let _ = miners_stop.send(());
    while miners.join_next().await.is_some() {}
    if args.until_claimable.is_some() {
        for (i, (addr, s)) in miner_stats.iter().enumerate() {
            println!(
                "miner {addr} over {}: {} shares accepted, {} rejected",
                ["TCP", "TLS", "Stratum V2"][i % 3],
                s.accepted.load(Ordering::Relaxed),
                s.rejected.load(Ordering::Relaxed)
            );
        }
    }
    let _ = pool_stop.send(());
    match pool_task.await {
        Ok(Ok(())) => tracing::info!("pool drained and stopped"),
        Ok(Err(e)) => tracing::warn!(error = %e, "pool stopped with an error"),
        Err(e) => tracing::warn!(error = %e, "pool task failed"),
    }
    let _ = api_stop.send(());
    if let Ok(Err(e)) = api_task.await {
        tracing::warn!(error = %e, "api stopped with an error");
    }
    store.close().await;
    drop(node);
    // SIGINT, so anvil writes its state file for the next run.
    proofpool_devtools::stop_anvil(&mut anvil);
    drop(anvil);
    outcome
}

/// What a devnet run leaves in its state dir for the next one.
const MANIFEST: &str = "devnet.json";
/// anvil's chain state (`anvil --state`).
const ANVIL_STATE: &str = "anvil-state.json";

/// The deployment a state dir holds, written once it is complete.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    chain_id: u64,
    token: alloy::primitives::Address,
    distributor: alloy::primitives::Address,
    epoch_secs: u64,
    challenge_period: u64,
    /// Absent from manifests written before schemes: PPLNS.
    #[serde(default)]
    scheme: proofpool_epoch::Scheme,
}

fn read_manifest(path: &std::path::Path) -> eyre::Result<Option<Manifest>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).wrap_err_with(|| {
            format!(
                "{} is not a devnet manifest; run with --reset to start afresh",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).wrap_err_with(|| format!("cannot read {}", path.display())),
    }
}

impl Manifest {
    /// The deployment, once the reloaded chain is checked to still hold it
    /// and the settings that cannot change without a reset are unchanged.
    async fn check<P: Provider>(
        &self,
        provider: &P,
        chain_id: u64,
        args: &Args,
    ) -> eyre::Result<proofpool_chain::Deployment> {
        let changed = |what: &str, then: u64, now: u64| {
            eyre!(
                "the devnet in {} was made with {what} {then}, not {now}: run with --reset, or without the new value",
                args.state_dir.display()
            )
        };
        if self.epoch_secs != args.epoch_secs {
            return Err(changed("--epoch-secs", self.epoch_secs, args.epoch_secs));
        }
        if self.challenge_period != args.challenge_period {
            return Err(changed(
                "--challenge-period",
                self.challenge_period,
                args.challenge_period,
            ));
        }
        if self.chain_id != chain_id {
            return Err(changed("chain id", self.chain_id, chain_id));
        }
        if self.scheme != args.scheme {
            return Err(eyre!(
                "the devnet in {} pays {}, not {}: run with --reset (a running pool changes scheme with `proofpool params queue`, after the challenge period)",
                args.state_dir.display(),
                self.scheme,
                args.scheme
            ));
        }
        for (name, address) in [("distributor", self.distributor), ("token", self.token)] {
            let code = provider
                .get_code_at(address)
                .await
                .wrap_err("anvil is not answering")?;
            if code.is_empty() {
                eyre::bail!(
                    "the reloaded chain has no {name} at {address} (its state file {} is missing or stale); run with --reset",
                    args.state_dir.join(ANVIL_STATE).display()
                );
            }
        }
        Ok(proofpool_chain::Deployment {
            token: self.token,
            distributor: self.distributor,
            mock_token: true,
        })
    }
}

/// A reused devnet's distributor must have the parameters this run settles
/// with in force (a new `--maturity` changes them).
async fn check_params<P: Provider + Clone>(
    chain: &DistributorClient<P>,
    params: &PoolParams,
    args: &Args,
) -> eyre::Result<()> {
    let now = chain.chain_time().await?;
    let in_force = chain.params_at(now).await?;
    if in_force != params.hash() {
        eyre::bail!(
            "the devnet in {} was deployed with other pool parameters ({in_force}, not {}): --maturity changed? Run with --reset, or without the new value",
            args.state_dir.display(),
            params.hash()
        );
    }
    Ok(())
}

/// After a restart, the chain must have every epoch the store says it
/// committed (a devnet killed without a clean stop can leave anvil's state
/// file behind the store).
async fn check_store_matches_chain<P: Provider + Clone>(
    store: &Store,
    chain: &DistributorClient<P>,
) -> eyre::Result<()> {
    let (committed_on_chain, _) = chain.heads().await?;
    let newest_in_store = store
        .epochs(0, 1000)
        .await?
        .into_iter()
        .filter(|r| r.commit_tx.is_some())
        .map(|r| r.epoch)
        .max()
        .unwrap_or(0);
    if let Ok(clock) = store.clock().await {
        let behind = clock
            .epoch_of_ms(unix_ms())
            .saturating_sub(clock.closed_epoch.max(newest_in_store));
        if behind > 30 {
            println!(
                "{behind} epochs passed while the devnet was stopped; each is settled and committed in turn (about {} s), then new shares are credited",
                behind / 10 + 1
            );
        }
    }
    if newest_in_store > committed_on_chain {
        eyre::bail!(
            "the store has epoch {newest_in_store} committed but the reloaded chain only {committed_on_chain} (the last run was not stopped cleanly); run with --reset"
        );
    }
    Ok(())
}

/// Whether every reference miner has a non-zero cumulative balance at epoch `e`.
async fn every_miner_credited(
    store: &Store,
    e: u64,
    miners: &[(alloy::primitives::Address, Arc<MinerStats>)],
) -> eyre::Result<bool> {
    let balances = store.balances_at(e).await?;
    Ok(miners
        .iter()
        .all(|(miner, _)| balances.get(miner).is_some_and(|sats| *sats > 0)))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The smoke test's last step: each miner's proof from the API claims its
/// tokens on-chain, exactly the cumulative amount less what it claimed
/// before. Whether any miner had anything new to claim.
async fn claim_through_api(
    api_port: u16,
    chain: &DistributorClient<alloy::providers::DynProvider>,
    miners: &[(alloy::primitives::Address, Arc<MinerStats>)],
) -> eyre::Result<bool> {
    let http = reqwest::Client::new();
    let token = proofpool_chain::MockBTC::new(chain.token().await?, chain_provider(chain));
    let mut claimed_any = false;
    for (miner, _) in miners {
        let url = format!("http://127.0.0.1:{api_port}/api/v1/epochs/latest/proof/{miner}");
        let response = http.get(&url).send().await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            println!("miner {miner}: nothing to claim yet");
            continue;
        }
        let body: serde_json::Value = response.error_for_status()?.json().await?;
        let amount: U256 = body["cumulativeAmount"]
            .as_str()
            .ok_or_else(|| eyre!("proof answer has no cumulativeAmount: {body}"))?
            .parse()?;
        let proof = body["proof"]
            .as_array()
            .ok_or_else(|| eyre!("proof answer has no proof: {body}"))?
            .iter()
            .map(|h| {
                h.as_str()
                    .ok_or_else(|| eyre!("bad proof element {h}"))
                    .and_then(|h| Ok(h.parse::<alloy::primitives::B256>()?))
            })
            .collect::<eyre::Result<Vec<_>>>()?;
        // On a reused devnet part of the cumulative amount was claimed before.
        let due = amount.saturating_sub(chain.claimed(*miner).await?);
        if due.is_zero() {
            println!("miner {miner}: its cumulative {amount} was claimed before");
            continue;
        }
        let before = token.balanceOf(*miner).call().await?;
        chain.claim(*miner, amount, proof).await?;
        let after = token.balanceOf(*miner).call().await?;
        if after - before != due {
            eyre::bail!(
                "miner {miner} claimed {due} but received {}",
                after - before
            );
        }
        println!(
            "miner {miner} claimed {due} MockBTC base units with the API's proof (cumulative {amount})"
        );
        claimed_any = true;
    }
    Ok(claimed_any)
}

fn chain_provider(
    chain: &DistributorClient<alloy::providers::DynProvider>,
) -> alloy::providers::DynProvider {
    chain.provider().clone()
}

/// Where the devnet's self-signed certificate and key go in the state dir.
const TLS_CERT: &str = "tls/pool.crt";
const TLS_KEY: &str = "tls/pool.key";
/// The devnet's Stratum V2 authority key pair, in the state dir.
const AUTHORITY_KEY: &str = "authority.toml";

/// Makes a self-signed certificate for 127.0.0.1 and localhost in the state
/// dir, for the TLS Stratum port.
/// The devnet's Stratum V2 authority key: the state dir's, made on the
/// first run.
fn devnet_authority(
    state_dir: &std::path::Path,
) -> eyre::Result<proofpool_pool::sv2::keys::AuthorityKey> {
    use proofpool_pool::sv2::keys::AuthorityKey;
    let path = state_dir.join(AUTHORITY_KEY);
    if path.exists() {
        return Ok(AuthorityKey::read(&path)?);
    }
    let key = AuthorityKey::generate()?;
    key.write_new(&path)?;
    Ok(key)
}

fn self_signed_tls(state_dir: &std::path::Path) -> eyre::Result<TlsFiles> {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .wrap_err("cannot make the devnet's TLS certificate")?;
    let files = TlsFiles {
        cert: state_dir.join(TLS_CERT),
        key: state_dir.join(TLS_KEY),
    };
    if let Some(dir) = files.cert.parent() {
        std::fs::create_dir_all(dir)
            .wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&files.cert, cert.cert.pem())
        .wrap_err_with(|| format!("cannot write {}", files.cert.display()))?;
    std::fs::write(&files.key, cert.signing_key.serialize_pem())
        .wrap_err_with(|| format!("cannot write {}", files.key.display()))?;
    Ok(files)
}

fn print_banner(
    args: &Args,
    rpc: &str,
    chain_id: u64,
    deployment: &proofpool_chain::Deployment,
    miners: &[PrivateKeySigner],
    running: Option<(&std::path::Path, &proofpool_devtools::Bitcoind)>,
) {
    println!("proofpool devnet");
    if !args.exit_after_deploy {
        println!(
            "  stratum        stratum+tcp://127.0.0.1:{}  (username: an EVM address, e.g. {}.rig1)",
            args.stratum_port,
            miners
                .first()
                .map(|m| m.address().to_string())
                .unwrap_or_default()
        );
        println!(
            "  stratum (TLS)  stratum+ssl://127.0.0.1:{}  (self-signed: {})",
            args.stratum_tls_port,
            args.state_dir.join(TLS_CERT).display()
        );
        if let Ok(key) =
            proofpool_pool::sv2::keys::AuthorityKey::read(&args.state_dir.join(AUTHORITY_KEY))
        {
            println!(
                "  stratum (V2)   stratum2+tcp://127.0.0.1:{}/{}  (authority key: {})",
                args.stratum_v2_port,
                key.public_b58(),
                args.state_dir.join(AUTHORITY_KEY).display()
            );
        }
    }
    if !args.exit_after_deploy {
        println!(
            "  web + api      http://127.0.0.1:{}/  (API under /api/v1, OpenAPI at /api/openapi.json)",
            args.api_port
        );
        println!(
            "  pool metrics   http://127.0.0.1:{}/metrics",
            args.metrics_port
        );
    }
    println!("  anvil rpc      {rpc}  (chain id {chain_id})");
    println!(
        "  token          {}  (MockBTC, 8 decimals)",
        deployment.token
    );
    println!("  distributor    {}", deployment.distributor);
    if let Some(m) = miners.first() {
        println!("  test miner     {}", m.address());
        println!(
            "  miner key      0x{}  (anvil's well-known key #1; import it in a wallet)",
            alloy::hex::encode(m.credential().to_bytes())
        );
    }
    if let Some((dir, node)) = running {
        let cookie = node.cookie_path();
        println!(
            "  bitcoind rpc   {}  (cookie {})",
            node.rpc_url(),
            cookie.display()
        );
        println!(
            "  epochs         every {} s, files in {}  (audit: proofpool audit --epochs-dir {} --rpc-url {rpc} --distributor {} --btc-rpc-url {} --btc-cookie {} --maturity {})",
            args.epoch_secs,
            dir.display(),
            dir.display(),
            deployment.distributor,
            node.rpc_url(),
            cookie.display(),
            args.maturity
        );
        println!(
            "  share logs     {}/miner-N-shares.db  (check: proofpool watch check --log {}/miner-0-shares.db --epochs-dir {} --rpc-url {rpc})",
            args.state_dir.display(),
            args.state_dir.display(),
            dir.display(),
        );
    }
}

/// The pool's payout address on the devnet: P2WPKH of the deployer's key
/// (anvil's first), so it is the same on every run and spendable with it.
fn devnet_payout(key: &[u8]) -> eyre::Result<bitcoin::Address> {
    let secret = bitcoin::secp256k1::SecretKey::from_slice(key)?;
    let secp = bitcoin::secp256k1::Secp256k1::signing_only();
    let public = bitcoin::CompressedPublicKey(secret.public_key(&secp));
    Ok(bitcoin::Address::p2wpkh(&public, bitcoin::Network::Regtest))
}

/// The devnet's pool parameters: the window and fee it always used, an
/// 8-decimal mock token, and the pool's own coinbase tag.
fn devnet_params(payout: &bitcoin::Address, args: &Args) -> PoolParams {
    PoolParams {
        pplns: PplnsParams {
            window_x: DEVNET_WINDOW_X,
            fee_bps: 100,
        },
        token_per_sat: U256::from(1u64),
        payout_script: payout.script_pubkey().to_bytes().into(),
        epoch_secs: args.epoch_secs,
        maturity: args.maturity,
        pool_tag: proofpool_pool::PoolConfig::DEFAULT_POOL_TAG.to_vec().into(),
        scheme: args.scheme,
    }
}
