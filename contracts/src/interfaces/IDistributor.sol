// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {FundingEscrow} from "../FundingEscrow.sol";
import {IDistributorErrors} from "./IDistributorErrors.sol";
import {IDistributorEvents} from "./IDistributorEvents.sol";
import {
    Change,
    Claim,
    EpochCommit,
    EpochRecord,
    EpochStatus,
    ParamsEntry,
    PoolParams
} from "./IDistributorTypes.sol";

/// @title IDistributor
/// @notice Epoch commitments and cumulative Merkle claims for the proofpool mining pool.
/// @dev Reward leaves are `keccak256(bytes.concat(keccak256(abi.encode(block.chainid, address(this),
/// account, cumulativeAmount))))`; inner nodes hash the sorted pair (OpenZeppelin `MerkleProof`).
interface IDistributor is IDistributorErrors, IDistributorEvents {
    /// @notice Commits the next epoch and pulls the increase of `totalCumulative` from the settler.
    /// @dev Settler only. `c.epoch` must be the last committed epoch plus one and `c.prevEpochHash` its
    /// stored hash; `c.totalCumulative` never decreases.
    /// @param c The epoch commitment.
    /// @return epochHash The stored hash of the epoch record.
    function commitEpoch(EpochCommit calldata c) external returns (bytes32 epochHash);

    /// @notice Finalizes the next pending epoch once its challenge period has passed. Anyone may call.
    /// @param r The epoch record, as emitted by `EpochCommitted`.
    function finalize(EpochRecord calldata r) external;

    /// @notice Vetoes a pending epoch during its challenge period, rolling it back with every later
    /// pending epoch and owing their funding to the settler (see `withdrawRefund`). Guardian only. It
    /// moves no tokens, so no token behaviour can stop it.
    /// @param r The record of the vetoed epoch, as emitted by `EpochCommitted`.
    function veto(EpochRecord calldata r) external;

    /// @notice Pays the caller the funding that vetoes refunded to it.
    /// @return amount The amount paid.
    function withdrawRefund() external returns (uint256 amount);

    /// @notice Pays `account` its `cumulativeAmount` minus what it has already claimed. Anyone may call;
    /// the tokens always go to `account`.
    /// @param account The miner's account.
    /// @param cumulativeAmount The account's cumulative amount in the newest finalized reward tree, or in
    /// the previous one (a claim built before someone finalized a newer epoch still pays).
    /// @param proof The Merkle proof of the account's leaf.
    /// @return amount The amount paid.
    function claim(address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        external
        returns (uint256 amount);

    /// @notice Claims for several accounts. Entries with nothing left to claim are skipped; an invalid
    /// proof reverts the whole batch.
    /// @param claims The claims.
    /// @return total The total amount paid.
    function claimMany(Claim[] calldata claims) external returns (uint256 total);

    /// @notice Queues a new settler, applied by `applyChange` once the current challenge period has
    /// passed. Owner only.
    /// @param newSettler The new settler.
    function queueSettler(address newSettler) external;

    /// @notice Queues a new guardian (see `queueSettler`). Owner only.
    /// @param newGuardian The new guardian.
    function queueGuardian(address newGuardian) external;

    /// @notice Queues a new challenge period for later commits (see `queueSettler`). Owner only.
    /// @param newChallengePeriod The new period, in seconds.
    function queueChallengePeriod(uint64 newChallengePeriod) external;

    /// @notice Drops a queued change. Owner only.
    /// @param kind The change.
    function cancelChange(Change kind) external;

    /// @notice Applies a queued change whose delay has passed. Anyone may call.
    /// @param kind The change.
    function applyChange(Change kind) external;

    /// @notice Announces new pool parameters, in force for epochs that start at or after now plus the
    /// challenge period. Replaces an announced version that is not in force yet. Owner only.
    /// @param params The parameters (`tokenPerSat` must be one token per bitcoin for the reward token).
    /// @return index Its position in the schedule.
    function queueParams(PoolParams calldata params) external returns (uint256 index);

    /// @notice Withdraws the announced parameters that are not in force yet. Owner only.
    function cancelParams() external;

    /// @notice The parameters in force at `time`: the newest schedule entry effective at or before it.
    /// Epoch `E` must be settled with `paramsAt(startUnix(E))`.
    /// @param time A unix timestamp.
    /// @return The `paramsHash`.
    function paramsAt(uint64 time) external view returns (bytes32);

    /// @notice How many versions the parameter schedule holds (at least one).
    /// @return The count.
    function paramsCount() external view returns (uint256);

    /// @notice One version of the parameter schedule.
    /// @param index Its position (0 is the deployment's own).
    /// @return The entry.
    function paramsEntry(uint256 index) external view returns (ParamsEntry memory);

    /// @notice `keccak256(abi.encode(params))`, the `paramsHash` an epoch commits to.
    /// @param params The parameters.
    /// @return The hash.
    function hashParams(PoolParams calldata params) external pure returns (bytes32);

    /// @notice A queued change.
    /// @param kind The change.
    /// @return value The new address (as an integer) or period; zero if none.
    /// @return eta When it may apply; zero if none is queued.
    function pendingChange(Change kind) external view returns (uint256 value, uint64 eta);

    /// @notice The reward root finalized before the newest one (zero until two epochs are finalized).
    /// @return The root.
    function previousRewardRoot() external view returns (bytes32);

    /// @notice What vetoes refunded to `account` (a settler) and it has not withdrawn yet.
    /// @param account The account.
    /// @return The amount.
    function refundOwed(address account) external view returns (uint256);

    /// @notice The reward token.
    /// @return The token.
    function token() external view returns (IERC20);

    /// @notice Where the funding of pending epochs (and the refunds vetoes owe) waits, apart from the
    /// claimable balance: claims pay only what finalized epochs brought in.
    /// @return The escrow.
    function escrow() external view returns (FundingEscrow);

    /// @notice The account allowed to commit epochs; it also funds them.
    /// @return The settler.
    function settler() external view returns (address);

    /// @notice The account allowed to veto pending epochs.
    /// @return The guardian.
    function guardian() external view returns (address);

    /// @notice The challenge period, in seconds, applied to new commits.
    /// @return The period.
    function challengePeriod() external view returns (uint64);

    /// @notice The newest committed epoch (pending or finalized); zero if none.
    /// @return The epoch number.
    function lastCommittedEpoch() external view returns (uint64);

    /// @notice The newest finalized epoch; zero if none.
    /// @return The epoch number.
    function lastFinalizedEpoch() external view returns (uint64);

    /// @notice The total cumulative amount of the newest committed epoch.
    /// @return The total, in token base units.
    function committedTotal() external view returns (uint256);

    /// @notice The total cumulative amount of the newest finalized epoch.
    /// @return The total, in token base units.
    function finalizedTotal() external view returns (uint256);

    /// @notice The reward root that claims verify against.
    /// @return The root; zero before the first finalization.
    function finalizedRewardRoot() external view returns (bytes32);

    /// @notice The stored hash of a committed epoch's record; zero if not committed.
    /// @param epoch The epoch number.
    /// @return The hash.
    function epochHash(uint256 epoch) external view returns (bytes32);

    /// @notice The cumulative amount already paid to `account`.
    /// @param account The account.
    /// @return The amount.
    function claimed(address account) external view returns (uint256);

    /// @notice Where an epoch stands.
    /// @param epoch The epoch number.
    /// @return The status.
    function epochStatus(uint64 epoch) external view returns (EpochStatus);

    /// @notice The hash the contract stores for `r`.
    /// @param r The record.
    /// @return The hash.
    function hashEpochRecord(EpochRecord calldata r) external pure returns (bytes32);

    /// @notice The reward leaf of `account` for this deployment and chain.
    /// @param account The account.
    /// @param cumulativeAmount Its cumulative amount.
    /// @return The double-hashed leaf.
    function rewardLeaf(address account, uint256 cumulativeAmount) external view returns (bytes32);
}
