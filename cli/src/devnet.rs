//! `proofpool devnet`: a local chain with the contracts deployed.
//!
//! Today it starts anvil on loopback, deploys MockBTC and the distributor with
//! the project's own deploy code, mints the settler's funding and approves the
//! distributor, prints a banner and stays up until Ctrl-C. bitcoind, the pool,
//! settlement, the API and miners join it as their issues land.

use crate::deploy::deployment_json;
use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use eyre::WrapErr;
use proofpool_chain::{DeployParams, DistributorClient};

/// Arguments of `proofpool devnet`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// anvil's port on 127.0.0.1.
    #[arg(long, default_value_t = 8545)]
    anvil_port: u16,
    /// Challenge period of the devnet distributor, in seconds.
    #[arg(long, default_value_t = 10)]
    challenge_period: u64,
    /// Start, deploy, print the banner and exit (for smoke tests).
    #[arg(long)]
    exit_after_deploy: bool,
}

/// One million mock BTC for the settler to fund epochs with.
const SETTLER_FUNDING: u64 = 1_000_000 * 100_000_000;

pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    if std::net::TcpListener::bind(("127.0.0.1", args.anvil_port)).is_err() {
        eyre::bail!(
            "port {} on 127.0.0.1 is taken; stop whatever uses it or pass --anvil-port",
            args.anvil_port
        );
    }
    let anvil = proofpool_devtools::spawn_anvil(Some(args.anvil_port))?;
    let keys = anvil.keys();
    let (Some(deployer_key), Some(miner_key)) = (keys.first(), keys.get(1)) else {
        eyre::bail!("anvil started without its default accounts");
    };
    let deployer = PrivateKeySigner::from(deployer_key.clone());
    let miner = PrivateKeySigner::from(miner_key.clone());
    let owner = deployer.address();
    let provider = proofpool_chain::connect(anvil.endpoint_url(), deployer);
    let chain_id = provider
        .get_chain_id()
        .await
        .wrap_err("anvil is not answering")?;
    let params = DeployParams {
        token: None,
        owner,
        settler: owner,
        guardian: owner,
        challenge_period: args.challenge_period,
        mint_to_settler: U256::from(SETTLER_FUNDING),
    };
    let deployment = proofpool_chain::deploy(&provider, &params).await?;
    let client = DistributorClient::new(deployment.distributor, provider.clone());
    client.approve_funding(U256::MAX).await?;

    println!("proofpool devnet");
    println!(
        "  anvil rpc      {}  (chain id {chain_id})",
        anvil.endpoint()
    );
    println!(
        "  token          {}  (MockBTC, 8 decimals)",
        deployment.token
    );
    println!("  distributor    {}", deployment.distributor);
    println!("  settler        {owner}  (funded, distributor approved)");
    println!("  test miner     {}", miner.address());
    println!(
        "  miner key      0x{}  (anvil's well-known key #1; import it in a wallet)",
        alloy::hex::encode(miner_key.to_bytes())
    );
    println!("{}", deployment_json(chain_id, &deployment, &params));
    if args.exit_after_deploy {
        return Ok(());
    }
    println!("Ctrl-C stops everything.");
    tokio::signal::ctrl_c()
        .await
        .wrap_err("cannot listen for Ctrl-C")?;
    tracing::info!("shutting down");
    drop(anvil);
    Ok(())
}
