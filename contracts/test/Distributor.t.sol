// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Distributor} from "../src/Distributor.sol";
import {IDistributorErrors} from "../src/interfaces/IDistributorErrors.sol";
import {EpochCommit, EpochRecord, EpochStatus} from "../src/interfaces/IDistributorTypes.sol";
import {DistributorFixture} from "./utils/DistributorFixture.sol";
import {vm} from "./utils/Vm.sol";

/// @notice Construction, roles, ownership and the pure views. Epochs are in `DistributorEpochs.t.sol`,
/// claims in `DistributorClaims.t.sol`.
contract DistributorTest is DistributorFixture {
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);

    uint64 internal constant MAX = 30 days;

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
        Distributor d = new Distributor(token, owner_, settler_, guardian_, period);

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
        new Distributor(IERC20(address(0)), owner, settler, guardian, CHALLENGE);
    }

    function testConstructorShouldRevertIfOwnerIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new Distributor(token, address(0), settler, guardian, CHALLENGE);
    }

    function testConstructorShouldRevertIfSettlerIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.ZeroAddress.selector));
        new Distributor(token, owner, address(0), guardian, CHALLENGE);
    }

    function testConstructorShouldRevertIfGuardianIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.ZeroAddress.selector));
        new Distributor(token, owner, settler, address(0), CHALLENGE);
    }

    function testConstructorShouldRevertIfChallengePeriodTooLong(uint64 period) public {
        period = uint64(_bound(period, uint256(MAX) + 1, type(uint64).max));
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.ChallengePeriodTooLong.selector, period, MAX)
        );
        new Distributor(token, owner, settler, guardian, period);
    }

    // ---------------------------------------------------------------- setSettler

    function testSetSettlerShouldSetAndEmitIfOwner(address newSettler) public {
        vm.assume(newSettler != address(0));
        vm.expectEmit(address(distributor));
        emit SettlerSet(newSettler);
        vm.prank(owner);
        distributor.setSettler(newSettler);
        vm.assertEq(distributor.settler(), newSettler);
    }

    function testSetSettlerShouldRevertIfNotOwner(address caller) public {
        vm.assume(caller != owner);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, caller));
        vm.prank(caller);
        distributor.setSettler(caller);
    }

    function testSetSettlerShouldRevertIfZeroAddress() public {
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.ZeroAddress.selector));
        vm.prank(owner);
        distributor.setSettler(address(0));
    }

    function testSetSettlerShouldMoveCommitRightIfChanged() public {
        vm.prank(owner);
        distributor.setSettler(alice);
        EpochCommit memory c = _nextCommit(keccak256("root"), 0);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NotSettler.selector, settler));
        vm.prank(settler);
        distributor.commitEpoch(c);
        vm.prank(alice);
        distributor.commitEpoch(c);
        vm.assertEq(uint256(distributor.lastCommittedEpoch()), 1);
    }

    // ---------------------------------------------------------------- setGuardian

    function testSetGuardianShouldSetAndEmitIfOwner(address newGuardian) public {
        vm.assume(newGuardian != address(0));
        vm.expectEmit(address(distributor));
        emit GuardianSet(newGuardian);
        vm.prank(owner);
        distributor.setGuardian(newGuardian);
        vm.assertEq(distributor.guardian(), newGuardian);
    }

    function testSetGuardianShouldRevertIfNotOwner(address caller) public {
        vm.assume(caller != owner);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, caller));
        vm.prank(caller);
        distributor.setGuardian(caller);
    }

    function testSetGuardianShouldRevertIfZeroAddress() public {
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.ZeroAddress.selector));
        vm.prank(owner);
        distributor.setGuardian(address(0));
    }

    function testSetGuardianShouldMoveVetoRightIfChanged() public {
        EpochRecord memory r = _commit(keccak256("root"), 0);
        vm.prank(owner);
        distributor.setGuardian(alice);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NotGuardian.selector, guardian));
        vm.prank(guardian);
        distributor.veto(r);
        vm.prank(alice);
        distributor.veto(r);
        vm.assertEq(uint256(distributor.lastCommittedEpoch()), 0);
    }

    // ---------------------------------------------------------------- setChallengePeriod

    function testSetChallengePeriodShouldSetAndEmitIfOwner(uint64 period) public {
        period = uint64(_bound(period, 0, MAX));
        vm.expectEmit(address(distributor));
        emit ChallengePeriodSet(period);
        vm.prank(owner);
        distributor.setChallengePeriod(period);
        vm.assertEq(uint256(distributor.challengePeriod()), period);
    }

    function testSetChallengePeriodShouldRevertIfNotOwner(address caller) public {
        vm.assume(caller != owner);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, caller));
        vm.prank(caller);
        distributor.setChallengePeriod(1);
    }

    function testSetChallengePeriodShouldRevertIfTooLong(uint64 period) public {
        period = uint64(_bound(period, uint256(MAX) + 1, type(uint64).max));
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.ChallengePeriodTooLong.selector, period, MAX)
        );
        vm.prank(owner);
        distributor.setChallengePeriod(period);
    }

    function testSetChallengePeriodShouldApplyOnlyToLaterCommitsIfEpochPending(uint64 period) public {
        period = uint64(_bound(period, 0, MAX));
        EpochRecord memory r1 = _commit(keccak256("root 1"), 0);
        vm.prank(owner);
        distributor.setChallengePeriod(period);
        EpochRecord memory r2 = _commit(keccak256("root 2"), 0);

        vm.assertEq(uint256(r1.finalizableAt), START + CHALLENGE);
        vm.assertEq(uint256(r2.finalizableAt), START + period);
        // The pending epoch keeps the period it was committed under.
        vm.warp(START + CHALLENGE);
        distributor.finalize(r1);
        vm.warp(START + period > START + CHALLENGE ? START + period : START + CHALLENGE);
        distributor.finalize(r2);
        vm.assertEq(uint256(distributor.lastFinalizedEpoch()), 2);
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
        distributor.setGuardian(alice);
        vm.prank(newOwner);
        distributor.setGuardian(alice);
        vm.assertEq(distributor.guardian(), alice);
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
        Distributor other = new Distributor(token, owner, settler, guardian, CHALLENGE);
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
