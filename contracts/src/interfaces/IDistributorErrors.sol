// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Change} from "./IDistributorTypes.sol";

/// @title IDistributorErrors
/// @notice Custom errors of the proofpool rewards distributor.
interface IDistributorErrors {
    /// @notice An address argument was the zero address.
    error ZeroAddress();
    /// @notice The caller is not the settler.
    error NotSettler(address caller);
    /// @notice The caller is not the guardian.
    error NotGuardian(address caller);
    /// @notice A commit skipped or repeated an epoch number.
    error EpochNotNext(uint64 epoch, uint64 expected);
    /// @notice The commit does not chain onto the hash of the previous committed epoch.
    error PrevEpochHashMismatch(bytes32 given, bytes32 expected);
    /// @notice A commit tried to lower the cumulative total owed to miners.
    error TotalCumulativeDecreased(uint256 given, uint256 current);
    /// @notice A cumulative total does not fit the contract's 128-bit accounting.
    error TotalCumulativeTooLarge(uint256 given);
    /// @notice The epoch is not pending (never committed, already finalized, or vetoed).
    error EpochNotPending(uint64 epoch);
    /// @notice Epochs finalize in order; this one is not the next to finalize.
    error EpochNotNextToFinalize(uint64 epoch, uint64 expected);
    /// @notice The record passed does not hash to the stored epoch hash.
    error EpochRecordMismatch(uint64 epoch, bytes32 given, bytes32 stored);
    /// @notice The epoch's challenge period has not passed yet.
    error ChallengePeriodActive(uint64 epoch, uint64 finalizableAt);
    /// @notice The epoch's challenge period is over: it can no longer be vetoed.
    error ChallengePeriodOver(uint64 epoch, uint64 finalizableAt);
    /// @notice The requested challenge period exceeds the maximum.
    error ChallengePeriodTooLong(uint64 given, uint64 max);
    /// @notice No epoch has been finalized yet, so nothing can be claimed.
    error NoFinalizedEpoch();
    /// @notice The proof does not verify against the newest finalized reward root.
    error InvalidProof(address account, uint256 cumulativeAmount);
    /// @notice The account has already claimed this cumulative amount (or more).
    error NothingToClaim(address account, uint256 cumulativeAmount, uint256 alreadyClaimed);

    /// @notice The settler's funding transfer delivered less than the increase of the total.
    /// @param expected The increase of `totalCumulative`.
    /// @param received What the distributor's balance grew by.
    error FundingShort(uint256 expected, uint256 received);

    /// @notice The caller is owed no refund.
    /// @param account The caller.
    error NothingToWithdraw(address account);

    /// @notice Ownership cannot be renounced.
    error RenounceDisabled();

    /// @notice The challenge period is below the minimum (outside local development chains).
    /// @param given The period.
    /// @param min The minimum.
    error ChallengePeriodTooShort(uint64 given, uint64 min);

    /// @notice No change of this kind is queued.
    /// @param kind The change.
    error NoChangeQueued(Change kind);

    /// @notice Parameters a pool cannot run with.
    /// @param reason What is wrong with them.
    error InvalidParams(string reason);

    /// @notice `tokenPerSat` is not one token per bitcoin for the reward token.
    /// @param given The parameter.
    /// @param expected `10^(decimals - 8)`.
    error TokenPerSatMismatch(uint256 given, uint256 expected);

    /// @notice No parameter change is waiting to take effect.
    error NoParamsPending();

    /// @notice The change's delay has not passed.
    /// @param kind The change.
    /// @param eta When it may apply.
    error ChangeNotReady(Change kind, uint64 eta);
}
