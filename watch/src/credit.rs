//! The watcher's own PPLNS replay: what each of its miners is owed, and
//! whether the reward leaf the contract pays against says the same.
//!
//! Under PPS and FPPS (docs/payout-schemes.md) it values each share of the
//! epoch from its own job instead and recomputes the epoch's credits; a
//! block whose solving share is in such an epoch credits nobody, and PPLNS
//! windows count only shares of PPLNS epochs.
//!
//! The replay reads only the epoch files: every listed share by sequence
//! number, scored at the work of its credited target against its job's
//! network target, and every paid block's coinbase value, under each paying
//! file's parameters (DESIGN.md, "PPLNS"). Its sum for a miner must be the
//! miner's cumulative credit in the newest file's reward leaf, that leaf
//! must be in the file's reward tree, and with a chain (see
//! [`CreditCheck::on_chain`]) that file must be the one the distributor
//! committed, and the finalized root the one the contract pays against.

use crate::WatchError;
use crate::check::{EpochIndex, EpochSummary};
use alloy::providers::DynProvider;
use alloy_primitives::{Address, U256};
use proofpool_chain::DistributorClient;
use proofpool_epoch::epoch_file::FileReward;
use proofpool_epoch::{WindowShare, credit_block};
use proofpool_merkle::{RewardLeaf, RewardTree};
use proofpool_primitives::{MinerAddress, Sats, Work};
use std::collections::BTreeMap;

/// One paid block's credit to one miner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCredit {
    /// The epoch that paid it.
    pub epoch: u64,
    /// The block's height.
    pub height: u64,
    /// What the replay credits, sats.
    pub recomputed: u64,
    /// What the file lists, sats.
    pub listed: u64,
}

/// What an epoch paid a miner for its shares under PPS or FPPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochCredit {
    /// The epoch.
    pub epoch: u64,
    /// What the replay credits, sats.
    pub recomputed: u64,
    /// What the file lists, sats.
    pub listed: u64,
}

/// What the contract holds for a miner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnChain {
    /// The newest committed epoch.
    pub committed_epoch: u64,
    /// The newest finalized epoch (claims are paid against its root).
    pub finalized_epoch: u64,
    /// Already claimed, token base units.
    pub claimed: U256,
    /// What a claim pays now: the finalized leaf less what was claimed.
    pub claimable_now: U256,
    /// What the epochs committed after the finalized one add, once they
    /// finalize.
    pub pending: U256,
}

/// The replay's verdict for one miner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditCheck {
    /// The miner.
    pub miner: Address,
    /// The newest epoch the replay read.
    pub epoch: u64,
    /// Every block that credits the miner, by the replay or by its file.
    pub blocks: Vec<BlockCredit>,
    /// Every PPS or FPPS epoch that credits the miner's shares, by the
    /// replay or by its file.
    pub epochs: Vec<EpochCredit>,
    /// The replay's cumulative credit, sats.
    pub recomputed_sats: u64,
    /// The same in token base units (`sats · token_per_sat`).
    pub recomputed_amount: U256,
    /// The newest file's reward leaf for the miner, if it lists one.
    pub leaf: Option<FileReward>,
    /// What the contract holds, once [`CreditCheck::on_chain`] has read it.
    pub on_chain: Option<OnChain>,
    /// What disagrees, one sentence each.
    pub problems: Vec<String>,
}

/// Recomputes a PPS or FPPS epoch's credits to `checks`' miners from its
/// valued shares and compares them with what the file lists.
fn expected_credits(
    epoch: u64,
    summary: &EpochSummary,
    network: Option<bitcoin::Network>,
    checks: &mut BTreeMap<Address, CreditCheck>,
) {
    let scheme = summary.scheme;
    if scheme == proofpool_epoch::Scheme::Pplns {
        return;
    }
    // PPS pays the network's subsidy: the miner names the network, the
    // file may not pick it (on mainnet "regtest" would halve it to nothing).
    let network_problem = match (network, summary.network) {
        (Some(n), Some(f)) if n != f => Some(format!(
            "epoch {epoch} names the {} network, not {}",
            f.to_core_arg(),
            n.to_core_arg()
        )),
        (Some(_), None) => Some(format!("epoch {epoch} names no Bitcoin network")),
        (None, _) if scheme == proofpool_epoch::Scheme::Pps => Some(format!(
            "epoch {epoch} pays PPS, by the network's subsidy: give --network to check it"
        )),
        _ => None,
    };
    if let Some(problem) = network_problem {
        for check in checks.values_mut() {
            check.problems.push(problem.clone());
        }
        return;
    }
    let payout = summary.valued.as_ref().map(|shares| {
        proofpool_epoch::credit_epoch(shares.iter().copied(), summary.params.fee_bps)
    });
    for check in checks.values_mut() {
        let listed = summary
            .expected
            .iter()
            .filter(|c| c.miner == check.miner)
            .map(|c| c.sats)
            .sum::<u64>();
        let recomputed = match &payout {
            Some(Ok(p)) => p.credits.get(&MinerAddress(check.miner)).map_or(0, |s| s.0),
            Some(Err(e)) => {
                check.problems.push(format!(
                    "epoch {epoch}: its {} credits do not replay: {e}",
                    summary.scheme
                ));
                continue;
            }
            None => {
                check.problems.push(format!(
                    "epoch {epoch} pays {} but names no Bitcoin network to value its shares on",
                    summary.scheme
                ));
                continue;
            }
        };
        if recomputed == 0 && listed == 0 {
            continue;
        }
        if recomputed != listed {
            check.problems.push(format!(
                "epoch {epoch} credits your shares {listed} sats by {}; their expected value replays to {recomputed}",
                summary.scheme
            ));
        }
        check.recomputed_sats = check.recomputed_sats.saturating_add(recomputed);
        check.epochs.push(EpochCredit {
            epoch,
            recomputed,
            listed,
        });
    }
}

/// Replays PPLNS for every paid block in `index` and checks each of
/// `miners`' credits and newest reward leaf against it.
///
/// The files must run from epoch 1 without a gap: a window can reach back
/// into any earlier epoch.
pub fn credits(
    index: &EpochIndex,
    miners: impl IntoIterator<Item = Address>,
) -> Result<Vec<CreditCheck>, WatchError> {
    let Some(newest) = index.newest_epoch() else {
        return Ok(Vec::new());
    };
    if let Some(gap) = (1..=newest).find(|e| !index.epochs.contains_key(e)) {
        return Err(WatchError::Epoch(format!(
            "epoch {gap} is missing: PPLNS windows reach back into any earlier epoch, so the credits need every file from epoch 1 to {newest}"
        )));
    }
    let mut checks: BTreeMap<Address, CreditCheck> = miners
        .into_iter()
        .map(|miner| {
            (
                miner,
                CreditCheck {
                    miner,
                    epoch: newest,
                    blocks: Vec::new(),
                    epochs: Vec::new(),
                    recomputed_sats: 0,
                    recomputed_amount: U256::ZERO,
                    leaf: None,
                    on_chain: None,
                    problems: Vec::new(),
                },
            )
        })
        .collect();

    for (&epoch, summary) in &index.epochs {
        expected_credits(epoch, summary, index.network, &mut checks);
        for block in &summary.blocks {
            // Paid by the scheme of its solving share's epoch: a PPS or FPPS
            // share's block is the operator's and credits nobody. So the
            // solving share must be the block's: listed, hashing to it.
            let solving = index.window.get(&block.share_seq);
            let mut display = solving.map(|s| s.hash.0).unwrap_or_default();
            display.reverse();
            if solving.is_none() || display != block.hash.0 {
                for check in checks.values_mut() {
                    check.problems.push(format!(
                        "block {} (epoch {epoch}) names share {} as its solving share, which {}",
                        block.height,
                        block.share_seq,
                        if solving.is_none() {
                            "no epoch file lists"
                        } else {
                            "does not hash to the block"
                        }
                    ));
                }
            }
            let by_pplns = solving.is_none_or(|s| s.pplns);
            let window = index
                .window
                .range(..=block.share_seq)
                .rev()
                .filter(|(_, s)| s.pplns)
                .map(|(&seq, s)| WindowShare {
                    seq,
                    miner: MinerAddress(s.miner),
                    share_work: Work(s.share_work),
                    net_work: Work(s.net_work),
                });
            let replayed =
                by_pplns.then(|| credit_block(window, Sats(block.coinbase_value), &summary.params));
            for check in checks.values_mut() {
                let listed = block
                    .credits
                    .iter()
                    .filter(|c| c.miner == check.miner)
                    .map(|c| c.sats)
                    .sum::<u64>();
                let recomputed = match &replayed {
                    None => 0,
                    Some(Ok(payout)) => payout
                        .credits
                        .get(&MinerAddress(check.miner))
                        .map_or(0, |s| s.0),
                    Some(Err(e)) => {
                        check.problems.push(format!(
                            "block {} (epoch {epoch}): its PPLNS window does not replay: {e}",
                            block.height
                        ));
                        continue;
                    }
                };
                if recomputed == 0 && listed == 0 {
                    continue;
                }
                if recomputed != listed {
                    check.problems.push(format!(
                        "block {} (epoch {epoch}) credits {listed} sats; its window replays to {recomputed}",
                        block.height
                    ));
                }
                check.recomputed_sats = check.recomputed_sats.saturating_add(recomputed);
                check.blocks.push(BlockCredit {
                    epoch,
                    height: block.height,
                    recomputed,
                    listed,
                });
            }
        }
    }

    let summary = &index.epochs[&newest];
    let root_holds = RewardTree::new(
        summary.domain,
        summary
            .rewards
            .iter()
            .map(|r| RewardLeaf {
                account: r.account,
                cumulative: r.cumulative_amount,
            })
            .collect(),
    )
    .is_ok_and(|tree| tree.root() == summary.reward_root);
    for check in checks.values_mut() {
        check.recomputed_amount = U256::from(check.recomputed_sats) * summary.token_per_sat;
        check.leaf = summary
            .rewards
            .iter()
            .find(|r| r.account == check.miner)
            .copied();
        let (sats, amount) = check.leaf.map_or((0, U256::ZERO), |l| {
            (l.cumulative_sats, l.cumulative_amount)
        });
        if sats != check.recomputed_sats {
            check.problems.push(format!(
                "epoch {newest}'s reward leaf holds {sats} sats; the replay of every paid block gives {}",
                check.recomputed_sats
            ));
        }
        if amount != check.recomputed_amount {
            check.problems.push(format!(
                "epoch {newest}'s reward leaf pays {amount} base units; the replay gives {} ({} sats at {} per sat)",
                check.recomputed_amount, check.recomputed_sats, summary.token_per_sat
            ));
        }
        if !root_holds {
            check.problems.push(format!(
                "epoch {newest}'s reward leaves do not build its reward root {}: no proof of them verifies",
                summary.reward_root
            ));
        }
    }
    Ok(checks.into_values().collect())
}

/// A read-only client of the distributor the newest file names, through
/// the JSON-RPC endpoint `url`; `None` before any file is indexed.
pub fn distributor(
    index: &EpochIndex,
    url: reqwest::Url,
) -> Option<DistributorClient<DynProvider>> {
    use alloy::providers::{Provider, ProviderBuilder};
    let summary = index.epochs.values().next_back()?;
    let provider = ProviderBuilder::new().connect_http(url).erased();
    Some(DistributorClient::new(summary.domain.distributor, provider))
}

impl CreditCheck {
    /// Reads what the distributor holds for the miner: that the newest file
    /// is the one it committed, that the finalized root is the one of the
    /// file the index holds for that epoch, and what a claim pays now.
    pub async fn on_chain(
        &mut self,
        index: &EpochIndex,
        chain: &DistributorClient<DynProvider>,
    ) -> Result<(), WatchError> {
        let chain_err = |e: proofpool_chain::ChainError| WatchError::Chain(e.to_string());
        let (committed, finalized) = chain.heads().await.map_err(chain_err)?;
        if let Some(summary) = index.epochs.get(&self.epoch) {
            let domain = chain.domain().await.map_err(chain_err)?;
            if domain != summary.domain {
                self.problems.push(format!(
                    "the distributor's domain is {domain:?}; epoch {}'s file names {:?}",
                    self.epoch, summary.domain
                ));
            }
            if self.epoch <= committed {
                match chain
                    .committed_record(self.epoch)
                    .await
                    .map_err(chain_err)?
                {
                    Some((record, _)) if record.commit.dataHash == summary.data_hash => {}
                    Some((record, _)) => self.problems.push(format!(
                        "epoch {} committed data hash {}; its file hashes to {}",
                        self.epoch, record.commit.dataHash, summary.data_hash
                    )),
                    None => self.problems.push(format!(
                        "epoch {} is not committed on the distributor",
                        self.epoch
                    )),
                }
            }
        }
        let amount_at = |epoch: u64| {
            index.epochs.get(&epoch).and_then(|s| {
                s.rewards
                    .iter()
                    .find(|r| r.account == self.miner)
                    .map(|r| r.cumulative_amount)
            })
        };
        let finalized_amount = if finalized == 0 {
            U256::ZERO
        } else {
            let root = chain.finalized_reward_root().await.map_err(chain_err)?;
            match index.epochs.get(&finalized) {
                Some(s) if s.reward_root == root => {}
                Some(s) => self.problems.push(format!(
                    "the contract pays against reward root {root}; epoch {finalized}'s file has {}",
                    s.reward_root
                )),
                None => self.problems.push(format!(
                    "epoch {finalized} is finalized but its file is not published"
                )),
            }
            amount_at(finalized).unwrap_or(U256::ZERO)
        };
        let claimed = chain.claimed(self.miner).await.map_err(chain_err)?;
        if claimed > finalized_amount {
            self.problems.push(format!(
                "{claimed} base units were claimed; the finalized leaf holds only {finalized_amount}"
            ));
        }
        let newest_amount = self.leaf.map_or(U256::ZERO, |l| l.cumulative_amount);
        self.on_chain = Some(OnChain {
            committed_epoch: committed,
            finalized_epoch: finalized,
            claimed,
            claimable_now: finalized_amount.saturating_sub(claimed),
            pending: newest_amount.saturating_sub(finalized_amount.max(claimed)),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The auditor's fuzz seeds: three epochs on regtest targets, miner A at
    /// the network target (one difficulty, `2^128` score units), miner B at
    /// half of it (two), a window of 5 difficulties, a 1.5 % fee, and 10^10
    /// base units per sat.
    const SEEDS: [&[u8]; 3] = [
        include_bytes!("../../fuzz/seeds/epoch_file/epoch-00000001.json"),
        include_bytes!("../../fuzz/seeds/epoch_file/epoch-00000002.json"),
        include_bytes!("../../fuzz/seeds/epoch_file/epoch-00000003.json"),
    ];
    const A: Address = Address::repeat_byte(0xa1);
    const B: Address = Address::repeat_byte(0xb2);

    fn index(files: &[Vec<u8>]) -> EpochIndex {
        let mut index = EpochIndex::default();
        for f in files {
            index.add(f).unwrap();
        }
        index
    }

    fn seeds() -> Vec<Vec<u8>> {
        SEEDS.iter().map(|s| s.to_vec()).collect()
    }

    /// Rewrites file `n` (1-based) of `files` with `edit`.
    fn edited(
        mut files: Vec<Vec<u8>>,
        n: usize,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> Vec<Vec<u8>> {
        let mut v: serde_json::Value = serde_json::from_slice(&files[n - 1]).unwrap();
        edit(&mut v);
        files[n - 1] = serde_json::to_vec(&v).unwrap();
        files
    }

    #[test]
    fn the_replay_matches_the_seeds_worked_by_hand() {
        let checks = credits(&index(&seeds()), [A, B]).unwrap();
        assert!(checks.iter().all(|c| c.problems.is_empty()), "{checks:?}");
        let a = &checks[0];
        assert_eq!(a.miner, A);
        // Block 200 pays 50 BTC; the fee is floor(5e9 · 150 / 10^4) = 75e6,
        // so the pot is 4 925 000 000. Its window walks back from share 2
        // (B, two difficulties) to share 1 (A, one) and stops there, three
        // of five filled: A gets floor(P / 5). Blocks 201 and 202 fill the
        // window with two of A's shares (the oldest share counting in part
        // is B's): A gets floor(P · 2 / 5) of each.
        let pot = |value: u64| value - value * 150 / 10_000;
        let expected = [
            (200, pot(5_000_000_000) / 5),
            (201, pot(5_000_001_000) * 2 / 5),
            (202, pot(5_000_002_000) * 2 / 5),
        ];
        assert_eq!(
            a.blocks
                .iter()
                .map(|b| (b.height, b.recomputed))
                .collect::<Vec<_>>(),
            expected
        );
        assert_eq!(
            expected.map(|(_, s)| s),
            [985_000_000, 1_970_000_394, 1_970_000_788]
        );
        let sats: u64 = expected.iter().map(|(_, s)| s).sum();
        assert_eq!(a.recomputed_sats, sats);
        assert_eq!(
            a.recomputed_amount,
            U256::from(sats) * U256::from(10_000_000_000u64)
        );
        assert_eq!(a.leaf.unwrap().cumulative_amount, a.recomputed_amount);
        // B is credited in every block too, and a miner with no shares in
        // any window is owed nothing and listed nowhere.
        assert_eq!(checks[1].blocks.len(), 3);
        let nobody = credits(&index(&seeds()), [Address::repeat_byte(7)]).unwrap();
        assert!(nobody[0].problems.is_empty() && nobody[0].recomputed_sats == 0);
    }

    #[test]
    fn a_credit_moved_between_miners_is_found_per_block_and_in_the_leaf() {
        // The operator moves one sat of block 201 from A to B, in the
        // block's breakdown and in both reward leaves, and rebuilds nothing
        // else: the leaves no longer build the root either.
        let files = edited(seeds(), 2, |v| {
            let credits = &mut v["blocks"][1]["credits"];
            credits[0]["sats"] = (1_970_000_394u64 - 1).into();
            credits[1]["sats"] = (2_955_000_591u64 + 1).into();
            v["rewards"][0]["cumulative_sats"] = (2_955_000_394u64 - 1).into();
            v["rewards"][1]["cumulative_sats"] = (4_925_000_591u64 + 1).into();
        });
        let checks = credits(&index(&files[..2]), [A, B]).unwrap();
        for c in &checks {
            let text = c.problems.join("\n");
            assert!(text.contains("block 201 (epoch 2) credits"), "{text}");
            assert!(text.contains("epoch 2's reward leaf holds"), "{text}");
        }
        // Epoch 3's leaves were not touched: with it, only the block shows.
        let checks = credits(&index(&files), [A]).unwrap();
        assert_eq!(checks[0].problems.len(), 1, "{:?}", checks[0].problems);
    }

    #[test]
    fn a_leaf_that_is_not_in_the_root_is_found() {
        let files = edited(seeds(), 3, |v| {
            v["rewards"][0]["cumulative_amount"] = "0x1".into();
        });
        let text = credits(&index(&files), [A]).unwrap()[0].problems.join("\n");
        assert!(text.contains("pays 1 base units"), "{text}");
        assert!(text.contains("do not build its reward root"), "{text}");
    }

    #[test]
    fn a_gap_in_the_files_is_an_error_not_a_verdict() {
        let files = seeds();
        let err = credits(&index(&[files[0].clone(), files[2].clone()]), [A]).unwrap_err();
        assert!(err.to_string().contains("epoch 2 is missing"), "{err}");
    }
}
