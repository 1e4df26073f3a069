//! Deploying the reward token and the distributor.

use crate::{ChainError, Distributor, MockBTC};
use alloy::primitives::{Address, U256};
use alloy::providers::Provider;

/// Who runs a new distributor, and with which token.
#[derive(Debug, Clone)]
pub struct DeployParams {
    /// The reward token; `None` deploys an 8-decimal `MockBTC` (local chains only).
    pub token: Option<Address>,
    /// Sets roles and the challenge period.
    pub owner: Address,
    /// Commits and funds epochs.
    pub settler: Address,
    /// Vetoes pending epochs.
    pub guardian: Address,
    /// Seconds a committed epoch waits before it can be finalized.
    pub challenge_period: u64,
    /// With a mock token: base units minted to the settler so it can fund commits.
    pub mint_to_settler: U256,
    /// The pool's parameters, in force from the start. Their
    /// `token_per_sat` must be one token per bitcoin for the token (1 for
    /// the 8-decimal mock).
    pub params: proofpool_epoch::PoolParams,
}

/// Where the contracts live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// The reward token.
    pub token: Address,
    /// The distributor.
    pub distributor: Address,
    /// Whether `token` is a freshly deployed `MockBTC`.
    pub mock_token: bool,
}

/// Deploys the distributor (and a mock token if none is given), signing with
/// the provider's wallet. With a mock token the deployer must be `owner` to mint.
pub async fn deploy<P: Provider>(
    provider: &P,
    params: &DeployParams,
) -> Result<Deployment, ChainError> {
    let (token, mock_token) = match params.token {
        Some(token) => (token, false),
        None => {
            let mock = MockBTC::deploy(provider, params.owner)
                .await
                .map_err(ChainError::from_contract)?;
            if !params.mint_to_settler.is_zero() {
                mock.mint(params.settler, params.mint_to_settler)
                    .send()
                    .await
                    .map_err(ChainError::from_contract)?
                    .get_receipt()
                    .await?;
            }
            (*mock.address(), true)
        }
    };
    let distributor = Distributor::deploy(
        provider,
        token,
        params.owner,
        params.settler,
        params.guardian,
        params.challenge_period,
        crate::client::params_to_contract(&params.params),
    )
    .await
    .map_err(ChainError::from_contract)?;
    Ok(Deployment {
        token,
        distributor: *distributor.address(),
        mock_token,
    })
}
