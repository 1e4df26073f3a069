//! Read-only calls to the distributor and its token, bounded in time so a
//! slow or unreachable RPC endpoint degrades an answer instead of stalling it.

use crate::types::{ChainHeads, TokenInfo};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::transports::http::reqwest::Url;
use proofpool_chain::{DistributorClient, MockBTC};
use proofpool_primitives::{Address, U256};
use std::time::Duration;

/// Longest one chain read may take.
const CHAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// A read-only handle on the deployment.
#[derive(Debug)]
pub(crate) struct ChainReader {
    client: DistributorClient<DynProvider>,
    provider: DynProvider,
    /// The token never changes for a deployment; read it once.
    token: tokio::sync::OnceCell<TokenInfo>,
}

async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    call: impl IntoFuture<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(CHAIN_TIMEOUT, call.into_future()).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("reading {what} from the chain failed: {e}")),
        Err(_) => Err(format!(
            "reading {what} from the chain timed out after {CHAIN_TIMEOUT:?}"
        )),
    }
}

impl ChainReader {
    /// Reads the distributor at `distributor` through `url` (no wallet).
    pub(crate) fn new(url: Url, distributor: Address) -> Self {
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(url)
            .erased();
        Self {
            client: DistributorClient::new(distributor, provider.clone()),
            provider,
            token: tokio::sync::OnceCell::new(),
        }
    }

    /// `claimed(account)`.
    pub(crate) async fn claimed(&self, account: Address) -> Result<U256, String> {
        bounded("claimed(account)", self.client.claimed(account)).await
    }

    /// The reward token's address, name, symbol and decimals.
    pub(crate) async fn token(&self) -> Result<TokenInfo, String> {
        self.token
            .get_or_try_init(|| async {
                let address = bounded("token()", self.client.token()).await?;
                let token = MockBTC::new(address, self.provider.clone());
                let name = bounded("the token's name()", token.name().call()).await?;
                let symbol = bounded("the token's symbol()", token.symbol().call()).await?;
                let decimals = bounded("the token's decimals()", token.decimals().call()).await?;
                Ok(TokenInfo {
                    address: address.to_checksum(None),
                    name,
                    symbol,
                    decimals,
                })
            })
            .await
            .cloned()
    }

    /// The newest committed and finalized epochs and the finalized root.
    pub(crate) async fn heads(&self) -> Result<ChainHeads, String> {
        let (committed, finalized) = bounded("the epoch heads", self.client.heads()).await?;
        let root = bounded("finalizedRewardRoot()", self.client.finalized_reward_root()).await?;
        Ok(ChainHeads {
            last_committed_epoch: committed,
            last_finalized_epoch: finalized,
            finalized_reward_root: root.to_string(),
        })
    }
}
