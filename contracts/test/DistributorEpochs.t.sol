// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Distributor} from "../src/Distributor.sol";
import {IDistributorErrors} from "../src/interfaces/IDistributorErrors.sol";
import {Change, EpochCommit, EpochRecord} from "../src/interfaces/IDistributorTypes.sol";
import {DistributorFixture} from "./utils/DistributorFixture.sol";
import {BlockingToken, FeeToken} from "./utils/Tokens.sol";
import {vm} from "./utils/Vm.sol";
import {poolParams} from "./utils/Params.sol";

/// @notice The epoch lifecycle: commit, finalize, veto.
contract DistributorEpochsTest is DistributorFixture {
    uint256 internal constant MAX_TOTAL = type(uint128).max;

    // ---------------------------------------------------------------- commitEpoch

    function testCommitEpochShouldStoreHashPullFundsAndEmitIfSettler(bytes32 rewardRoot, uint256 total)
        public
    {
        total = _bound(total, 0, MAX_TOTAL);
        EpochRecord memory r = _recordOf(_nextCommit(rewardRoot, total));
        bytes32 expected = keccak256(abi.encode(r));

        vm.expectEmit(address(distributor));
        emit EpochCommitted(1, expected, r.commit, r.finalizableAt, 0);
        vm.prank(settler);
        bytes32 hash = distributor.commitEpoch(r.commit);

        vm.assertEq(hash, expected);
        vm.assertEq(distributor.epochHash(1), expected);
        vm.assertEq(uint256(distributor.lastCommittedEpoch()), 1);
        vm.assertEq(uint256(distributor.lastFinalizedEpoch()), 0);
        vm.assertEq(distributor.committedTotal(), total);
        vm.assertEq(distributor.finalizedTotal(), 0);
        vm.assertEq(distributor.finalizedRewardRoot(), bytes32(0), "a commit alone changes no claim root");
        vm.assertEq(_held(), total);
        vm.assertEq(uint256(r.finalizableAt), START + CHALLENGE);
    }

    function testCommitEpochShouldPullOnlyTheIncreaseIfTotalGrows(uint256 total1, uint256 total2) public {
        total1 = _bound(total1, 0, MAX_TOTAL);
        total2 = _bound(total2, total1, MAX_TOTAL);
        _commit(keccak256("root 1"), total1);
        uint256 settlerBefore = token.balanceOf(settler);

        EpochRecord memory r2 = _recordOf(_nextCommit(keccak256("root 2"), total2));
        vm.assertEq(r2.prevTotalCumulative, total1);
        vm.expectEmit(address(distributor));
        emit EpochCommitted(2, keccak256(abi.encode(r2)), r2.commit, r2.finalizableAt, total1);
        vm.prank(settler);
        distributor.commitEpoch(r2.commit);

        vm.assertEq(token.balanceOf(settler), settlerBefore - (total2 - total1));
        vm.assertEq(_held(), total2);
        vm.assertEq(distributor.committedTotal(), total2);
    }

    function testCommitEpochShouldNotPullIfTotalUnchanged(uint256 total) public {
        total = _bound(total, 0, MAX_TOTAL);
        _commit(keccak256("root 1"), total);
        // Without an allowance any pull would revert: an unchanged total must not touch the token.
        vm.prank(settler);
        token.approve(address(distributor), 0);
        _commit(keccak256("root 2"), total);
        vm.assertEq(_held(), total);
        vm.assertEq(uint256(distributor.lastCommittedEpoch()), 2);
    }

    function testCommitEpochShouldRevertIfNotSettler(address caller) public {
        vm.assume(caller != settler);
        EpochCommit memory c = _nextCommit(keccak256("root"), 1);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NotSettler.selector, caller));
        vm.prank(caller);
        distributor.commitEpoch(c);
    }

    function testCommitEpochShouldRevertIfEpochGap(uint64 epoch) public {
        _commit(keccak256("root 1"), 0);
        vm.assume(epoch != 2);
        EpochCommit memory c = _nextCommit(keccak256("root 2"), 0);
        c.epoch = epoch;
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.EpochNotNext.selector, epoch, uint64(2)));
        vm.prank(settler);
        distributor.commitEpoch(c);
    }

    function testCommitEpochShouldRevertIfEpochRepeated() public {
        EpochRecord memory r1 = _commit(keccak256("root 1"), 5);
        // The exact same commitment again (as a settler retrying after a crash would send it).
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.EpochNotNext.selector, uint64(1), uint64(2))
        );
        vm.prank(settler);
        distributor.commitEpoch(r1.commit);
    }

    function testCommitEpochShouldRevertIfPrevEpochHashMismatch(bytes32 prev) public {
        _commit(keccak256("root 1"), 0);
        bytes32 expected = distributor.epochHash(1);
        vm.assume(prev != expected);
        EpochCommit memory c = _nextCommit(keccak256("root 2"), 0);
        c.prevEpochHash = prev;
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.PrevEpochHashMismatch.selector, prev, expected)
        );
        vm.prank(settler);
        distributor.commitEpoch(c);
    }

    function testCommitEpochShouldRevertIfFirstEpochHasPrevHash(bytes32 prev) public {
        vm.assume(prev != bytes32(0));
        EpochCommit memory c = _nextCommit(keccak256("root 1"), 0);
        c.prevEpochHash = prev;
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.PrevEpochHashMismatch.selector, prev, bytes32(0))
        );
        vm.prank(settler);
        distributor.commitEpoch(c);
    }

    function testCommitEpochShouldRevertIfTotalCumulativeDecreased(uint256 total1, uint256 total2) public {
        total1 = _bound(total1, 1, MAX_TOTAL);
        total2 = _bound(total2, 0, total1 - 1);
        _commit(keccak256("root 1"), total1);
        EpochCommit memory c = _nextCommit(keccak256("root 2"), total2);
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.TotalCumulativeDecreased.selector, total2, total1)
        );
        vm.prank(settler);
        distributor.commitEpoch(c);
    }

    function testCommitEpochShouldRevertIfTotalCumulativeTooLarge(uint256 total) public {
        total = _bound(total, MAX_TOTAL + 1, type(uint256).max);
        EpochCommit memory c = _nextCommit(keccak256("root"), total);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.TotalCumulativeTooLarge.selector, total));
        vm.prank(settler);
        distributor.commitEpoch(c);
    }

    function testCommitEpochShouldRevertIfSettlerCannotFund(uint256 total) public {
        total = _bound(total, 1, MAX_TOTAL);
        vm.prank(settler);
        token.approve(address(distributor), total - 1);
        EpochCommit memory c = _nextCommit(keccak256("root"), total);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(distributor), total - 1, total
            )
        );
        vm.prank(settler);
        distributor.commitEpoch(c);
    }

    function testCommitEpochShouldRevertIfEpochWordIsDirty(uint256 dirt) public {
        // A uint64 field with high bits set is not a valid encoding: the contract must not hash it raw.
        dirt = _bound(dirt, 1, type(uint192).max);
        EpochCommit memory c = _nextCommit(keccak256("root"), 0);
        bytes memory data = abi.encodeCall(Distributor.commitEpoch, (c));
        assembly ("memory-safe") {
            // data: length word, selector (4 bytes), then the epoch word.
            let word := add(data, 0x24)
            mstore(word, or(mload(word), shl(64, dirt)))
        }
        vm.prank(settler);
        (bool ok,) = address(distributor).call(data);
        vm.assertFalse(ok, "dirty epoch accepted");
        vm.assertEq(uint256(distributor.lastCommittedEpoch()), 0);
    }

    // ---------------------------------------------------------------- finalize

    function testFinalizeShouldSetRootAndEmitIfChallengePeriodOver(
        bytes32 rewardRoot,
        uint256 total,
        uint256 delay,
        address caller
    ) public {
        total = _bound(total, 0, MAX_TOTAL);
        delay = _bound(delay, 0, 365 days);
        EpochRecord memory r = _commit(rewardRoot, total);
        vm.warp(r.finalizableAt + delay);

        vm.expectEmit(address(distributor));
        emit EpochFinalized(1, rewardRoot, total);
        vm.prank(caller);
        distributor.finalize(r);

        vm.assertEq(uint256(distributor.lastFinalizedEpoch()), 1);
        vm.assertEq(distributor.finalizedRewardRoot(), rewardRoot);
        vm.assertEq(distributor.finalizedTotal(), total);
        vm.assertEq(distributor.epochHash(1), keccak256(abi.encode(r)), "the record stays");
    }

    function testFinalizeShouldRevertIfChallengePeriodActive(uint256 early) public {
        EpochRecord memory r = _commit(keccak256("root"), 0);
        early = _bound(early, 1, CHALLENGE);
        vm.warp(r.finalizableAt - early);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDistributorErrors.ChallengePeriodActive.selector, uint64(1), r.finalizableAt
            )
        );
        distributor.finalize(r);
    }

    function testFinalizeShouldRevertIfEpochNeverCommitted(uint64 epoch) public {
        _commit(keccak256("root 1"), 0);
        epoch = uint64(_bound(epoch, 2, type(uint64).max));
        EpochRecord memory r = _recordOf(_nextCommit(keccak256("root 2"), 0));
        r.commit.epoch = epoch;
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.EpochNotPending.selector, epoch));
        distributor.finalize(r);
    }

    function testFinalizeShouldRevertIfEpochZero() public {
        EpochRecord memory r = _recordOf(_nextCommit(keccak256("root"), 0));
        r.commit.epoch = 0;
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.EpochNotPending.selector, uint64(0)));
        distributor.finalize(r);
    }

    function testFinalizeShouldRevertIfEpochAlreadyFinalized() public {
        EpochRecord memory r = _commit(keccak256("root"), 0);
        _finalize(r);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.EpochNotPending.selector, uint64(1)));
        distributor.finalize(r);
    }

    function testFinalizeShouldRevertIfEpochVetoed() public {
        EpochRecord memory r = _commit(keccak256("root"), 0);
        _veto(r);
        vm.warp(r.finalizableAt);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.EpochNotPending.selector, uint64(1)));
        distributor.finalize(r);
    }

    function testFinalizeShouldRevertIfEpochNotNextToFinalize() public {
        _commit(keccak256("root 1"), 0);
        EpochRecord memory r2 = _commit(keccak256("root 2"), 0);
        vm.warp(r2.finalizableAt);
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.EpochNotNextToFinalize.selector, uint64(2), uint64(1))
        );
        distributor.finalize(r2);
    }

    function testFinalizeShouldRevertIfRecordMismatch(uint8 field, bytes32 noise) public {
        EpochRecord memory r = _commit(keccak256("root"), 10);
        bytes32 stored = distributor.epochHash(1);
        EpochRecord memory forged = _tamper(r, field, noise);
        bytes32 given = keccak256(abi.encode(forged));
        vm.assume(given != stored);
        vm.warp(r.finalizableAt > forged.finalizableAt ? r.finalizableAt : forged.finalizableAt);
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.EpochRecordMismatch.selector, uint64(1), given, stored)
        );
        distributor.finalize(forged);
    }

    function testFinalizeShouldFinalizeInOrderIfSeveralPending(uint8 count) public {
        count = uint8(_bound(count, 1, 8));
        EpochRecord[] memory rs = new EpochRecord[](count);
        for (uint256 i = 0; i < count; ++i) {
            rs[i] = _commit(keccak256(abi.encode("root", i)), (i + 1) * 1e8);
            vm.warp(_now() + 1 hours);
        }
        for (uint256 i = 0; i < count; ++i) {
            _finalize(rs[i]);
            vm.assertEq(uint256(distributor.lastFinalizedEpoch()), i + 1);
            vm.assertEq(distributor.finalizedRewardRoot(), rs[i].commit.rewardRoot);
            vm.assertEq(distributor.finalizedTotal(), (i + 1) * 1e8);
        }
        vm.assertEq(distributor.committedTotal(), distributor.finalizedTotal());
    }

    // ---------------------------------------------------------------- veto

    function testVetoShouldRollBackLaterEpochsAndRefundIfGuardian(uint256 t1, uint256 t2, uint256 t3) public {
        t1 = _bound(t1, 0, MAX_TOTAL);
        t2 = _bound(t2, t1, MAX_TOTAL);
        t3 = _bound(t3, t2, MAX_TOTAL);
        EpochRecord memory r1 = _commit(keccak256("root 1"), t1);
        EpochRecord memory r2 = _commit(keccak256("root 2"), t2);
        _commit(keccak256("root 3"), t3);
        uint256 settlerBefore = token.balanceOf(settler);

        vm.expectEmit(address(distributor));
        emit EpochVetoed(2, 3, t3 - t1);
        _veto(r2);

        vm.assertEq(uint256(distributor.lastCommittedEpoch()), 1);
        vm.assertEq(distributor.committedTotal(), t1);
        vm.assertEq(distributor.epochHash(1), keccak256(abi.encode(r1)), "earlier epochs stay");
        vm.assertEq(distributor.epochHash(2), bytes32(0));
        vm.assertEq(distributor.epochHash(3), bytes32(0));
        // The refund is owed, not sent: the veto moves no tokens.
        vm.assertEq(token.balanceOf(settler), settlerBefore);
        vm.assertEq(distributor.refundOwed(settler), t3 - t1);
        vm.assertEq(_held(), t3);
        if (t3 > t1) {
            vm.expectEmit(address(distributor));
            emit RefundWithdrawn(settler, t3 - t1);
            vm.prank(settler);
            vm.assertEq(distributor.withdrawRefund(), t3 - t1);
        }
        vm.assertEq(token.balanceOf(settler), settlerBefore + (t3 - t1));
        vm.assertEq(_held(), t1);
        vm.assertEq(distributor.refundOwed(settler), 0);

        // The epoch before the vetoed one is unaffected and still finalizes.
        _finalize(r1);
        vm.assertEq(distributor.finalizedRewardRoot(), keccak256("root 1"));
    }

    function testVetoShouldNotTransferIfNothingToRefund() public {
        _commit(keccak256("root 1"), 7);
        EpochRecord memory r2 = _commit(keccak256("root 2"), 7);
        vm.expectEmit(address(distributor));
        emit EpochVetoed(2, 2, 0);
        _veto(r2);
        vm.assertEq(_held(), 7);
        vm.assertEq(distributor.committedTotal(), 7);
    }

    function testVetoShouldOweCurrentSettlerIfSettlerChanged() public {
        vm.prank(owner);
        distributor.queueSettler(alice);
        vm.warp(START + CHALLENGE);
        EpochRecord memory r = _commit(keccak256("root"), 5e8);
        distributor.applyChange(Change.Settler);
        _veto(r);
        vm.assertEq(distributor.refundOwed(alice), 5e8, "refunds are owed to the settler at veto time");
        vm.assertEq(distributor.refundOwed(settler), 0);
        vm.prank(alice);
        distributor.withdrawRefund();
        vm.assertEq(token.balanceOf(alice), 5e8);
    }

    function testVetoShouldSucceedIfTokenRefusesTransfersToSettler() public {
        BlockingToken blocking = new BlockingToken();
        Distributor d = new Distributor(blocking, owner, settler, guardian, CHALLENGE, poolParams(1e10, 100));
        blocking.mint(settler, 10e8);
        vm.prank(settler);
        blocking.approve(address(d), type(uint256).max);
        vm.prank(settler);
        d.commitEpoch(_commitFor(d, keccak256("root"), 4e8));
        EpochRecord memory r = EpochRecord({
            commit: _commitFor(d, keccak256("root"), 4e8),
            finalizableAt: uint64(block.timestamp) + CHALLENGE,
            prevTotalCumulative: 0
        });
        // The settler is blocklisted: no transfer to it can succeed, yet the veto does.
        blocking.setBlocked(settler, true);
        vm.prank(guardian);
        d.veto(r);
        vm.assertEq(uint256(d.lastCommittedEpoch()), 0);
        vm.assertEq(d.refundOwed(settler), 4e8);
        // The refund waits until the token lets it through.
        vm.prank(settler);
        vm.expectRevert(abi.encodeWithSelector(BlockingToken.Blocked.selector, settler));
        d.withdrawRefund();
        blocking.setBlocked(settler, false);
        vm.prank(settler);
        vm.assertEq(d.withdrawRefund(), 4e8);
        // All back but the escrow's lasting base unit.
        vm.assertEq(blocking.balanceOf(settler), 10e8 - 1);
    }

    function testWithdrawRefundShouldRevertIfNothingOwed(address caller) public {
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NothingToWithdraw.selector, caller));
        vm.prank(caller);
        distributor.withdrawRefund();
    }

    function testCommitEpochShouldRevertIfTokenTakesAFee(uint256 total) public {
        total = _bound(total, 100, MAX_TOTAL);
        FeeToken fee = new FeeToken();
        Distributor d = new Distributor(fee, owner, settler, guardian, CHALLENGE, poolParams(1e10, 100));
        fee.mint(settler, total + 1);
        vm.prank(settler);
        fee.approve(address(d), type(uint256).max);
        EpochCommit memory c = _commitFor(d, keccak256("root"), total);
        // The first funding brings the escrow's one lasting base unit too.
        uint256 pulled = total + 1;
        uint256 received = pulled - pulled / 100;
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.FundingShort.selector, pulled, received));
        vm.prank(settler);
        d.commitEpoch(c);
    }

    function testVetoShouldKeepFinalizedEpochIfLaterEpochVetoed() public {
        EpochRecord memory r1 = _commit(keccak256("root 1"), 3e8);
        _finalize(r1);
        EpochRecord memory r2 = _commit(keccak256("root 2"), 5e8);
        _veto(r2);
        vm.assertEq(uint256(distributor.lastCommittedEpoch()), 1);
        vm.assertEq(uint256(distributor.lastFinalizedEpoch()), 1);
        vm.assertEq(distributor.committedTotal(), 3e8);
        vm.assertEq(distributor.finalizedTotal(), 3e8);
        vm.assertEq(distributor.finalizedRewardRoot(), keccak256("root 1"));
        vm.assertEq(distributor.refundOwed(settler), 2e8);
        vm.assertEq(_held() - distributor.refundOwed(settler), 3e8);
    }

    function testVetoShouldRevertIfNotGuardian(address caller) public {
        vm.assume(caller != guardian);
        EpochRecord memory r = _commit(keccak256("root"), 0);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NotGuardian.selector, caller));
        vm.prank(caller);
        distributor.veto(r);
    }

    function testVetoShouldRevertIfChallengePeriodOver(uint256 late) public {
        EpochRecord memory r = _commit(keccak256("root"), 0);
        late = _bound(late, 0, 365 days);
        vm.warp(r.finalizableAt + late);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDistributorErrors.ChallengePeriodOver.selector, uint64(1), r.finalizableAt
            )
        );
        _veto(r);
    }

    function testVetoShouldRevertIfEpochFinalized() public {
        EpochRecord memory r = _commit(keccak256("root"), 0);
        _finalize(r);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.EpochNotPending.selector, uint64(1)));
        _veto(r);
    }

    function testVetoShouldRevertIfEpochAlreadyVetoed() public {
        EpochRecord memory r = _commit(keccak256("root"), 0);
        _veto(r);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.EpochNotPending.selector, uint64(1)));
        _veto(r);
    }

    function testVetoShouldRevertIfEpochNeverCommitted(uint64 epoch) public {
        epoch = uint64(_bound(epoch, 1, type(uint64).max));
        EpochRecord memory r = _recordOf(_nextCommit(keccak256("root"), 0));
        r.commit.epoch = epoch;
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.EpochNotPending.selector, epoch));
        _veto(r);
    }

    function testVetoShouldRevertIfRecordMismatch(uint8 field, bytes32 noise) public {
        EpochRecord memory r = _commit(keccak256("root"), 10);
        bytes32 stored = distributor.epochHash(1);
        EpochRecord memory forged = _tamper(r, field, noise);
        bytes32 given = keccak256(abi.encode(forged));
        vm.assume(given != stored);
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.EpochRecordMismatch.selector, uint64(1), given, stored)
        );
        _veto(forged);
    }

    function testVetoShouldRevertIfPrevTotalForged() public {
        // A forged `prevTotalCumulative` would roll the total back below what is already claimable.
        EpochRecord memory r1 = _commit(keccak256("root 1"), 3e8);
        _finalize(r1);
        EpochRecord memory r2 = _commit(keccak256("root 2"), 5e8);
        EpochRecord memory forged = _tamper(r2, 9, bytes32(uint256(0)));
        vm.expectRevert(
            abi.encodeWithSelector(
                IDistributorErrors.EpochRecordMismatch.selector,
                uint64(2),
                keccak256(abi.encode(forged)),
                keccak256(abi.encode(r2))
            )
        );
        _veto(forged);
    }

    // ---------------------------------------------------------------- lifecycle

    function testCommitEpochShouldChainOntoLastKeptEpochIfRecommittedAfterVeto() public {
        EpochRecord memory r1 = _commit(keccak256("root 1"), 1e8);
        EpochRecord memory r2 = _commit(keccak256("root 2"), 2e8);
        bytes32 vetoedHash = distributor.epochHash(2);
        _veto(r2);

        // Chaining onto the vetoed epoch fails both ways.
        EpochCommit memory c3 = _copy(r2).commit;
        c3.epoch = 3;
        c3.prevEpochHash = vetoedHash;
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.EpochNotNext.selector, uint64(3), uint64(2))
        );
        vm.prank(settler);
        distributor.commitEpoch(c3);

        // A corrected epoch 2 chains onto epoch 1 and is funded again.
        EpochRecord memory r2b = _commit(keccak256("root 2, corrected"), 1.5e8);
        vm.assertEq(r2b.commit.prevEpochHash, keccak256(abi.encode(r1)));
        vm.assertEq(r2b.prevTotalCumulative, 1e8);
        vm.assertEq(distributor.committedTotal(), 1.5e8);
        vm.assertEq(_held() - distributor.refundOwed(settler), 1.5e8);

        // The stale record of the vetoed epoch 2 no longer matches.
        vm.warp(r2b.finalizableAt);
        _finalize(r1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDistributorErrors.EpochRecordMismatch.selector,
                uint64(2),
                keccak256(abi.encode(r2)),
                keccak256(abi.encode(r2b))
            )
        );
        distributor.finalize(r2);
        distributor.finalize(r2b);
        vm.assertEq(distributor.finalizedRewardRoot(), keccak256("root 2, corrected"));
        vm.assertEq(distributor.finalizedTotal(), 1.5e8);
    }

    // ---------------------------------------------------------------- helpers

    /// @dev A deep copy (memory structs assign by reference).
    function _copy(EpochRecord memory r) internal pure returns (EpochRecord memory) {
        return abi.decode(abi.encode(r), (EpochRecord));
    }

    /// @dev `r` with one field (chosen by `field`) changed.
    function _tamper(EpochRecord memory r, uint8 field, bytes32 noise)
        internal
        pure
        returns (EpochRecord memory f)
    {
        f = _copy(r);
        uint256 which = field % 10;
        if (which == 0) f.commit.shareRoot = noise;
        else if (which == 1) f.commit.rewardRoot = noise;
        else if (which == 2) f.commit.totalCumulative = uint256(noise) % (uint256(type(uint128).max) + 1);
        else if (which == 3) f.commit.blocksHash = noise;
        else if (which == 4) f.commit.paramsHash = noise;
        else if (which == 5) f.commit.dataHash = noise;
        else if (which == 6) f.commit.prevEpochHash = noise;
        else if (which == 7) f.finalizableAt = uint64(uint256(noise) % (r.finalizableAt + 1));
        else if (which == 8) f.finalizableAt = uint64(uint256(noise));
        else f.prevTotalCumulative = uint256(noise);
    }

    /// @dev The first commitment for another distributor `d`.
    function _commitFor(Distributor d, bytes32 rewardRoot, uint256 total)
        internal
        pure
        returns (EpochCommit memory)
    {
        return EpochCommit({
            epoch: 1,
            shareRoot: keccak256("share"),
            rewardRoot: rewardRoot,
            totalCumulative: total,
            blocksHash: keccak256("blocks"),
            paramsHash: keccak256(abi.encode("params", address(d))),
            dataHash: keccak256("data"),
            prevEpochHash: bytes32(0)
        });
    }
}
