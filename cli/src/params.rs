//! The pool's parameters as flags (shared by `deploy`, `settle` and
//! `params queue`), and `proofpool params`: show the distributor's schedule,
//! announce a change, withdraw one not yet in force.

use crate::key;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider as _;
use eyre::{WrapErr, eyre};
use proofpool_chain::DistributorClient;
use proofpool_epoch::{PoolParams, PplnsParams, Scheme};
use std::path::PathBuf;
use std::str::FromStr;

/// The pool's parameters, pinned on-chain: the distributor keeps their hash,
/// every epoch file declares them, and a change takes effect only after the
/// challenge period.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ParamsArgs {
    /// PPLNS window, in network difficulties.
    #[arg(long, default_value_t = 2)]
    pub(crate) window_x: u64,
    /// Pool fee in basis points.
    #[arg(long, default_value_t = 100)]
    pub(crate) fee_bps: u64,
    /// Token base units per satoshi: 10^(decimals - 8) of the reward token, one token per bitcoin (read from the token when not given; any other value is refused).
    #[arg(long)]
    pub(crate) token_per_sat: Option<U256>,
    /// The pool's payout address (the pool's payout_address): every job's coinbase must pay it.
    #[arg(long)]
    pub(crate) payout_address: String,
    /// Bitcoin network of --payout-address: bitcoin, testnet, testnet4, signet or regtest
    #[arg(long, default_value = "bitcoin")]
    pub(crate) network: bitcoin::Network,
    /// Epoch length in seconds (the pool's epoch_secs).
    #[arg(long, default_value_t = 3600)]
    pub(crate) epoch_secs: u64,
    /// Confirmations before a found block is paid (100 on mainnet).
    #[arg(long, default_value_t = 100)]
    pub(crate) maturity: u64,
    /// The tag in every coinbase (the pool's pool_tag).
    #[arg(long, default_value = "/proofpool/")]
    pub(crate) pool_tag: String,
    /// How miners are paid: pplns (found blocks, split among the shares before them once they mature), pps (each share's expected share of the block subsidy, when its epoch closes) or fpps (of the subsidy and its job's fees). Under pps and fpps each commit funds the epoch's credits, and found blocks are the operator's.
    #[arg(long, default_value = "pplns")]
    pub(crate) scheme: Scheme,
}

impl ParamsArgs {
    /// The parameters, with `token_per_sat` checked against (or taken from)
    /// the reward token's decimals.
    pub(crate) fn resolve(&self, token_decimals: u8) -> eyre::Result<PoolParams> {
        let scale = proofpool_epoch::token_per_sat(token_decimals).ok_or_else(|| {
            eyre!(
                "the reward token has {token_decimals} decimals: fewer than 8 cannot hold a satoshi"
            )
        })?;
        let token_per_sat = match self.token_per_sat {
            None => scale,
            Some(given) if given == scale => given,
            Some(given) => eyre::bail!(
                "--token-per-sat {given} is not one token per bitcoin: the reward token has \
                 {token_decimals} decimals, so it must be {scale}"
            ),
        };
        let text = &self.payout_address;
        let payout = bitcoin::Address::from_str(text)
            .wrap_err_with(|| format!("--payout-address {text} is not a Bitcoin address"))?
            .require_network(self.network)
            .wrap_err_with(|| {
                format!(
                    "--payout-address {text} is not an address on {}",
                    self.network
                )
            })?;
        if self.fee_bps > 10_000 {
            eyre::bail!("--fee-bps {} is above 10000 (100%)", self.fee_bps);
        }
        for (flag, value) in [
            ("--window-x", self.window_x),
            ("--epoch-secs", self.epoch_secs),
            ("--maturity", self.maturity),
        ] {
            if value == 0 {
                eyre::bail!("{flag} must be at least 1");
            }
        }
        Ok(PoolParams {
            pplns: PplnsParams {
                window_x: self.window_x,
                fee_bps: self.fee_bps,
            },
            token_per_sat,
            payout_script: Bytes::from(payout.script_pubkey().to_bytes()),
            epoch_secs: self.epoch_secs,
            maturity: self.maturity,
            pool_tag: Bytes::from(self.pool_tag.as_bytes().to_vec()),
            scheme: self.scheme,
        })
    }
}

/// Arguments of `proofpool params`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Print the distributor's parameter schedule: every version, when it takes effect, and which is in force now.
    Show(Chain),
    /// Announce new parameters (owner key): epochs starting after the challenge period are settled with them.
    Queue {
        #[command(flatten)]
        chain: Chain,
        #[command(flatten)]
        params: ParamsArgs,
        /// File holding the owner's hex private key (else PROOFPOOL_OWNER_KEY).
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Withdraw the announced parameters that are not in force yet (owner key).
    Cancel {
        #[command(flatten)]
        chain: Chain,
        /// File holding the owner's hex private key (else PROOFPOOL_OWNER_KEY).
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
}

/// Which distributor.
#[derive(Debug, clap::Args)]
struct Chain {
    /// JSON-RPC endpoint of the L2.
    #[arg(long, env = "PROOFPOOL_RPC_URL")]
    rpc_url: alloy::transports::http::reqwest::Url,
    /// The distributor contract.
    #[arg(long, env = "PROOFPOOL_DISTRIBUTOR")]
    distributor: Address,
}

pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    match args.action {
        Action::Show(chain) => {
            let provider = alloy::providers::ProviderBuilder::new()
                .connect_http(chain.rpc_url.clone())
                .erased();
            show(&DistributorClient::new(chain.distributor, provider)).await
        }
        Action::Queue {
            chain,
            params,
            key_file,
        } => {
            let signer = key::load(key_file.as_deref(), "PROOFPOOL_OWNER_KEY")?;
            let provider = proofpool_chain::connect(chain.rpc_url.clone(), signer);
            let client = DistributorClient::new(chain.distributor, provider);
            let decimals = client.token_decimals().await.wrap_err_with(|| {
                format!(
                    "cannot read the distributor through the RPC at {}",
                    chain.rpc_url
                )
            })?;
            let params = params.resolve(decimals)?;
            let version = client
                .queue_params(&params)
                .await
                .wrap_err("queueParams failed")?;
            println!(
                "announced parameters {} ({}, fee {} bps, window {}), in force for epochs starting at or after {}",
                version.hash,
                params.scheme,
                params.pplns.fee_bps,
                params.pplns.window_x,
                version.effective_at
            );
            Ok(())
        }
        Action::Cancel { chain, key_file } => {
            let signer = key::load(key_file.as_deref(), "PROOFPOOL_OWNER_KEY")?;
            let provider = proofpool_chain::connect(chain.rpc_url.clone(), signer);
            let client = DistributorClient::new(chain.distributor, provider);
            client
                .cancel_params()
                .await
                .wrap_err("cancelParams failed")?;
            println!("the announced parameters were withdrawn");
            Ok(())
        }
    }
}

async fn show<P: alloy::providers::Provider + Clone>(
    client: &DistributorClient<P>,
) -> eyre::Result<()> {
    let schedule = client
        .params_schedule()
        .await
        .wrap_err("cannot read the parameter schedule")?;
    let now = client.chain_time().await?;
    let current = schedule.iter().rposition(|v| v.effective_at <= now);
    for (i, v) in schedule.iter().enumerate() {
        let state = match current {
            Some(c) if c == i => "in force",
            Some(c) if i < c => "superseded",
            _ => "announced",
        };
        println!("{i}\t{}\teffective_at {}\t{state}", v.hash, v.effective_at);
        match client.announced_params(v.hash).await? {
            Some(p) => println!(
                "\tscheme {}  fee_bps {}  window_x {}  token_per_sat {}  epoch_secs {}  maturity {}  payout_script {}  pool_tag {:?}",
                p.scheme,
                p.pplns.fee_bps,
                p.pplns.window_x,
                p.token_per_sat,
                p.epoch_secs,
                p.maturity,
                p.payout_script,
                String::from_utf8_lossy(&p.pool_tag)
            ),
            None => println!("\t(no ParamsQueued event carries these parameters)"),
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn args() -> ParamsArgs {
        ParamsArgs {
            window_x: 2,
            fee_bps: 100,
            token_per_sat: None,
            payout_address: regtest_address(),
            network: bitcoin::Network::Regtest,
            epoch_secs: 3600,
            maturity: 100,
            pool_tag: "/proofpool/".to_owned(),
            scheme: Scheme::Pplns,
        }
    }

    fn regtest_address() -> String {
        use bitcoin::hashes::Hash as _;
        let script =
            bitcoin::ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([7; 20]));
        bitcoin::Address::from_script(&script, bitcoin::Network::Regtest)
            .unwrap()
            .to_string()
    }

    pub(crate) fn regtest_params() -> PoolParams {
        args().resolve(8).unwrap()
    }

    #[test]
    fn token_per_sat_follows_the_token_and_refuses_any_other() {
        // One token per bitcoin: 10^(decimals - 8) base units per satoshi.
        assert_eq!(args().resolve(8).unwrap().token_per_sat, U256::from(1u64));
        assert_eq!(
            args().resolve(18).unwrap().token_per_sat,
            U256::from(10_000_000_000u64)
        );
        let wrong = ParamsArgs {
            token_per_sat: Some(U256::from(1u64)),
            ..args()
        };
        let err = wrong.resolve(18).unwrap_err().to_string();
        assert!(err.contains("must be 10000000000"), "{err}");
        assert!(args().resolve(6).is_err());
    }

    #[test]
    fn bad_parameters_are_refused_with_the_flag_named() {
        let cases = [
            (
                ParamsArgs {
                    fee_bps: 10_001,
                    ..args()
                },
                "--fee-bps",
            ),
            (
                ParamsArgs {
                    window_x: 0,
                    ..args()
                },
                "--window-x",
            ),
            (
                ParamsArgs {
                    epoch_secs: 0,
                    ..args()
                },
                "--epoch-secs",
            ),
            (
                ParamsArgs {
                    payout_address: "0xnot-bitcoin".to_owned(),
                    ..args()
                },
                "--payout-address",
            ),
            (
                ParamsArgs {
                    network: bitcoin::Network::Bitcoin,
                    ..args()
                },
                "not an address on bitcoin",
            ),
        ];
        for (bad, expected) in cases {
            let err = bad.resolve(8).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn the_payout_script_and_tag_are_what_the_pool_puts_in_its_coinbase() {
        let p = regtest_params();
        // P2WPKH: OP_0, a 20-byte push.
        assert_eq!(&p.payout_script[..2], &[0x00, 0x14]);
        assert_eq!(p.payout_script.len(), 22);
        assert_eq!(&p.pool_tag[..], b"/proofpool/");
    }
}
