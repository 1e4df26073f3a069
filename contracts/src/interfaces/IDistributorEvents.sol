// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Change, EpochCommit, PoolParams} from "./IDistributorTypes.sol";

/// @title IDistributorEvents
/// @notice Events of the proofpool rewards distributor: one for every state change.
interface IDistributorEvents {
    /// @notice An epoch was committed. Carries every field of the record, so anyone can rebuild
    /// the stored hash (and call `finalize` or `veto`) from logs alone.
    /// @param epoch The epoch number.
    /// @param epochHash The stored hash, `keccak256(abi.encode(EpochRecord))`.
    /// @param commit The settler's commitment.
    /// @param finalizableAt The timestamp from which the epoch can be finalized.
    /// @param prevTotalCumulative The committed total before this epoch.
    event EpochCommitted(
        uint64 indexed epoch,
        bytes32 indexed epochHash,
        EpochCommit commit,
        uint64 finalizableAt,
        uint256 prevTotalCumulative
    );
    /// @notice An epoch was finalized; its reward root is now the one claims verify against.
    event EpochFinalized(uint64 indexed epoch, bytes32 rewardRoot, uint256 totalCumulative);
    /// @notice The guardian vetoed `epoch`; it and every later pending epoch were rolled back.
    /// @param epoch The vetoed epoch.
    /// @param lastRolledBack The newest epoch rolled back with it.
    /// @param refund Tokens returned to the settler.
    event EpochVetoed(uint64 indexed epoch, uint64 lastRolledBack, uint256 refund);
    /// @notice `account` was paid `amount`, bringing its claimed total to `cumulativeAmount`.
    event Claimed(address indexed account, uint256 amount, uint256 cumulativeAmount);
    /// @notice The settler changed.
    event SettlerSet(address indexed settler);
    /// @notice The guardian changed.
    event GuardianSet(address indexed guardian);
    /// @notice The challenge period for future commits changed.
    event ChallengePeriodSet(uint64 challengePeriod);

    /// @notice A settler withdrew the funding refunded to it by vetoes.
    /// @param account The settler.
    /// @param amount The amount withdrawn.
    event RefundWithdrawn(address indexed account, uint256 amount);

    /// @notice The owner queued a change.
    /// @param kind The change.
    /// @param value The new address (as an integer) or period.
    /// @param eta When it may apply.
    event ChangeQueued(Change indexed kind, uint256 value, uint64 eta);

    /// @notice A version of the pool's parameters was announced (or set at deployment, with
    /// `effectiveAt` 0): epochs starting at or after `effectiveAt` are settled with it.
    /// @param index Its position in the schedule.
    /// @param paramsHash `keccak256(abi.encode(params))`.
    /// @param effectiveAt When it takes effect.
    /// @param params The parameters, in full, for miners to read.
    event ParamsQueued(
        uint256 indexed index, bytes32 indexed paramsHash, uint64 effectiveAt, PoolParams params
    );

    /// @notice The owner withdrew an announced version before it took effect.
    /// @param index Its position in the schedule (now free again).
    /// @param paramsHash Its hash.
    event ParamsCancelled(uint256 indexed index, bytes32 indexed paramsHash);

    /// @notice The owner dropped a queued change.
    /// @param kind The change.
    event ChangeCancelled(Change indexed kind);
}
