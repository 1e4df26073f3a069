// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Distributor} from "../src/Distributor.sol";
import {IDistributorErrors} from "../src/interfaces/IDistributorErrors.sol";
import {
    Change,
    EpochCommit,
    EpochRecord,
    EpochStatus,
    ParamsEntry,
    PoolParams
} from "../src/interfaces/IDistributorTypes.sol";
import {DistributorFixture} from "./utils/DistributorFixture.sol";
import {vm} from "./utils/Vm.sol";
import {poolParams} from "./utils/Params.sol";
import {FeeToken} from "./utils/Tokens.sol";

/// @notice Construction, roles, ownership and the pure views. Epochs are in `DistributorEpochs.t.sol`,
/// claims in `DistributorClaims.t.sol`.
contract DistributorTest is DistributorFixture {
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);

    uint64 internal constant MAX = 30 days;

    // ---------------------------------------------------------------- parameters

    function testConstructorShouldPinParamsFromTheStartIfValid(uint64 time) public view {
        bytes32 hash = distributor.hashParams(poolParams(1, 100));
        vm.assertEq(distributor.paramsCount(), 1);
        ParamsEntry memory e = distributor.paramsEntry(0);
        vm.assertEq(e.hash, hash);
        vm.assertEq(uint256(e.effectiveAt), 0);
        vm.assertEq(distributor.paramsAt(time), hash);
    }

    function testHashParamsShouldChangeIfAnyFieldChanges() public view {
        PoolParams memory p = poolParams(1, 100);
        bytes32 h = distributor.hashParams(p);
        vm.assertEq(h, keccak256(abi.encode(p)));
        bytes32[9] memory others;
        p.scoringVersion = 3;
        others[0] = distributor.hashParams(p);
        p = poolParams(1, 100);
        p.windowX = 3;
        others[1] = distributor.hashParams(p);
        p = poolParams(1, 101);
        others[2] = distributor.hashParams(p);
        p = poolParams(2, 100);
        others[3] = distributor.hashParams(p);
        p = poolParams(1, 100);
        p.payoutScript = hex"0014000102030405060708090a0b0c0d0e0f10111214";
        others[4] = distributor.hashParams(p);
        p = poolParams(1, 100);
        p.epochSecs = 3601;
        others[5] = distributor.hashParams(p);
        p = poolParams(1, 100);
        p.maturity = 101;
        others[6] = distributor.hashParams(p);
        p = poolParams(1, 100);
        p.poolTag = "/proofpool!";
        others[7] = distributor.hashParams(p);
        p = poolParams(1, 100);
        p.scheme = 2;
        others[8] = distributor.hashParams(p);
        for (uint256 i = 0; i < others.length; ++i) {
            vm.assertTrue(others[i] != h);
        }
    }

    function testQueueParamsShouldTakeEffectOnlyAfterChallengePeriodIfOwner(uint64 fee) public {
        fee = uint64(_bound(fee, 0, 10_000));
        bytes32 old = distributor.hashParams(poolParams(1, 100));
        PoolParams memory p = poolParams(1, fee);
        bytes32 hash = distributor.hashParams(p);
        uint64 at = uint64(block.timestamp) + CHALLENGE;
        vm.expectEmit();
        emit ParamsQueued(1, hash, at, p);
        vm.prank(owner);
        vm.assertEq(distributor.queueParams(p), 1);
        vm.assertEq(distributor.paramsCount(), 2);
        vm.assertEq(distributor.paramsAt(uint64(block.timestamp)), old);
        vm.assertEq(distributor.paramsAt(at - 1), old);
        vm.assertEq(distributor.paramsAt(at), hash);
        vm.assertEq(distributor.paramsAt(type(uint64).max), hash);
        ParamsEntry memory e = distributor.paramsEntry(1);
        vm.assertEq(e.hash, hash);
        vm.assertEq(uint256(e.effectiveAt), at);
    }

    function testQueueParamsShouldReplaceAnnouncementNotYetInForce() public {
        // Times are kept in locals: `block.timestamp` may be read once per test function.
        uint64 t = uint64(START);
        vm.prank(owner);
        distributor.queueParams(poolParams(1, 200));
        t += 10;
        vm.warp(t);
        bytes32 first = distributor.hashParams(poolParams(1, 200));
        bytes32 second = distributor.hashParams(poolParams(1, 300));
        vm.expectEmit();
        emit ParamsCancelled(1, first);
        vm.prank(owner);
        vm.assertEq(distributor.queueParams(poolParams(1, 300)), 1);
        vm.assertEq(distributor.paramsCount(), 2);
        // The replacement has a full notice of its own.
        vm.assertEq(distributor.paramsAt(t + CHALLENGE - 1), distributor.paramsEntry(0).hash);
        vm.assertEq(distributor.paramsAt(t + CHALLENGE), second);
        // Once in force, a new announcement is appended instead.
        t += CHALLENGE;
        vm.warp(t);
        vm.prank(owner);
        vm.assertEq(distributor.queueParams(poolParams(1, 100)), 2);
        vm.assertEq(distributor.paramsAt(t), second);
    }

    function testCancelParamsShouldDropAnnouncementIfNotYetInForce() public {
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NoParamsPending.selector));
        distributor.cancelParams();
        vm.prank(owner);
        distributor.queueParams(poolParams(1, 10_000));
        bytes32 hash = distributor.hashParams(poolParams(1, 10_000));
        vm.expectEmit();
        emit ParamsCancelled(1, hash);
        vm.prank(owner);
        distributor.cancelParams();
        vm.assertEq(distributor.paramsCount(), 1);
        vm.assertEq(distributor.paramsAt(type(uint64).max), distributor.paramsEntry(0).hash);
        // In force, it can no longer be withdrawn: only replaced, with notice.
        vm.prank(owner);
        distributor.queueParams(poolParams(1, 10_000));
        vm.warp(START + CHALLENGE);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NoParamsPending.selector));
        distributor.cancelParams();
    }

    function testQueueParamsShouldRevertIfNotOwner(address caller) public {
        vm.assume(caller != owner);
        PoolParams memory p = poolParams(1, 100);
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, caller));
        distributor.queueParams(p);
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, caller));
        distributor.cancelParams();
    }

    function testQueueParamsShouldRevertIfParamsInvalid() public {
        PoolParams memory p = poolParams(1, 10_001);
        vm.prank(owner);
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.InvalidParams.selector, "feeBps above 10000")
        );
        distributor.queueParams(p);
        p = poolParams(1, 100);
        p.windowX = 0;
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.InvalidParams.selector, "windowX is zero"));
        distributor.queueParams(p);
        p = poolParams(1, 100);
        p.epochSecs = 0;
        vm.prank(owner);
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.InvalidParams.selector, "epochSecs is zero")
        );
        distributor.queueParams(p);
        p = poolParams(1, 100);
        p.maturity = 0;
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.InvalidParams.selector, "maturity is zero"));
        distributor.queueParams(p);
        p = poolParams(1, 100);
        p.payoutScript = "";
        vm.prank(owner);
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.InvalidParams.selector, "payoutScript is empty")
        );
        distributor.queueParams(p);
        p = poolParams(1, 100);
        p.scheme = 3;
        vm.prank(owner);
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.InvalidParams.selector, "scheme above 2 (FPPS)")
        );
        distributor.queueParams(p);
        // An 8-decimal token: one base unit per satoshi, nothing else.
        p = poolParams(1e10, 100);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.TokenPerSatMismatch.selector, 1e10, 1));
        distributor.queueParams(p);
    }

    function testConstructorShouldRevertIfParamsInvalid() public {
        FeeToken eighteen = new FeeToken();
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.TokenPerSatMismatch.selector, 1, 1e10));
        new Distributor(eighteen, owner, settler, guardian, CHALLENGE, poolParams(1, 100));
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.InvalidParams.selector, "feeBps above 10000")
        );
        new Distributor(token, owner, settler, guardian, CHALLENGE, poolParams(1, 10_001));
    }

    // ---------------------------------------------------------------- constructor

    function testConstructorShouldSetRolesAndEmitIfArgumentsValid(
        address owner_,
        address settler_,
        address guardian_,
        uint64 period
    ) public {
        vm.assume(owner_ != address(0) && settler_ != address(0) && guardian_ != address(0));
        period = uint64(_bound(period, 0, MAX));

        vm.expectEmit();
        emit OwnershipTransferred(address(0), owner_);
        vm.expectEmit();
        emit SettlerSet(settler_);
        vm.expectEmit();
        emit GuardianSet(guardian_);
        vm.expectEmit();
        emit ChallengePeriodSet(period);
        Distributor d = new Distributor(token, owner_, settler_, guardian_, period, poolParams(1, 100));

        vm.assertEq(address(d.token()), address(token));
        vm.assertEq(d.owner(), owner_);
        vm.assertEq(d.settler(), settler_);
        vm.assertEq(d.guardian(), guardian_);
        vm.assertEq(uint256(d.challengePeriod()), period);
        vm.assertEq(uint256(d.lastCommittedEpoch()), 0);
        vm.assertEq(uint256(d.lastFinalizedEpoch()), 0);
        vm.assertEq(d.committedTotal(), 0);
        vm.assertEq(d.finalizedTotal(), 0);
        vm.assertEq(d.finalizedRewardRoot(), bytes32(0));
        vm.assertEq(uint256(d.MAX_CHALLENGE_PERIOD()), MAX);
    }

    function testConstructorShouldRevertIfTokenIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.ZeroAddress.selector));
        new Distributor(IERC20(address(0)), owner, settler, guardian, CHALLENGE, poolParams(1, 100));
    }

    function testConstructorShouldRevertIfOwnerIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new Distributor(token, address(0), settler, guardian, CHALLENGE, poolParams(1, 100));
    }

    function testConstructorShouldRevertIfSettlerIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.ZeroAddress.selector));
        new Distributor(token, owner, address(0), guardian, CHALLENGE, poolParams(1, 100));
    }

    function testConstructorShouldRevertIfGuardianIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.ZeroAddress.selector));
        new Distributor(token, owner, settler, address(0), CHALLENGE, poolParams(1, 100));
    }

    function testConstructorShouldRevertIfChallengePeriodTooLong(uint64 period) public {
        period = uint64(_bound(period, uint256(MAX) + 1, type(uint64).max));
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.ChallengePeriodTooLong.selector, period, MAX)
        );
        new Distributor(token, owner, settler, guardian, period, poolParams(1, 100));
    }

    // ---------------------------------------------------------------- timelocked changes

    function testQueueSettlerShouldApplyOnlyAfterChallengePeriodIfOwner(address newSettler) public {
        vm.assume(newSettler != address(0));
        vm.expectEmit(address(distributor));
        // START fits: it is a 2023 timestamp.
        // forge-lint: disable-next-line(unsafe-typecast)
        emit ChangeQueued(Change.Settler, uint160(newSettler), uint64(START) + CHALLENGE);
        vm.prank(owner);
        distributor.queueSettler(newSettler);
        (uint256 value, uint64 eta) = distributor.pendingChange(Change.Settler);
        vm.assertEq(value, uint160(newSettler));
        vm.assertEq(uint256(eta), START + CHALLENGE);

        // Inside the window nothing changes, whoever asks.
        vm.warp(START + CHALLENGE - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.ChangeNotReady.selector, Change.Settler, eta)
        );
        distributor.applyChange(Change.Settler);
        vm.assertEq(distributor.settler(), settler);

        vm.warp(START + CHALLENGE);
        vm.expectEmit(address(distributor));
        emit SettlerSet(newSettler);
        distributor.applyChange(Change.Settler);
        vm.assertEq(distributor.settler(), newSettler);
        (, eta) = distributor.pendingChange(Change.Settler);
        vm.assertEq(uint256(eta), 0, "applied once");
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NoChangeQueued.selector, Change.Settler));
        distributor.applyChange(Change.Settler);
    }

    function testQueueShouldRevertIfNotOwner(address caller) public {
        vm.assume(caller != owner);
        vm.startPrank(caller);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, caller));
        distributor.queueSettler(caller);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, caller));
        distributor.queueGuardian(caller);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, caller));
        distributor.queueChallengePeriod(2 hours);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, caller));
        distributor.cancelChange(Change.Guardian);
        vm.stopPrank();
    }

    function testQueueShouldRevertIfZeroAddress() public {
        vm.startPrank(owner);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.ZeroAddress.selector));
        distributor.queueSettler(address(0));
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.ZeroAddress.selector));
        distributor.queueGuardian(address(0));
        vm.stopPrank();
    }

    function testCancelChangeShouldDropQueuedGuardianIfOwner() public {
        vm.prank(owner);
        distributor.queueGuardian(alice);
        vm.expectEmit(address(distributor));
        emit ChangeCancelled(Change.Guardian);
        vm.prank(owner);
        distributor.cancelChange(Change.Guardian);
        vm.warp(START + CHALLENGE);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NoChangeQueued.selector, Change.Guardian));
        distributor.applyChange(Change.Guardian);
        vm.assertEq(distributor.guardian(), guardian);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NoChangeQueued.selector, Change.Guardian));
        vm.prank(owner);
        distributor.cancelChange(Change.Guardian);
    }

    function testQueueGuardianShouldLeaveVetoWithOldGuardianInsideWindow() public {
        // The operator swaps the guardian and commits a forged epoch: the old guardian can still veto it,
        // because the swap waits out a challenge period.
        vm.prank(owner);
        distributor.queueGuardian(alice);
        EpochRecord memory r = _commit(keccak256("forged"), 0);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NotGuardian.selector, alice));
        vm.prank(alice);
        distributor.veto(r);
        vm.prank(guardian);
        distributor.veto(r);
        vm.assertEq(uint256(distributor.lastCommittedEpoch()), 0);
    }

    function testApplyGuardianShouldMoveVetoRightIfDelayPassed() public {
        _changeGuardian(alice);
        EpochRecord memory r = _commit(keccak256("root"), 0);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NotGuardian.selector, guardian));
        vm.prank(guardian);
        distributor.veto(r);
        vm.prank(alice);
        distributor.veto(r);
        vm.assertEq(uint256(distributor.lastCommittedEpoch()), 0);
    }

    function testApplySettlerShouldMoveCommitRightIfDelayPassed() public {
        _changeSettler(alice);
        EpochCommit memory c = _nextCommit(keccak256("root"), 0);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NotSettler.selector, settler));
        vm.prank(settler);
        distributor.commitEpoch(c);
        vm.prank(alice);
        distributor.commitEpoch(c);
        vm.assertEq(uint256(distributor.lastCommittedEpoch()), 1);
    }

    function testQueueChallengePeriodShouldApplyToLaterCommitsAfterDelay(uint64 period) public {
        period = uint64(_bound(period, 0, MAX));
        // Zeroing the period takes the old period to apply: an epoch committed meanwhile keeps its window.
        vm.prank(owner);
        distributor.queueChallengePeriod(period);
        EpochRecord memory r1 = _commit(keccak256("root 1"), 0);
        vm.warp(START + CHALLENGE);
        vm.expectEmit(address(distributor));
        emit ChallengePeriodSet(period);
        distributor.applyChange(Change.ChallengePeriod);
        vm.assertEq(uint256(distributor.challengePeriod()), period);
        EpochRecord memory r2 = _commit(keccak256("root 2"), 0);
        vm.assertEq(uint256(r1.finalizableAt), START + CHALLENGE);
        vm.assertEq(uint256(r2.finalizableAt), START + CHALLENGE + period);
        distributor.finalize(r1);
        vm.warp(START + CHALLENGE + period);
        distributor.finalize(r2);
        vm.assertEq(uint256(distributor.lastFinalizedEpoch()), 2);
    }

    function testQueueChallengePeriodShouldRevertIfTooLong(uint64 period) public {
        period = uint64(_bound(period, uint256(MAX) + 1, type(uint64).max));
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.ChallengePeriodTooLong.selector, period, MAX)
        );
        vm.prank(owner);
        distributor.queueChallengePeriod(period);
    }

    function testChallengePeriodShouldRevertIfBelowMinimumOffLocalChains(uint64 period) public {
        uint64 min = distributor.MIN_CHALLENGE_PERIOD();
        period = uint64(_bound(period, 0, min - 1));
        vm.chainId(8453);
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.ChallengePeriodTooShort.selector, period, min)
        );
        vm.prank(owner);
        distributor.queueChallengePeriod(period);
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.ChallengePeriodTooShort.selector, period, min)
        );
        new Distributor(IERC20(address(token)), owner, settler, guardian, period, poolParams(1, 100));
        // The minimum itself is fine.
        new Distributor(IERC20(address(token)), owner, settler, guardian, min, poolParams(1, 100));
    }

    // ---------------------------------------------------------------- ownership (Ownable2Step)

    function testTransferOwnershipShouldStartTransferAndEmitIfOwner(address newOwner) public {
        vm.expectEmit(address(distributor));
        emit OwnershipTransferStarted(owner, newOwner);
        vm.prank(owner);
        distributor.transferOwnership(newOwner);
        vm.assertEq(distributor.pendingOwner(), newOwner);
        vm.assertEq(distributor.owner(), owner, "owner changes only on accept");
    }

    function testTransferOwnershipShouldRevertIfNotOwner(address caller) public {
        vm.assume(caller != owner);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, caller));
        vm.prank(caller);
        distributor.transferOwnership(caller);
    }

    function testAcceptOwnershipShouldTransferAndEmitIfPendingOwner(address newOwner) public {
        vm.assume(newOwner != address(0) && newOwner != owner);
        vm.prank(owner);
        distributor.transferOwnership(newOwner);

        vm.expectEmit(address(distributor));
        emit OwnershipTransferred(owner, newOwner);
        vm.prank(newOwner);
        distributor.acceptOwnership();
        vm.assertEq(distributor.owner(), newOwner);
        vm.assertEq(distributor.pendingOwner(), address(0));

        // The old owner has lost the admin setters, the new one has them.
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, owner));
        vm.prank(owner);
        distributor.queueGuardian(alice);
        vm.prank(newOwner);
        distributor.queueGuardian(alice);
        (uint256 value,) = distributor.pendingChange(Change.Guardian);
        vm.assertEq(value, uint160(alice));
    }

    function testAcceptOwnershipShouldRevertIfNotPendingOwner(address caller) public {
        vm.prank(owner);
        distributor.transferOwnership(alice);
        vm.assume(caller != alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, caller));
        vm.prank(caller);
        distributor.acceptOwnership();
    }

    function testRenounceOwnershipShouldRevertIfAnyCaller(address caller) public {
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.RenounceDisabled.selector));
        vm.prank(caller);
        distributor.renounceOwnership();
    }

    function testRenounceOwnershipShouldRevertIfOwner() public {
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.RenounceDisabled.selector));
        vm.prank(owner);
        distributor.renounceOwnership();
        vm.assertEq(distributor.owner(), owner);
    }

    // ---------------------------------------------------------------- views

    function testRewardLeafShouldMatchDoubleHashedAbiEncodingIfAnyInput(address account, uint256 amount)
        public
        view
    {
        vm.assertEq(distributor.rewardLeaf(account, amount), _leaf(account, amount));
    }

    function testRewardLeafShouldChangeIfChainIdChanges(uint64 chainId) public {
        vm.assume(chainId != block.chainid);
        bytes32 here = distributor.rewardLeaf(alice, 1e8);
        vm.chainId(chainId);
        vm.assertNotEq(distributor.rewardLeaf(alice, 1e8), here);
        vm.assertEq(distributor.rewardLeaf(alice, 1e8), _leaf(alice, 1e8));
    }

    function testRewardLeafShouldChangeIfDeploymentChanges() public {
        Distributor other = new Distributor(token, owner, settler, guardian, CHALLENGE, poolParams(1, 100));
        vm.assertNotEq(other.rewardLeaf(alice, 1e8), distributor.rewardLeaf(alice, 1e8));
    }

    function testHashEpochRecordShouldMatchStoredHashIfCommitted(bytes32 rewardRoot, uint256 total) public {
        total = _bound(total, 0, type(uint128).max);
        EpochRecord memory r = _recordOf(_nextCommit(rewardRoot, total));
        vm.assertEq(distributor.hashEpochRecord(r), keccak256(abi.encode(r)));
        vm.prank(settler);
        bytes32 hash = distributor.commitEpoch(r.commit);
        vm.assertEq(hash, keccak256(abi.encode(r)));
        vm.assertEq(distributor.epochHash(1), hash);
    }

    function testEpochStatusShouldFollowLifecycleIfCommittedFinalizedAndVetoed() public {
        vm.assertEq(uint256(distributor.epochStatus(0)), uint256(EpochStatus.None));
        vm.assertEq(uint256(distributor.epochStatus(1)), uint256(EpochStatus.None));
        EpochRecord memory r1 = _commit(keccak256("root 1"), 0);
        vm.assertEq(uint256(distributor.epochStatus(1)), uint256(EpochStatus.Pending));
        vm.warp(r1.finalizableAt);
        EpochRecord memory r2 = _commit(keccak256("root 2"), 0);
        _finalize(r1);
        vm.assertEq(uint256(distributor.epochStatus(0)), uint256(EpochStatus.None));
        vm.assertEq(uint256(distributor.epochStatus(1)), uint256(EpochStatus.Finalized));
        vm.assertEq(uint256(distributor.epochStatus(2)), uint256(EpochStatus.Pending));
        vm.assertEq(uint256(distributor.epochStatus(3)), uint256(EpochStatus.None));
        _veto(r2);
        vm.assertEq(uint256(distributor.epochStatus(2)), uint256(EpochStatus.None));
        vm.assertEq(uint256(distributor.epochStatus(1)), uint256(EpochStatus.Finalized));
    }
}
