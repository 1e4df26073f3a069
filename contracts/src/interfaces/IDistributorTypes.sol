// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice What the settler commits for one epoch (see DESIGN.md, "Contract").
/// @param epoch Consecutive epoch number, starting at 1.
/// @param shareRoot Merkle root of the epoch's share leaves.
/// @param rewardRoot Merkle root of the cumulative reward leaves.
/// @param totalCumulative Sum of every account's cumulative amount (token base units).
/// @param blocksHash Hash of the Bitcoin blocks paid in this epoch and their coinbase values.
/// @param paramsHash Hash of the pool's parameters (`PoolParams`: scheme, window, fee, ...).
/// @param dataHash Hash of the epoch file.
/// @param prevEpochHash The stored hash of the previous epoch (zero for epoch 1).
struct EpochCommit {
    uint64 epoch;
    bytes32 shareRoot;
    bytes32 rewardRoot;
    uint256 totalCumulative;
    bytes32 blocksHash;
    bytes32 paramsHash;
    bytes32 dataHash;
    bytes32 prevEpochHash;
}

/// @notice The full record whose hash the contract stores for each committed epoch.
/// @param commit The settler's commitment.
/// @param finalizableAt Commit time plus the challenge period in force at commit time.
/// @param prevTotalCumulative The committed total before this epoch (what a veto rolls back to).
struct EpochRecord {
    EpochCommit commit;
    uint64 finalizableAt;
    uint256 prevTotalCumulative;
}

/// @notice The pool's parameters, pinned on-chain (DESIGN.md, "Threat model", binding 5). An epoch must
/// be settled with the parameters in force at its start (`paramsAt(startUnix)`); the auditor and the
/// guardian check that, and the owner can change them only with a notice of at least the challenge period.
/// `paramsHash = keccak256(abi.encode(params))`.
/// @param scoringVersion The version of the PPLNS scoring rules.
/// @param windowX The PPLNS window, in network difficulties.
/// @param feeBps The pool fee, in basis points (at most 10,000).
/// @param tokenPerSat Token base units per satoshi: `10^(decimals - 8)`, one token per bitcoin.
/// @param payoutScript The Bitcoin `scriptPubKey` every job's coinbase pays.
/// @param epochSecs The length of an epoch, in seconds.
/// @param maturity Confirmations before a found block is paid.
/// @param poolTag The tag every job's coinbase scriptSig carries.
/// @param scheme How miners are paid: 0 PPLNS (found blocks split among the shares before them once they
/// mature), 1 PPS (each share's expected share of the block subsidy when its epoch closes), 2 FPPS (of the
/// subsidy and its job's fees). Under PPS and FPPS each commit funds the epoch's credits, block or no block.
struct PoolParams {
    uint64 scoringVersion;
    uint64 windowX;
    uint64 feeBps;
    uint256 tokenPerSat;
    bytes payoutScript;
    uint64 epochSecs;
    uint64 maturity;
    bytes poolTag;
    uint8 scheme;
}

/// @notice One version of the parameters and when it takes effect.
/// @param hash Its `paramsHash`.
/// @param effectiveAt The first timestamp at which it is in force (0 for the deployment's own).
struct ParamsEntry {
    bytes32 hash;
    uint64 effectiveAt;
}

/// @notice One entry of a batch claim.
struct Claim {
    address account;
    uint256 cumulativeAmount;
    bytes32[] proof;
}

/// @notice Where an epoch stands. Vetoed epochs are rolled back and read as `None`.
enum EpochStatus {
    None,
    Pending,
    Finalized
}

/// @notice A role or parameter change the owner queues; it applies only after the challenge period in
/// force when it was queued, so miners and the guardian see it coming.
enum Change {
    Settler,
    Guardian,
    ChallengePeriod
}
