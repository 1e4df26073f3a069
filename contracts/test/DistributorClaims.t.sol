// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IDistributorErrors} from "../src/interfaces/IDistributorErrors.sol";
import {Claim, EpochRecord} from "../src/interfaces/IDistributorTypes.sol";
import {DistributorFixture} from "./utils/DistributorFixture.sol";
import {Merkle} from "./utils/Merkle.sol";
import {vm} from "./utils/Vm.sol";

/// @notice Claims against the newest finalized reward root.
contract DistributorClaimsTest is DistributorFixture {
    /// @dev 21 million BTC in satoshis: no account or total is larger.
    uint256 internal constant MAX_AMOUNT = 21e14;

    // ---------------------------------------------------------------- bounded claims

    /// @notice A root that promises more than its epoch funded (the guardian should have vetoed it, but
    /// it was finalized): the thief is paid at most the finalized total, and the funding of the pending
    /// epoch and the refunds owed stay in the escrow, out of reach.
    function testClaimShouldNeverReachPendingFundingIfRootOverAllocated() public {
        // Finalized: the thief's leaf alone promises 10 BTC, the epoch funded 1 BTC.
        Tree memory forged = _tree2(carol, 10e8, alice, 0);
        EpochRecord memory r1 = _commit(forged.root, 1e8);
        _finalize(r1);
        // Pending: honest miners' 6 BTC, of which 5 are new funding waiting in the escrow.
        Tree memory honest = _tree2(alice, 3e8, bob, 3e8);
        _commit(honest.root, 6e8);
        address held = address(distributor.escrow());
        vm.assertEq(token.balanceOf(held), 5e8 + 1, "the pending epoch's funding (and the lasting unit)");

        // The thief's claim would pay 10 BTC from a claimable balance of 1 BTC: it reverts, moving nothing.
        vm.prank(carol);
        vm.expectRevert();
        distributor.claim(carol, 10e8, _proof(forged, carol));
        vm.assertEq(token.balanceOf(carol), 0);
        vm.assertEq(token.balanceOf(held), 5e8 + 1, "the escrow is untouched");
        vm.assertEq(token.balanceOf(address(distributor)), 1e8);
        vm.assertEq(distributor.claimed(carol), 0);
    }

    /// @notice Whatever a finalized root says, the total paid never passes the finalized total: leaves that
    /// together promise more are paid in order until the claimable balance runs dry.
    function testClaimsShouldStopAtFinalizedTotalIfRootOverAllocated(uint256 a, uint256 b) public {
        a = _bound(a, 1, MAX_AMOUNT);
        b = _bound(b, 1, MAX_AMOUNT);
        uint256 funded = (a + b) / 2;
        vm.assume(funded >= a && funded < a + b);
        Tree memory t = _tree2(alice, a, bob, b);
        _commitAndFinalize(_withTotal(t, funded));
        vm.assertEq(distributor.claim(alice, a, _proof(t, alice)), a);
        vm.expectRevert();
        distributor.claim(bob, b, _proof(t, bob));
        vm.assertLe(token.balanceOf(alice) + token.balanceOf(bob), distributor.finalizedTotal());
    }

    /// @dev `t` committed with another total (the leaves unchanged).
    function _withTotal(Tree memory t, uint256 total) internal pure returns (Tree memory) {
        t.total = total;
        return t;
    }

    // ---------------------------------------------------------------- claim

    function testClaimShouldPayAccountAndEmitIfThirdPartyCalls(
        uint256 amountA,
        uint256 amountB,
        address caller
    ) public {
        amountA = _bound(amountA, 1, MAX_AMOUNT);
        amountB = _bound(amountB, 0, MAX_AMOUNT);
        vm.assume(caller != alice && caller != address(distributor));
        Tree memory t = _tree2(alice, amountA, bob, amountB);
        _commitAndFinalize(t);
        uint256 callerBefore = token.balanceOf(caller);

        vm.expectEmit(address(distributor));
        emit Claimed(alice, amountA, amountA);
        vm.prank(caller);
        uint256 paid = distributor.claim(alice, amountA, _proof(t, alice));

        vm.assertEq(paid, amountA);
        vm.assertEq(token.balanceOf(alice), amountA, "paid to the account");
        vm.assertEq(token.balanceOf(caller), callerBefore, "never to the caller");
        vm.assertEq(distributor.claimed(alice), amountA);
        vm.assertEq(_held(), amountB);
    }

    function testClaimShouldPayOnlyTheDifferenceIfCumulativeGrowsAcrossEpochs(uint256 a1, uint256 a2) public {
        a1 = _bound(a1, 1, MAX_AMOUNT);
        a2 = _bound(a2, a1 + 1, MAX_AMOUNT + 1);
        Tree memory t1 = _tree2(alice, a1, bob, 1e8);
        _commitAndFinalize(t1);
        vm.assertEq(distributor.claim(alice, a1, _proof(t1, alice)), a1);

        Tree memory t2 = _tree2(alice, a2, bob, 2e8);
        _commitAndFinalize(t2);
        vm.expectEmit(address(distributor));
        emit Claimed(alice, a2 - a1, a2);
        uint256 paid = distributor.claim(alice, a2, _proof(t2, alice));

        vm.assertEq(paid, a2 - a1);
        vm.assertEq(token.balanceOf(alice), a2);
        vm.assertEq(distributor.claimed(alice), a2);
    }

    function testClaimShouldPayWholeCumulativeIfEarlierEpochsUnclaimed(uint256 a1, uint256 a2) public {
        a1 = _bound(a1, 0, MAX_AMOUNT);
        a2 = _bound(a2, a1 + 1, MAX_AMOUNT + 1);
        _commitAndFinalize(_tree2(alice, a1, bob, 1e8));
        Tree memory t2 = _tree2(alice, a2, bob, 2e8);
        _commitAndFinalize(t2);
        vm.assertEq(distributor.claim(alice, a2, _proof(t2, alice)), a2, "one claim covers every epoch");
    }

    function testClaimShouldRevertIfNothingToClaim(uint256 amount) public {
        amount = _bound(amount, 1, MAX_AMOUNT);
        Tree memory t = _tree2(alice, amount, bob, 1e8);
        _commitAndFinalize(t);
        bytes32[] memory proof = _proof(t, alice);
        distributor.claim(alice, amount, proof);

        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.NothingToClaim.selector, alice, amount, amount)
        );
        distributor.claim(alice, amount, proof);
        vm.assertEq(token.balanceOf(alice), amount, "a second claim pays nothing");
    }

    function testClaimShouldRevertIfCumulativeUnchangedInNewerEpoch(uint256 amount) public {
        amount = _bound(amount, 1, MAX_AMOUNT);
        Tree memory t1 = _tree2(alice, amount, bob, 1e8);
        _commitAndFinalize(t1);
        distributor.claim(alice, amount, _proof(t1, alice));
        Tree memory t2 = _tree2(alice, amount, bob, 3e8);
        _commitAndFinalize(t2);

        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.NothingToClaim.selector, alice, amount, amount)
        );
        distributor.claim(alice, amount, _proof(t2, alice));
    }

    function testClaimShouldRevertIfLeafAmountIsZero() public {
        Tree memory t = _tree2(alice, 0, bob, 1e8);
        _commitAndFinalize(t);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NothingToClaim.selector, alice, 0, 0));
        distributor.claim(alice, 0, _proof(t, alice));
    }

    function testClaimShouldRevertIfNoFinalizedEpoch() public {
        // Even with a pending epoch whose proof is valid.
        Tree memory t = _tree2(alice, 1e8, bob, 1e8);
        _commit(t);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NoFinalizedEpoch.selector));
        distributor.claim(alice, 1e8, _proof(t, alice));
    }

    function testClaimShouldRevertIfProofForAnotherAccount(uint256 amountA, uint256 amountB) public {
        amountA = _bound(amountA, 1, MAX_AMOUNT);
        amountB = _bound(amountB, 1, MAX_AMOUNT);
        Tree memory t = _tree3(alice, amountA, bob, amountB, carol, 5e8);
        _commitAndFinalize(t);
        bytes32[] memory aliceProof = _proof(t, alice);

        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.InvalidProof.selector, bob, amountA));
        distributor.claim(bob, amountA, aliceProof);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.InvalidProof.selector, carol, amountA));
        distributor.claim(carol, amountA, aliceProof);
    }

    function testClaimShouldRevertIfProofForAnotherAmount(uint256 amount, uint256 claimedAmount) public {
        amount = _bound(amount, 1, MAX_AMOUNT);
        vm.assume(claimedAmount != amount);
        Tree memory t = _tree2(alice, amount, bob, 1e8);
        _commitAndFinalize(t);
        vm.expectRevert(
            abi.encodeWithSelector(IDistributorErrors.InvalidProof.selector, alice, claimedAmount)
        );
        distributor.claim(alice, claimedAmount, _proof(t, alice));
    }

    function testClaimShouldRevertIfProofTampered(uint256 index, bytes32 noise) public {
        Tree memory t = _tree3(alice, 1e8, bob, 2e8, carol, 3e8);
        _commitAndFinalize(t);
        bytes32[] memory proof = _proof(t, alice);
        index = _bound(index, 0, proof.length - 1);
        vm.assume(noise != proof[index]);
        proof[index] = noise;
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.InvalidProof.selector, alice, 1e8));
        distributor.claim(alice, 1e8, proof);
    }

    function testClaimShouldPayIfProofForPreviousFinalizedRoot(uint256 a1, uint256 a2) public {
        a1 = _bound(a1, 1, MAX_AMOUNT);
        a2 = _bound(a2, a1 + 1, MAX_AMOUNT + 1);
        Tree memory t1 = _tree2(alice, a1, bob, 1e8);
        _commitAndFinalize(t1);
        Tree memory t2 = _tree2(alice, a2, bob, 2e8);
        // Someone finalizes epoch 2 while alice's claim, built against epoch 1, is in flight: it pays.
        _commitAndFinalize(t2);
        vm.assertEq(distributor.previousRewardRoot(), t1.root);
        vm.assertEq(distributor.claim(alice, a1, _proof(t1, alice)), a1);
        // The rest comes with the newest root.
        vm.assertEq(distributor.claim(alice, a2, _proof(t2, alice)), a2 - a1);
    }

    function testClaimShouldRevertIfRootTwoFinalizationsOld(uint256 a1, uint256 a2) public {
        a1 = _bound(a1, 1, MAX_AMOUNT);
        a2 = _bound(a2, a1 + 1, MAX_AMOUNT + 1);
        Tree memory t1 = _tree2(alice, a1, bob, 1e8);
        _commitAndFinalize(t1);
        _commitAndFinalize(_tree2(alice, a1, bob, 2e8));
        Tree memory t3 = _tree2(alice, a2, bob, 3e8);
        _commitAndFinalize(t3);

        // The proof was valid against epoch 1's root, neither the newest nor the previous one.
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.InvalidProof.selector, alice, a1));
        distributor.claim(alice, a1, _proof(t1, alice));
        vm.assertEq(distributor.claim(alice, a2, _proof(t3, alice)), a2);
    }

    function testClaimShouldRevertIfRootOnlyPending(uint256 a1, uint256 a2) public {
        a1 = _bound(a1, 1, MAX_AMOUNT);
        a2 = _bound(a2, a1 + 1, MAX_AMOUNT + 1);
        Tree memory t1 = _tree2(alice, a1, bob, 1e8);
        _commitAndFinalize(t1);
        Tree memory t2 = _tree2(alice, a2, bob, 2e8);
        _commit(t2);

        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.InvalidProof.selector, alice, a2));
        distributor.claim(alice, a2, _proof(t2, alice));
        vm.assertEq(distributor.claim(alice, a1, _proof(t1, alice)), a1, "the finalized root still pays");
    }

    function testClaimShouldRevertIfTreeBuiltForAnotherChain(uint64 chainId) public {
        vm.assume(chainId != block.chainid);
        Tree memory t = _tree2(alice, 1e8, bob, 2e8);
        _commitAndFinalize(t);
        vm.chainId(chainId);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.InvalidProof.selector, alice, 1e8));
        distributor.claim(alice, 1e8, _proof(t, alice));
    }

    function testClaimShouldPayIfTreeHasOneLeaf(uint256 amount) public {
        amount = _bound(amount, 1, MAX_AMOUNT);
        address[] memory accounts = new address[](1);
        uint256[] memory amounts = new uint256[](1);
        (accounts[0], amounts[0]) = (alice, amount);
        Tree memory t = _tree(accounts, amounts);
        vm.assertEq(t.root, _leaf(alice, amount), "a single leaf is the root");
        _commitAndFinalize(t);
        vm.assertEq(distributor.claim(alice, amount, new bytes32[](0)), amount);
    }

    function testClaimShouldPayPromotedLeafIfTreeSizeOdd() public {
        Tree memory t = _tree3(alice, 1e8, bob, 2e8, carol, 3e8);
        // The third leaf is promoted past the bottom level: its proof has a single sibling.
        vm.assertEq(t.root, Merkle.hashPair(Merkle.hashPair(t.leaves[0], t.leaves[1]), t.leaves[2]));
        address last = t.accounts[2];
        vm.assertEq(_proof(t, last).length, 1);
        _commitAndFinalize(t);
        for (uint256 i = 0; i < 3; ++i) {
            address a = t.accounts[i];
            vm.assertEq(distributor.claim(a, t.amounts[i], _proof(t, a)), t.amounts[i]);
        }
        vm.assertEq(_held(), 0);
    }

    function testClaimShouldPayEveryLeafIfTreeHasAnySize(uint256 size, uint256 seed) public {
        size = _bound(size, 1, 40);
        address[] memory accounts = new address[](size);
        uint256[] memory amounts = new uint256[](size);
        for (uint256 i = 0; i < size; ++i) {
            accounts[i] = address(uint160(uint256(keccak256(abi.encode(seed, "account", i)))));
            amounts[i] = uint256(keccak256(abi.encode(seed, "amount", i))) % 1e9 + 1;
        }
        Tree memory t = _tree(accounts, amounts);
        _commitAndFinalize(t);
        for (uint256 i = 0; i < size; ++i) {
            address a = t.accounts[i];
            vm.assertEq(distributor.claim(a, t.amounts[i], _proof(t, a)), t.amounts[i]);
            vm.assertEq(token.balanceOf(a), t.amounts[i]);
        }
        vm.assertEq(_held(), 0, "honest trees pay out exactly the total");
    }

    // ---------------------------------------------------------------- claimMany

    function testClaimManyShouldPayEveryEntryAndEmitIfProofsValid(uint256 a, uint256 b, uint256 c) public {
        a = _bound(a, 1, MAX_AMOUNT);
        b = _bound(b, 1, MAX_AMOUNT);
        c = _bound(c, 1, MAX_AMOUNT);
        Tree memory t = _tree3(alice, a, bob, b, carol, c);
        _commitAndFinalize(t);
        Claim[] memory claims = new Claim[](3);
        claims[0] = _claimOf(t, carol);
        claims[1] = _claimOf(t, alice);
        claims[2] = _claimOf(t, bob);

        vm.expectEmit(address(distributor));
        emit Claimed(carol, c, c);
        vm.expectEmit(address(distributor));
        emit Claimed(alice, a, a);
        vm.expectEmit(address(distributor));
        emit Claimed(bob, b, b);
        uint256 total = distributor.claimMany(claims);

        vm.assertEq(total, a + b + c);
        vm.assertEq(token.balanceOf(alice), a);
        vm.assertEq(token.balanceOf(bob), b);
        vm.assertEq(token.balanceOf(carol), c);
        vm.assertEq(_held(), 0);
    }

    function testClaimManyShouldSkipEntriesIfNothingToClaim(uint256 a, uint256 b) public {
        a = _bound(a, 1, MAX_AMOUNT);
        b = _bound(b, 1, MAX_AMOUNT);
        Tree memory t = _tree3(alice, a, bob, b, carol, 0);
        _commitAndFinalize(t);
        distributor.claim(alice, a, _proof(t, alice));

        // alice has claimed, carol's leaf is zero, bob is listed twice: only bob is paid, once.
        Claim[] memory claims = new Claim[](4);
        claims[0] = _claimOf(t, alice);
        claims[1] = _claimOf(t, bob);
        claims[2] = _claimOf(t, carol);
        claims[3] = _claimOf(t, bob);
        vm.expectEmit(address(distributor));
        emit Claimed(bob, b, b);
        uint256 total = distributor.claimMany(claims);

        vm.assertEq(total, b);
        vm.assertEq(token.balanceOf(alice), a);
        vm.assertEq(token.balanceOf(bob), b);
        vm.assertEq(token.balanceOf(carol), 0);
        vm.assertEq(distributor.claimed(alice), a);
        vm.assertEq(distributor.claimed(carol), 0);

        // A batch with nothing left to pay succeeds and pays nothing.
        vm.assertEq(distributor.claimMany(claims), 0);
    }

    function testClaimManyShouldRevertIfAnyProofInvalid(uint256 bad) public {
        Tree memory t = _tree3(alice, 1e8, bob, 2e8, carol, 3e8);
        _commitAndFinalize(t);
        Claim[] memory claims = new Claim[](3);
        claims[0] = _claimOf(t, alice);
        claims[1] = _claimOf(t, bob);
        claims[2] = _claimOf(t, carol);
        bad = _bound(bad, 0, 2);
        claims[bad].cumulativeAmount += 1;

        vm.expectRevert(
            abi.encodeWithSelector(
                IDistributorErrors.InvalidProof.selector, claims[bad].account, claims[bad].cumulativeAmount
            )
        );
        distributor.claimMany(claims);
        vm.assertEq(
            token.balanceOf(alice) + token.balanceOf(bob) + token.balanceOf(carol), 0, "all or nothing"
        );
    }

    function testClaimManyShouldRevertIfNoFinalizedEpoch() public {
        Tree memory t = _tree2(alice, 1e8, bob, 1e8);
        _commit(t);
        Claim[] memory claims = new Claim[](1);
        claims[0] = _claimOf(t, alice);
        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.NoFinalizedEpoch.selector));
        distributor.claimMany(claims);
    }

    function testClaimManyShouldReturnZeroIfEmpty() public {
        _commitAndFinalize(_tree2(alice, 1e8, bob, 1e8));
        vm.assertEq(distributor.claimMany(new Claim[](0)), 0);
    }

    // ---------------------------------------------------------------- lifecycle

    function testClaimShouldFollowFinalizedRootIfEpochVetoedAndRecommitted() public {
        Tree memory t1 = _tree2(alice, 1e8, bob, 1e8);
        _commitAndFinalize(t1);
        // A bad epoch 2 that overpays alice is vetoed; its proofs never become claimable.
        Tree memory bad = _tree2(alice, 9e8, bob, 1e8);
        EpochRecord memory rBad = _commit(bad);
        _veto(rBad);
        Tree memory good = _tree2(alice, 2e8, bob, 1e8);
        _commitAndFinalize(good);

        vm.expectRevert(abi.encodeWithSelector(IDistributorErrors.InvalidProof.selector, alice, 9e8));
        distributor.claim(alice, 9e8, _proof(bad, alice));
        vm.assertEq(distributor.claim(alice, 2e8, _proof(good, alice)), 2e8);
        vm.assertEq(distributor.claim(bob, 1e8, _proof(good, bob)), 1e8);
        // What is left is the vetoed funding, owed to the settler until it withdraws it.
        vm.assertEq(_held(), distributor.refundOwed(settler));
        vm.prank(settler);
        distributor.withdrawRefund();
        vm.assertEq(_held(), 0);
    }
}
