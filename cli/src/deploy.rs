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
    /// Guardian: someone other than the owner and the settler, who vetoes
    /// failing epochs (defaults to the deployer only on local chains, 31337
    /// and 1337).
    #[arg(long)]
    guardian: Option<Address>,
    /// Challenge period in seconds.
    #[arg(long, default_value_t = 3600)]
    challenge_period: u64,
    /// With a mock token: base units minted to the settler.
    #[arg(long, default_value_t = U256::ZERO)]
    mint_to_settler: U256,
    /// The pool's parameters, in force from the start.
    #[command(flatten)]
    params: crate::params::ParamsArgs,
}

/// Local development chains, where one key may hold every role and the
/// challenge period may be seconds.
const LOCAL_CHAINS: [u64; 2] = [31_337, 1_337];

/// On a real chain the guardian must be a key of its own: an operator who
/// holds it can veto nothing it wants to keep.
fn check_roles(chain_id: u64, p: &DeployParams) -> eyre::Result<()> {
    if LOCAL_CHAINS.contains(&chain_id) {
        return Ok(());
    }
    if p.guardian == p.settler || p.guardian == p.owner {
        eyre::bail!(
            "on chain {chain_id} the guardian must be someone other than the owner and the settler: pass --guardian ADDRESS (their key audits and vetoes; see the operator guide, \"The guardian\")"
        );
    }
    Ok(())
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
    // The mock token has 8 decimals; a real one is asked.
    let decimals = match args.token {
        None => 8,
        Some(token) => proofpool_chain::MockBTC::new(token, &provider)
            .decimals()
            .call()
            .await
            .wrap_err_with(|| format!("cannot read decimals() of the token {token}"))?,
    };
    let pool = args.params.resolve(decimals)?;
    let params = DeployParams {
        params: pool,
        token: args.token,
        owner: args.owner.unwrap_or(deployer),
        settler: args.settler.unwrap_or(deployer),
        guardian: args.guardian.unwrap_or(deployer),
        challenge_period: args.challenge_period,
        mint_to_settler: args.mint_to_settler,
    };
    check_roles(chain_id, &params)?;
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
        "params_hash": p.params.hash().to_string(),
        "scheme": p.params.scheme.as_str(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(owner: u8, settler: u8, guardian: u8) -> DeployParams {
        DeployParams {
            token: None,
            owner: Address::repeat_byte(owner),
            settler: Address::repeat_byte(settler),
            guardian: Address::repeat_byte(guardian),
            challenge_period: 3600,
            mint_to_settler: U256::ZERO,
            params: crate::params::tests::regtest_params(),
        }
    }

    #[test]
    fn a_real_chain_needs_a_guardian_of_its_own() {
        assert!(check_roles(8453, &params(1, 2, 3)).is_ok());
        let err = check_roles(8453, &params(1, 2, 2)).unwrap_err().to_string();
        assert!(err.contains("--guardian"), "{err}");
        assert!(check_roles(1, &params(1, 2, 1)).is_err());
        // Local chains: one key may hold every role.
        assert!(check_roles(31_337, &params(1, 1, 1)).is_ok());
        assert!(check_roles(1_337, &params(1, 1, 1)).is_ok());
    }
}
