//! Calls to a deployed distributor, with reverts decoded into custom errors.

use crate::Distributor::{self, DistributorErrors, DistributorInstance};
use crate::MockBTC;
use alloy::primitives::{Address, B256, TxHash, U256};
use alloy::providers::{PendingTransactionError, Provider};
use alloy::rpc::types::TransactionReceipt;
use alloy::transports::TransportError;
use proofpool_merkle::RewardDomain;

/// What can go wrong talking to the chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The contract reverted with one of its custom errors.
    #[error("distributor reverted: {0:?}")]
    Reverted(DistributorErrors),
    /// Any other contract-call failure (including reverts without a known error).
    #[error("contract call failed: {0}")]
    Contract(alloy::contract::Error),
    /// The RPC endpoint failed.
    #[error("rpc error: {0}")]
    Rpc(#[from] TransportError),
    /// Waiting for a receipt failed.
    #[error("waiting for the transaction failed: {0}")]
    Pending(#[from] PendingTransactionError),
    /// The transaction was mined but reverted.
    #[error("transaction {0} reverted on-chain")]
    TxReverted(TxHash),
    /// No receipt appeared in time.
    #[error("no receipt for transaction {0} after {1:?}")]
    ReceiptTimeout(TxHash, std::time::Duration),
    /// The receipt lacked an event the contract always emits.
    #[error("transaction {0} has no {1} event")]
    MissingEvent(TxHash, &'static str),
    /// The node returned no latest block.
    #[error("the chain returned no latest block")]
    NoBlock,
}

impl ChainError {
    /// Classifies a contract error, decoding the distributor's custom errors.
    pub fn from_contract(err: alloy::contract::Error) -> Self {
        match err.as_decoded_interface_error::<DistributorErrors>() {
            Some(decoded) => Self::Reverted(decoded),
            None => Self::Contract(err),
        }
    }

    /// The decoded custom error, if the contract reverted with one.
    pub fn revert(&self) -> Option<&DistributorErrors> {
        match self {
            Self::Reverted(e) => Some(e),
            _ => None,
        }
    }
}

/// How long [`DistributorClient::wait`] polls for a receipt.
pub const RECEIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

pub use proofpool_epoch::{EpochCommit, EpochRecord, record_hash};

/// The contract binding's `EpochCommit` for the epoch crate's (the same ABI
/// struct, generated twice: once pure, once with the contract's calls).
fn to_contract(c: &EpochCommit) -> Distributor::EpochCommit {
    Distributor::EpochCommit {
        epoch: c.epoch,
        shareRoot: c.shareRoot,
        rewardRoot: c.rewardRoot,
        totalCumulative: c.totalCumulative,
        blocksHash: c.blocksHash,
        paramsHash: c.paramsHash,
        dataHash: c.dataHash,
        prevEpochHash: c.prevEpochHash,
    }
}

/// The epoch crate's `EpochCommit` for the contract binding's.
fn from_contract(c: &Distributor::EpochCommit) -> EpochCommit {
    EpochCommit {
        epoch: c.epoch,
        shareRoot: c.shareRoot,
        rewardRoot: c.rewardRoot,
        totalCumulative: c.totalCumulative,
        blocksHash: c.blocksHash,
        paramsHash: c.paramsHash,
        dataHash: c.dataHash,
        prevEpochHash: c.prevEpochHash,
    }
}

/// The contract binding's `EpochRecord` for the epoch crate's.
fn record_to_contract(r: &EpochRecord) -> Distributor::EpochRecord {
    Distributor::EpochRecord {
        commit: to_contract(&r.commit),
        finalizableAt: r.finalizableAt,
        prevTotalCumulative: r.prevTotalCumulative,
    }
}

/// The contract binding's `PoolParams` for the epoch crate's.
pub(crate) fn params_to_contract(p: &proofpool_epoch::PoolParams) -> Distributor::PoolParams {
    let s = p.to_sol();
    Distributor::PoolParams {
        scoringVersion: s.scoringVersion,
        windowX: s.windowX,
        feeBps: s.feeBps,
        tokenPerSat: s.tokenPerSat,
        payoutScript: s.payoutScript,
        epochSecs: s.epochSecs,
        maturity: s.maturity,
        poolTag: s.poolTag,
        scheme: s.scheme,
    }
}

/// One version of the distributor's parameter schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamsVersion {
    /// Its `paramsHash`.
    pub hash: B256,
    /// The first timestamp it is in force at (0 for the deployment's own).
    pub effective_at: u64,
}

/// Where an epoch stands on-chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochStatusView {
    /// Never committed, or vetoed.
    None,
    /// Committed, inside or past its challenge period, not finalized.
    Pending,
    /// Finalized.
    Finalized,
}

/// A handle on one deployed distributor.
#[derive(Debug, Clone)]
pub struct DistributorClient<P> {
    contract: DistributorInstance<P>,
}

impl<P: Provider + Clone> DistributorClient<P> {
    /// Talks to the distributor at `address` through `provider` (whose wallet signs).
    pub fn new(address: Address, provider: P) -> Self {
        Self {
            contract: Distributor::new(address, provider),
        }
    }

    /// The provider the client sends through.
    pub fn provider(&self) -> &P {
        self.contract.provider()
    }

    /// The distributor's address.
    pub fn address(&self) -> Address {
        *self.contract.address()
    }

    /// The domain reward leaves must be bound to.
    pub async fn domain(&self) -> Result<RewardDomain, ChainError> {
        let chain_id = self.contract.provider().get_chain_id().await?;
        Ok(RewardDomain {
            chain_id,
            distributor: self.address(),
        })
    }

    /// The guardian (who may veto pending epochs).
    pub async fn guardian(&self) -> Result<Address, ChainError> {
        self.contract
            .guardian()
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// The reward token.
    pub async fn token(&self) -> Result<Address, ChainError> {
        self.contract
            .token()
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// Approves the distributor to pull `amount` of the token from the signer (the settler).
    pub async fn approve_funding(&self, amount: U256) -> Result<TxHash, ChainError> {
        let token = MockBTC::new(self.token().await?, self.contract.provider().clone());
        let receipt = token
            .approve(self.address(), amount)
            .send()
            .await
            .map_err(ChainError::from_contract)?;
        let receipt = self.wait(*receipt.tx_hash()).await?;
        ensure_success(&receipt)
    }

    /// Commits an epoch and returns the full record the contract hashed.
    pub async fn commit_epoch(
        &self,
        commit: EpochCommit,
    ) -> Result<(EpochRecord, TransactionReceipt), ChainError> {
        let receipt = self
            .contract
            .commitEpoch(to_contract(&commit))
            .send()
            .await
            .map_err(ChainError::from_contract)?;
        let receipt = self.wait(*receipt.tx_hash()).await?;
        ensure_success(&receipt)?;
        let event = receipt.decoded_log::<Distributor::EpochCommitted>().ok_or(
            ChainError::MissingEvent(receipt.transaction_hash, "EpochCommitted"),
        )?;
        let record = EpochRecord {
            commit: from_contract(&event.data.commit),
            finalizableAt: event.data.finalizableAt,
            prevTotalCumulative: event.data.prevTotalCumulative,
        };
        Ok((record, receipt))
    }

    /// Sends `commitEpoch` without waiting for the receipt (see [`Self::wait`]).
    pub async fn send_commit_epoch(&self, commit: EpochCommit) -> Result<TxHash, ChainError> {
        let pending = self
            .contract
            .commitEpoch(to_contract(&commit))
            .send()
            .await
            .map_err(ChainError::from_contract)?;
        Ok(*pending.tx_hash())
    }

    /// Finalizes a pending epoch whose challenge period has passed.
    pub async fn finalize(&self, record: EpochRecord) -> Result<TransactionReceipt, ChainError> {
        let pending = self
            .contract
            .finalize(record_to_contract(&record))
            .send()
            .await
            .map_err(ChainError::from_contract)?;
        let receipt = self.wait(*pending.tx_hash()).await?;
        ensure_success(&receipt)?;
        Ok(receipt)
    }

    /// Vetoes a pending epoch (guardian only).
    pub async fn veto(&self, record: EpochRecord) -> Result<TransactionReceipt, ChainError> {
        let pending = self
            .contract
            .veto(record_to_contract(&record))
            .send()
            .await
            .map_err(ChainError::from_contract)?;
        let receipt = self.wait(*pending.tx_hash()).await?;
        ensure_success(&receipt)?;
        Ok(receipt)
    }

    /// Withdraws the funding vetoes refunded to the sender (the settler).
    pub async fn withdraw_refund(&self) -> Result<TransactionReceipt, ChainError> {
        let pending = self
            .contract
            .withdrawRefund()
            .send()
            .await
            .map_err(ChainError::from_contract)?;
        let receipt = self.wait(*pending.tx_hash()).await?;
        ensure_success(&receipt)?;
        Ok(receipt)
    }

    /// What vetoes refunded to `account` and it has not withdrawn.
    pub async fn refund_owed(&self, account: Address) -> Result<U256, ChainError> {
        self.contract
            .refundOwed(account)
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// Claims `account`'s rewards with a proof against the newest finalized root.
    pub async fn claim(
        &self,
        account: Address,
        cumulative: U256,
        proof: Vec<B256>,
    ) -> Result<TransactionReceipt, ChainError> {
        let receipt = self
            .contract
            .claim(account, cumulative, proof)
            .send()
            .await
            .map_err(ChainError::from_contract)?;
        let receipt = self.wait(*receipt.tx_hash()).await?;
        ensure_success(&receipt)?;
        Ok(receipt)
    }

    /// Polls for a transaction's receipt, every 100 ms, for at most
    /// [`RECEIPT_TIMEOUT`]. Polling the receipt directly works the same on
    /// anvil (including after `evm_increaseTime`) and on L2 RPCs.
    pub async fn wait(&self, tx: TxHash) -> Result<TransactionReceipt, ChainError> {
        let provider = self.contract.provider();
        let deadline = tokio::time::Instant::now() + RECEIPT_TIMEOUT;
        loop {
            if let Some(receipt) = provider.get_transaction_receipt(tx).await? {
                return Ok(receipt);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ChainError::ReceiptTimeout(tx, RECEIPT_TIMEOUT));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// What `account` has been paid so far.
    pub async fn claimed(&self, account: Address) -> Result<U256, ChainError> {
        self.contract
            .claimed(account)
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// The stored hash of an epoch's record (zero if not committed).
    pub async fn epoch_hash(&self, epoch: u64) -> Result<B256, ChainError> {
        self.contract
            .epochHash(U256::from(epoch))
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// The newest committed and newest finalized epoch numbers.
    pub async fn heads(&self) -> Result<(u64, u64), ChainError> {
        let committed = self
            .contract
            .lastCommittedEpoch()
            .call()
            .await
            .map_err(ChainError::from_contract)?;
        let finalized = self
            .contract
            .lastFinalizedEpoch()
            .call()
            .await
            .map_err(ChainError::from_contract)?;
        Ok((committed, finalized))
    }

    /// The record of `epoch` as its newest `EpochCommitted` event carries it,
    /// with the transaction that committed it; `None` if no such event
    /// matches the stored hash (never committed, or vetoed).
    pub async fn committed_record(
        &self,
        epoch: u64,
    ) -> Result<Option<(EpochRecord, TxHash)>, ChainError> {
        let stored = self.epoch_hash(epoch).await?;
        if stored.is_zero() {
            return Ok(None);
        }
        let logs = self
            .contract
            .EpochCommitted_filter()
            .topic1(U256::from(epoch))
            .topic2(stored)
            .from_block(0)
            .query()
            .await
            .map_err(ChainError::from_contract)?;
        Ok(logs.into_iter().last().and_then(|(event, log)| {
            let record = EpochRecord {
                commit: from_contract(&event.commit),
                finalizableAt: event.finalizableAt,
                prevTotalCumulative: event.prevTotalCumulative,
            };
            (record_hash(&record) == stored)
                .then_some(log.transaction_hash)
                .flatten()
                .map(|tx| (record, tx))
        }))
    }

    /// The committed `totalCumulative` (what the contract has been funded with, net of vetoes).
    pub async fn committed_total(&self) -> Result<U256, ChainError> {
        self.contract
            .committedTotal()
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// `account`'s balance of the reward token.
    pub async fn token_balance(&self, account: Address) -> Result<U256, ChainError> {
        let token = MockBTC::new(self.token().await?, self.contract.provider().clone());
        token
            .balanceOf(account)
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// The escrow that holds pending epochs' funding (and refunds owed).
    pub async fn escrow(&self) -> Result<Address, ChainError> {
        self.contract
            .escrow()
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// What a commit raising the total by `increase` pulls from the settler:
    /// the increase, plus the escrow's lasting base unit on its very first
    /// funding (the distributor's `commitEpoch`).
    pub async fn funding_for(&self, increase: U256) -> Result<U256, ChainError> {
        if increase.is_zero() {
            return Ok(U256::ZERO);
        }
        let held = self.token_balance(self.escrow().await?).await?;
        Ok(if held.is_zero() {
            increase + U256::from(1u64)
        } else {
            increase
        })
    }

    /// `paramsAt(time)`: the parameters in force at a unix time.
    pub async fn params_at(&self, time: u64) -> Result<B256, ChainError> {
        self.contract
            .paramsAt(time)
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// The whole parameter schedule, oldest first.
    pub async fn params_schedule(&self) -> Result<Vec<ParamsVersion>, ChainError> {
        let count = self
            .contract
            .paramsCount()
            .call()
            .await
            .map_err(ChainError::from_contract)?;
        let count = u64::try_from(count).unwrap_or(u64::MAX);
        let mut out = Vec::new();
        for i in 0..count {
            let e = self
                .contract
                .paramsEntry(U256::from(i))
                .call()
                .await
                .map_err(ChainError::from_contract)?;
            out.push(ParamsVersion {
                hash: e.hash,
                effective_at: e.effectiveAt,
            });
        }
        Ok(out)
    }

    /// The full parameters of a version of the schedule, read from its
    /// `ParamsQueued` event (the contract stores only their hash); `None`
    /// if no event with that hash hashes to it.
    pub async fn announced_params(
        &self,
        hash: B256,
    ) -> Result<Option<proofpool_epoch::PoolParams>, ChainError> {
        let logs = self
            .contract
            .ParamsQueued_filter()
            .topic2(hash)
            .from_block(0)
            .query()
            .await
            .map_err(ChainError::from_contract)?;
        Ok(logs.into_iter().rev().find_map(|(event, _)| {
            let p = &event.params;
            let scheme = proofpool_epoch::Scheme::from_code(p.scheme)?;
            let params = proofpool_epoch::PoolParams {
                pplns: proofpool_epoch::PplnsParams {
                    window_x: p.windowX,
                    fee_bps: p.feeBps,
                },
                token_per_sat: p.tokenPerSat,
                payout_script: p.payoutScript.clone(),
                epoch_secs: p.epochSecs,
                maturity: p.maturity,
                pool_tag: p.poolTag.clone(),
                scheme,
            };
            // Another scoring version, or an event that does not hash to
            // what it claims, is not these parameters.
            (p.scoringVersion == proofpool_epoch::SCORING_VERSION && params.hash() == hash)
                .then_some(params)
        }))
    }

    /// The distributor's own `hashParams` of `params`.
    pub async fn hash_params(
        &self,
        params: &proofpool_epoch::PoolParams,
    ) -> Result<B256, ChainError> {
        self.contract
            .hashParams(params_to_contract(params))
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// Announces new parameters (owner only); returns the version's
    /// schedule index and when it takes effect.
    pub async fn queue_params(
        &self,
        params: &proofpool_epoch::PoolParams,
    ) -> Result<ParamsVersion, ChainError> {
        let pending = self
            .contract
            .queueParams(params_to_contract(params))
            .send()
            .await
            .map_err(ChainError::from_contract)?;
        let receipt = self.wait(*pending.tx_hash()).await?;
        ensure_success(&receipt)?;
        receipt
            .decoded_log::<Distributor::ParamsQueued>()
            .map(|log| ParamsVersion {
                hash: log.data.paramsHash,
                effective_at: log.data.effectiveAt,
            })
            .ok_or(ChainError::MissingEvent(
                receipt.transaction_hash,
                "ParamsQueued",
            ))
    }

    /// Withdraws the announced parameters not yet in force (owner only).
    pub async fn cancel_params(&self) -> Result<TransactionReceipt, ChainError> {
        let pending = self
            .contract
            .cancelParams()
            .send()
            .await
            .map_err(ChainError::from_contract)?;
        let receipt = self.wait(*pending.tx_hash()).await?;
        ensure_success(&receipt)?;
        Ok(receipt)
    }

    /// The reward token's `decimals()`.
    pub async fn token_decimals(&self) -> Result<u8, ChainError> {
        let token = MockBTC::new(self.token().await?, self.contract.provider().clone());
        token
            .decimals()
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// The chain's latest block number.
    pub async fn block_number(&self) -> Result<u64, ChainError> {
        Ok(self.contract.provider().get_block_number().await?)
    }

    /// The timestamp of the chain's latest block.
    pub async fn chain_time(&self) -> Result<u64, ChainError> {
        let block = self
            .contract
            .provider()
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await?
            .ok_or(ChainError::NoBlock)?;
        Ok(block.header.timestamp)
    }

    /// The reward root claims currently verify against.
    pub async fn finalized_reward_root(&self) -> Result<B256, ChainError> {
        self.contract
            .finalizedRewardRoot()
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// Where an epoch stands.
    pub async fn epoch_status(&self, epoch: u64) -> Result<EpochStatusView, ChainError> {
        let status = self
            .contract
            .epochStatus(epoch)
            .call()
            .await
            .map_err(ChainError::from_contract)?;
        Ok(match status {
            1 => EpochStatusView::Pending,
            2 => EpochStatusView::Finalized,
            _ => EpochStatusView::None,
        })
    }
}

fn ensure_success(receipt: &TransactionReceipt) -> Result<TxHash, ChainError> {
    if receipt.status() {
        Ok(receipt.transaction_hash)
    } else {
        Err(ChainError::TxReverted(receipt.transaction_hash))
    }
}
