//! `proofpool deploy`: put the distributor on a chain.

use crate::key;
use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use eyre::WrapErr;
use proofpool_chain::{DeployParams, Deployment};
use std::path::PathBuf;

/// Arguments of `proofpool deploy`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// JSON-RPC endpoint of the chain.
    #[arg(long, env = "PROOFPOOL_RPC_URL")]
    rpc_url: alloy::transports::http::reqwest::Url,
    /// File holding the deployer's hex private key (else PROOFPOOL_DEPLOYER_KEY).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Existing reward token; without it an 8-decimal MockBTC is deployed.
    #[arg(long)]
    token: Option<Address>,
    /// Owner (defaults to the deployer).
    #[arg(long)]
    owner: Option<Address>,
    /// Settler (defaults to the deployer).
    #[arg(long)]
    settler: Option<Address>,
    /// Guardian (defaults to the deployer).
    #[arg(long)]
    guardian: Option<Address>,
    /// Challenge period in seconds.
    #[arg(long, default_value_t = 3600)]
    challenge_period: u64,
    /// With a mock token: base units minted to the settler.
    #[arg(long, default_value_t = U256::ZERO)]
    mint_to_settler: U256,
}

/// Deploys and prints the addresses as JSON on stdout.
pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    let signer = key::load(args.key_file.as_deref(), "PROOFPOOL_DEPLOYER_KEY")?;
    let deployer = signer.address();
    let provider = proofpool_chain::connect(args.rpc_url.clone(), signer);
    let chain_id = provider
        .get_chain_id()
        .await
        .wrap_err_with(|| format!("cannot reach the chain at {}", args.rpc_url))?;
    let params = DeployParams {
        token: args.token,
        owner: args.owner.unwrap_or(deployer),
        settler: args.settler.unwrap_or(deployer),
        guardian: args.guardian.unwrap_or(deployer),
        challenge_period: args.challenge_period,
        mint_to_settler: args.mint_to_settler,
    };
    let deployment = proofpool_chain::deploy(&provider, &params).await?;
    tracing::info!(chain_id, token = %deployment.token, distributor = %deployment.distributor, "deployed");
    println!("{}", deployment_json(chain_id, &deployment, &params));
    Ok(())
}

/// The deployment as the JSON other tools read.
pub(crate) fn deployment_json(
    chain_id: u64,
    d: &Deployment,
    p: &DeployParams,
) -> serde_json::Value {
    serde_json::json!({
        "chain_id": chain_id,
        "token": d.token.to_string(),
        "mock_token": d.mock_token,
        "distributor": d.distributor.to_string(),
        "owner": p.owner.to_string(),
        "settler": p.settler.to_string(),
        "guardian": p.guardian.to_string(),
        "challenge_period": p.challenge_period,
    })
}
