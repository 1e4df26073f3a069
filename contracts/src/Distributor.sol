// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {FundingEscrow} from "./FundingEscrow.sol";
import {IDistributor} from "./interfaces/IDistributor.sol";
import {
    Change,
    Claim,
    EpochCommit,
    EpochRecord,
    EpochStatus,
    ParamsEntry,
    PoolParams
} from "./interfaces/IDistributorTypes.sol";
import {RewardProof} from "./libraries/RewardProof.sol";

/// @title Distributor
/// @notice Holds the pool's reward token, records each epoch's commitment behind a challenge period,
/// and pays miners against the newest (or the previous) finalized cumulative reward root.
/// @dev Storage is laid out for gas: a commit writes one fresh slot (the record hash) and one packed
/// slot; everything else is in the `EpochCommitted` event. A claim reads the root and the account's
/// claimed amount, and writes the latter.
contract Distributor is IDistributor, Ownable2Step {
    using SafeERC20 for IERC20;

    /// @notice The longest challenge period the owner can set.
    uint64 public constant MAX_CHALLENGE_PERIOD = 30 days;
    /// @notice The shortest challenge period, except on local development chains (chain ids 31337 and
    /// 1337), where tests and the devnet run in seconds.
    uint64 public constant MIN_CHALLENGE_PERIOD = 1 hours;

    /// @inheritdoc IDistributor
    IERC20 public immutable token;
    /// @inheritdoc IDistributor
    FundingEscrow public immutable escrow;

    /// @dev Read together on every commit.
    struct Roles {
        address settler;
        uint64 challengePeriod;
    }

    /// @dev Read and written together on every commit, veto and finalize.
    struct Head {
        uint64 lastCommitted;
        uint64 lastFinalized;
        uint128 committedTotal;
    }

    /// @dev A queued change: its value (an address or a period) and when it may apply (0: none queued).
    struct Pending {
        uint192 value;
        uint64 eta;
    }

    Roles private _roles;
    Head private _head;
    mapping(Change kind => Pending) private _pending;
    /// @dev The parameter schedule, by `effectiveAt` (strictly increasing after entry 0).
    ParamsEntry[] private _params;

    /// @inheritdoc IDistributor
    address public guardian;
    /// @inheritdoc IDistributor
    bytes32 public finalizedRewardRoot;
    /// @inheritdoc IDistributor
    bytes32 public previousRewardRoot;
    /// @inheritdoc IDistributor
    uint256 public finalizedTotal;
    /// @inheritdoc IDistributor
    mapping(uint256 epoch => bytes32) public epochHash;
    /// @inheritdoc IDistributor
    mapping(address account => uint256) public claimed;
    /// @inheritdoc IDistributor
    mapping(address account => uint256) public refundOwed;

    /// @param token_ The reward token.
    /// @param owner_ The owner (sets roles and the challenge period).
    /// @param settler_ The settler (commits and funds epochs).
    /// @param guardian_ The guardian (vetoes pending epochs).
    /// @param challengePeriod_ The challenge period in seconds.
    /// @param params_ The pool's parameters, in force from the start.
    constructor(
        IERC20 token_,
        address owner_,
        address settler_,
        address guardian_,
        uint64 challengePeriod_,
        PoolParams memory params_
    ) Ownable(owner_) {
        if (address(token_) == address(0)) revert ZeroAddress();
        token = token_;
        escrow = new FundingEscrow(token_);
        _setSettler(settler_);
        _setGuardian(guardian_);
        _setChallengePeriod(challengePeriod_);
        _checkParams(params_);
        bytes32 hash = keccak256(abi.encode(params_));
        _params.push(ParamsEntry({hash: hash, effectiveAt: 0}));
        emit ParamsQueued(0, hash, 0, params_);
    }

    // ---------------------------------------------------------------- epochs

    /// @inheritdoc IDistributor
    function commitEpoch(EpochCommit calldata c) external returns (bytes32 hash) {
        Roles memory roles = _roles;
        if (msg.sender != roles.settler) revert NotSettler(msg.sender);
        Head memory head = _head;
        // Reading `c.epoch` validates that its word is a clean uint64 (see `_hashAndLogRecord`).
        uint64 epoch = c.epoch;
        uint64 expected = head.lastCommitted + 1;
        if (epoch != expected) revert EpochNotNext(epoch, expected);
        bytes32 prev = epochHash[head.lastCommitted];
        if (c.prevEpochHash != prev) revert PrevEpochHashMismatch(c.prevEpochHash, prev);
        uint256 total = c.totalCumulative;
        uint256 prevTotal = head.committedTotal;
        if (total < prevTotal) revert TotalCumulativeDecreased(total, prevTotal);
        if (total > type(uint128).max) revert TotalCumulativeTooLarge(total);

        hash = _hashAndLogRecord(c, epoch, uint64(block.timestamp) + roles.challengePeriod, prevTotal);
        epochHash[epoch] = hash;
        // Safe: `total` was checked against `type(uint128).max` above.
        // forge-lint: disable-next-line(unsafe-typecast)
        uint128 newTotal = uint128(total);
        _head = Head({lastCommitted: epoch, lastFinalized: head.lastFinalized, committedTotal: newTotal});

        uint256 increase = total - prevTotal;
        if (increase != 0) {
            // Held in the escrow until the epoch is finalized: claims cannot reach it before. Credited only
            // if it all arrived: a token that takes a fee on transfer would otherwise leave the committed
            // total unbacked.
            address held = address(escrow);
            uint256 before = token.balanceOf(held);
            // The first funding also brings one base unit that stays in the escrow for good: its balance
            // never returns to zero, so a later commit never pays for creating that storage slot again
            // (figures in docs/BENCHES.md).
            uint256 pull = before == 0 ? increase + 1 : increase;
            token.safeTransferFrom(msg.sender, held, pull);
            uint256 received = token.balanceOf(held) - before;
            if (received != pull) revert FundingShort(pull, received);
        }
    }

    /// @inheritdoc IDistributor
    function finalize(EpochRecord calldata r) external {
        Head memory head = _head;
        uint64 epoch = r.commit.epoch;
        if (epoch <= head.lastFinalized || epoch > head.lastCommitted) revert EpochNotPending(epoch);
        if (epoch != head.lastFinalized + 1) revert EpochNotNextToFinalize(epoch, head.lastFinalized + 1);
        _checkRecord(r);
        // Validators can skew the timestamp by seconds; challenge periods are hours to days.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < r.finalizableAt) revert ChallengePeriodActive(epoch, r.finalizableAt);

        _head.lastFinalized = epoch;
        // Claims built against the root just replaced still pay: whoever finalizes first cannot make a
        // claim in flight revert.
        previousRewardRoot = finalizedRewardRoot;
        finalizedRewardRoot = r.commit.rewardRoot;
        // Totals never decrease from one commit to the next, so neither from one finalized epoch to the next.
        uint256 released = r.commit.totalCumulative - finalizedTotal;
        finalizedTotal = r.commit.totalCumulative;
        emit EpochFinalized(epoch, r.commit.rewardRoot, r.commit.totalCumulative);
        // The epoch's funding becomes claimable: claims pay from this contract's balance alone.
        if (released != 0) escrow.pay(address(this), released);
    }

    /// @inheritdoc IDistributor
    function veto(EpochRecord calldata r) external {
        if (msg.sender != guardian) revert NotGuardian(msg.sender);
        Head memory head = _head;
        uint64 epoch = r.commit.epoch;
        if (epoch <= head.lastFinalized || epoch > head.lastCommitted) revert EpochNotPending(epoch);
        _checkRecord(r);
        // As in `finalize`: a skew of seconds is immaterial against the challenge period.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp >= r.finalizableAt) revert ChallengePeriodOver(epoch, r.finalizableAt);

        // Later pending epochs chain onto this one, so they go with it.
        for (uint256 e = epoch; e <= head.lastCommitted; ++e) {
            delete epochHash[e];
        }
        uint256 refund = head.committedTotal - r.prevTotalCumulative;
        _head = Head({
            lastCommitted: epoch - 1,
            lastFinalized: head.lastFinalized,
            committedTotal: uint128(r.prevTotalCumulative)
        });
        // Recorded, not sent: a paused token or a blocklisted settler must not be able to stop a veto. The
        // funding stays in the escrow until the settler withdraws it.
        if (refund != 0) refundOwed[_roles.settler] += refund;
        emit EpochVetoed(epoch, head.lastCommitted, refund);
    }

    /// @inheritdoc IDistributor
    function withdrawRefund() external returns (uint256 amount) {
        amount = refundOwed[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        refundOwed[msg.sender] = 0;
        emit RefundWithdrawn(msg.sender, amount);
        escrow.pay(msg.sender, amount);
    }

    // ---------------------------------------------------------------- claims

    /// @inheritdoc IDistributor
    function claim(address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        external
        returns (uint256 amount)
    {
        bytes32 root = finalizedRewardRoot;
        if (root == bytes32(0)) revert NoFinalizedEpoch();
        amount = _claim(root, account, cumulativeAmount, proof);
        if (amount == 0) revert NothingToClaim(account, cumulativeAmount, claimed[account]);
    }

    /// @inheritdoc IDistributor
    function claimMany(Claim[] calldata claims) external returns (uint256 total) {
        bytes32 root = finalizedRewardRoot;
        if (root == bytes32(0)) revert NoFinalizedEpoch();
        for (uint256 i = 0; i < claims.length; ++i) {
            // One bounds-checked decode of the entry instead of one per field.
            Claim calldata c = claims[i];
            total += _claim(root, c.account, c.cumulativeAmount, c.proof);
        }
    }

    /// @dev Verifies the proof and pays the difference; returns 0 without state change if nothing is due.
    function _claim(bytes32 root, address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        private
        returns (uint256 amount)
    {
        bytes32 leaf = RewardProof.leaf(address(this), account, cumulativeAmount);
        if (!RewardProof.verify(proof, root, leaf)) {
            // Only a proof that fails the newest root pays for reading the previous one.
            bytes32 previous = previousRewardRoot;
            if (previous == bytes32(0) || !RewardProof.verify(proof, previous, leaf)) {
                revert InvalidProof(account, cumulativeAmount);
            }
        }
        // `claimed[account]`, with its slot hashed once for the read and the write.
        bytes32 slot;
        uint256 already;
        assembly ("memory-safe") {
            mstore(0x00, and(account, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(0x20, claimed.slot)
            slot := keccak256(0x00, 0x40)
            already := sload(slot)
        }
        if (cumulativeAmount <= already) return 0;
        unchecked {
            amount = cumulativeAmount - already;
        }
        assembly ("memory-safe") {
            sstore(slot, cumulativeAmount)
        }
        emit Claimed(account, amount, cumulativeAmount);
        token.safeTransfer(account, amount);
    }

    // ---------------------------------------------------------------- admin

    /// @inheritdoc IDistributor
    function queueSettler(address newSettler) external onlyOwner {
        if (newSettler == address(0)) revert ZeroAddress();
        _queue(Change.Settler, uint192(uint160(newSettler)));
    }

    /// @inheritdoc IDistributor
    function queueGuardian(address newGuardian) external onlyOwner {
        if (newGuardian == address(0)) revert ZeroAddress();
        _queue(Change.Guardian, uint192(uint160(newGuardian)));
    }

    /// @inheritdoc IDistributor
    function queueChallengePeriod(uint64 newChallengePeriod) external onlyOwner {
        _checkChallengePeriod(newChallengePeriod);
        _queue(Change.ChallengePeriod, newChallengePeriod);
    }

    /// @inheritdoc IDistributor
    function cancelChange(Change kind) external onlyOwner {
        if (_pending[kind].eta == 0) revert NoChangeQueued(kind);
        delete _pending[kind];
        emit ChangeCancelled(kind);
    }

    /// @inheritdoc IDistributor
    function applyChange(Change kind) external {
        Pending memory p = _pending[kind];
        if (p.eta == 0) revert NoChangeQueued(kind);
        // As in `finalize`: a skew of seconds is immaterial against the challenge period.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < p.eta) revert ChangeNotReady(kind, p.eta);
        delete _pending[kind];
        if (kind == Change.Settler) {
            _setSettler(address(uint160(p.value)));
        } else if (kind == Change.Guardian) {
            _setGuardian(address(uint160(p.value)));
        } else {
            // Checked when queued: it fits.
            // forge-lint: disable-next-line(unsafe-typecast)
            _setChallengePeriod(uint64(p.value));
        }
    }

    /// @inheritdoc IDistributor
    function queueParams(PoolParams calldata params) external onlyOwner returns (uint256 index) {
        PoolParams memory p = params;
        _checkParams(p);
        index = _params.length;
        ParamsEntry memory last = _params[index - 1];
        // As in `finalize`: a skew of seconds is immaterial against the challenge period.
        // forge-lint: disable-next-line(block-timestamp)
        if (last.effectiveAt > block.timestamp) {
            // One announcement at a time: a newer one replaces it, with a notice of its own.
            --index;
            _params.pop();
            emit ParamsCancelled(index, last.hash);
        }
        bytes32 hash = keccak256(abi.encode(p));
        uint64 effectiveAt = uint64(block.timestamp) + _roles.challengePeriod;
        _params.push(ParamsEntry({hash: hash, effectiveAt: effectiveAt}));
        emit ParamsQueued(index, hash, effectiveAt, p);
    }

    /// @inheritdoc IDistributor
    function cancelParams() external onlyOwner {
        uint256 index = _params.length - 1;
        ParamsEntry memory last = _params[index];
        // As in `finalize`: a skew of seconds is immaterial against the challenge period.
        // forge-lint: disable-next-line(block-timestamp)
        if (last.effectiveAt <= block.timestamp) revert NoParamsPending();
        _params.pop();
        emit ParamsCancelled(index, last.hash);
    }

    /// @inheritdoc IDistributor
    function paramsAt(uint64 time) external view returns (bytes32) {
        // Entry 0 is effective from 0, so the walk always ends; the schedule holds a few entries.
        uint256 i = _params.length - 1;
        while (_params[i].effectiveAt > time) {
            --i;
        }
        return _params[i].hash;
    }

    /// @inheritdoc IDistributor
    function paramsCount() external view returns (uint256) {
        return _params.length;
    }

    /// @inheritdoc IDistributor
    function paramsEntry(uint256 index) external view returns (ParamsEntry memory) {
        return _params[index];
    }

    /// @inheritdoc IDistributor
    function hashParams(PoolParams calldata params) external pure returns (bytes32) {
        return keccak256(abi.encode(params));
    }

    /// @dev Reverts unless a pool can run with `p`: a fee of at most 100%, a window, epochs, a maturity,
    /// a payout script and a known scheme, and one token per bitcoin for the reward token.
    function _checkParams(PoolParams memory p) private view {
        if (p.feeBps > 10_000) revert InvalidParams("feeBps above 10000");
        if (p.windowX == 0) revert InvalidParams("windowX is zero");
        if (p.epochSecs == 0) revert InvalidParams("epochSecs is zero");
        if (p.maturity == 0) revert InvalidParams("maturity is zero");
        if (p.payoutScript.length == 0) revert InvalidParams("payoutScript is empty");
        if (p.scheme > 2) revert InvalidParams("scheme above 2 (FPPS)");
        uint8 decimals = IERC20Metadata(address(token)).decimals();
        if (decimals < 8 || decimals > 84) revert InvalidParams("token decimals outside 8..84");
        uint256 expected = 10 ** (decimals - 8);
        if (p.tokenPerSat != expected) revert TokenPerSatMismatch(p.tokenPerSat, expected);
    }

    /// @inheritdoc IDistributor
    function pendingChange(Change kind) external view returns (uint256 value, uint64 eta) {
        Pending memory p = _pending[kind];
        return (p.value, p.eta);
    }

    /// @dev Queues `kind` to apply after the challenge period now in force (replacing one already queued).
    function _queue(Change kind, uint192 value) private {
        uint64 eta = uint64(block.timestamp) + _roles.challengePeriod;
        _pending[kind] = Pending({value: value, eta: eta});
        emit ChangeQueued(kind, value, eta);
    }

    function _setSettler(address newSettler) private {
        if (newSettler == address(0)) revert ZeroAddress();
        _roles.settler = newSettler;
        emit SettlerSet(newSettler);
    }

    function _setGuardian(address newGuardian) private {
        if (newGuardian == address(0)) revert ZeroAddress();
        guardian = newGuardian;
        emit GuardianSet(newGuardian);
    }

    function _setChallengePeriod(uint64 newChallengePeriod) private {
        _checkChallengePeriod(newChallengePeriod);
        _roles.challengePeriod = newChallengePeriod;
        emit ChallengePeriodSet(newChallengePeriod);
    }

    /// @notice Always reverts: a distributor without an owner could never have its roles replaced.
    function renounceOwnership() public pure override {
        revert RenounceDisabled();
    }

    /// @dev Reverts unless `period` is within the bounds (no minimum on local development chains).
    function _checkChallengePeriod(uint64 period) private view {
        if (period > MAX_CHALLENGE_PERIOD) revert ChallengePeriodTooLong(period, MAX_CHALLENGE_PERIOD);
        if (period < MIN_CHALLENGE_PERIOD && block.chainid != 31337 && block.chainid != 1337) {
            revert ChallengePeriodTooShort(period, MIN_CHALLENGE_PERIOD);
        }
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IDistributor
    function settler() external view returns (address) {
        return _roles.settler;
    }

    /// @inheritdoc IDistributor
    function challengePeriod() external view returns (uint64) {
        return _roles.challengePeriod;
    }

    /// @inheritdoc IDistributor
    function lastCommittedEpoch() external view returns (uint64) {
        return _head.lastCommitted;
    }

    /// @inheritdoc IDistributor
    function lastFinalizedEpoch() external view returns (uint64) {
        return _head.lastFinalized;
    }

    /// @inheritdoc IDistributor
    function committedTotal() external view returns (uint256) {
        return _head.committedTotal;
    }

    /// @inheritdoc IDistributor
    function epochStatus(uint64 epoch) external view returns (EpochStatus) {
        Head memory head = _head;
        if (epoch == 0 || epoch > head.lastCommitted) return EpochStatus.None;
        return epoch <= head.lastFinalized ? EpochStatus.Finalized : EpochStatus.Pending;
    }

    /// @inheritdoc IDistributor
    function hashEpochRecord(EpochRecord calldata r) public pure returns (bytes32) {
        return keccak256(abi.encode(r));
    }

    /// @inheritdoc IDistributor
    function rewardLeaf(address account, uint256 cumulativeAmount) public view returns (bytes32) {
        return RewardProof.leaf(address(this), account, cumulativeAmount);
    }

    /// @dev Hashes the record `(c, finalizableAt, prevTotal)` and emits `EpochCommitted` for it: the same as
    /// `keccak256(abi.encode(EpochRecord(c, finalizableAt, prevTotal)))` followed by
    /// `emit EpochCommitted(epoch, hash, c, finalizableAt, prevTotal)`. The record is a static struct, so its
    /// ABI encoding is also the event's data, and one buffer serves both instead of copying `c` to memory
    /// and encoding it twice. `epoch` must be `c.epoch` as read by Solidity: that read reverts unless the
    /// word is a clean uint64, so the raw copy of `c` hashes exactly what `abi.encode` would.
    function _hashAndLogRecord(EpochCommit calldata c, uint64 epoch, uint64 finalizableAt, uint256 prevTotal)
        private
        returns (bytes32 hash)
    {
        bytes32 topic = EpochCommitted.selector;
        assembly ("memory-safe") {
            // Free memory is used as scratch and not allocated: nothing else runs before the log.
            let m := mload(0x40)
            calldatacopy(m, c, 0x100)
            mstore(add(m, 0x100), and(finalizableAt, 0xffffffffffffffff))
            mstore(add(m, 0x120), prevTotal)
            hash := keccak256(m, 0x140)
            log3(m, 0x140, topic, and(epoch, 0xffffffffffffffff), hash)
        }
    }

    /// @dev Reverts unless `r` hashes to the stored hash of its epoch.
    function _checkRecord(EpochRecord calldata r) private view {
        bytes32 stored = epochHash[r.commit.epoch];
        bytes32 given = hashEpochRecord(r);
        if (given != stored) revert EpochRecordMismatch(r.commit.epoch, given, stored);
    }
}
