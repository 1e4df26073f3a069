// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Distributor} from "../../src/Distributor.sol";
import {MockBTC} from "../../src/MockBTC.sol";
import {IDistributorEvents} from "../../src/interfaces/IDistributorEvents.sol";
import {Change, Claim, EpochCommit, EpochRecord} from "../../src/interfaces/IDistributorTypes.sol";
import {Merkle} from "./Merkle.sol";
import {Test} from "./Test.sol";
import {vm} from "./Vm.sol";
import {poolParams} from "./Params.sol";

/// @notice A deployed distributor with a funded settler, and helpers to commit, finalize and claim.
abstract contract DistributorFixture is Test, IDistributorEvents {
    /// @dev A cumulative reward tree: leaves sorted by account, as the settlement service builds them.
    struct Tree {
        bytes32 root;
        address[] accounts;
        uint256[] amounts;
        bytes32[] leaves;
        uint256 total;
    }

    uint64 internal constant CHALLENGE = 1 days;
    uint256 internal constant START = 1_700_000_000;

    address internal owner;
    address internal settler;
    address internal guardian;
    address internal alice;
    address internal bob;
    address internal carol;

    MockBTC internal token;
    Distributor internal distributor;

    function setUp() public virtual {
        owner = _addr("owner");
        settler = _addr("settler");
        guardian = _addr("guardian");
        alice = _addr("alice");
        bob = _addr("bob");
        carol = _addr("carol");
        vm.warp(START);

        token = new MockBTC(address(this));
        distributor = new Distributor(token, owner, settler, guardian, CHALLENGE, poolParams(1, 100));
        token.mint(settler, type(uint128).max);
        // The escrow's lasting base unit, given up front: every commit in these tests then pulls exactly
        // its increase (the first commit's extra unit is tested on its own).
        token.mint(address(distributor.escrow()), 1);
        vm.prank(settler);
        token.approve(address(distributor), type(uint256).max);
    }

    /// @dev What the distributor holds in all: its claimable balance plus its escrow (the funding of pending
    /// epochs and the refunds owed), less the escrow's lasting base unit.
    function _held() internal view returns (uint256) {
        return token.balanceOf(address(distributor)) + token.balanceOf(address(distributor.escrow())) - 1;
    }

    // ---------------------------------------------------------------- trees

    /// @dev The reward leaf, computed independently of `Distributor.rewardLeaf`.
    function _leaf(address account, uint256 cumulativeAmount) internal view returns (bytes32) {
        return keccak256(
            bytes.concat(
                keccak256(abi.encode(block.chainid, address(distributor), account, cumulativeAmount))
            )
        );
    }

    /// @dev Builds the tree over `accounts` (any order, no duplicates) and their cumulative amounts.
    function _tree(address[] memory accounts, uint256[] memory amounts)
        internal
        view
        returns (Tree memory t)
    {
        require(accounts.length == amounts.length, "_tree: length mismatch");
        uint256 n = accounts.length;
        t.accounts = new address[](n);
        t.amounts = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            // Insertion sort by account: trees in tests are small.
            uint256 j = i;
            while (j > 0 && t.accounts[j - 1] > accounts[i]) {
                t.accounts[j] = t.accounts[j - 1];
                t.amounts[j] = t.amounts[j - 1];
                --j;
            }
            t.accounts[j] = accounts[i];
            t.amounts[j] = amounts[i];
        }
        t.leaves = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            t.leaves[i] = _leaf(t.accounts[i], t.amounts[i]);
            t.total += t.amounts[i];
        }
        t.root = Merkle.root(t.leaves);
    }

    function _tree2(address a, uint256 amountA, address b, uint256 amountB)
        internal
        view
        returns (Tree memory)
    {
        address[] memory accounts = new address[](2);
        uint256[] memory amounts = new uint256[](2);
        (accounts[0], accounts[1]) = (a, b);
        (amounts[0], amounts[1]) = (amountA, amountB);
        return _tree(accounts, amounts);
    }

    function _tree3(address a, uint256 amountA, address b, uint256 amountB, address c, uint256 amountC)
        internal
        view
        returns (Tree memory)
    {
        address[] memory accounts = new address[](3);
        uint256[] memory amounts = new uint256[](3);
        (accounts[0], accounts[1], accounts[2]) = (a, b, c);
        (amounts[0], amounts[1], amounts[2]) = (amountA, amountB, amountC);
        return _tree(accounts, amounts);
    }

    function _indexOf(Tree memory t, address account) internal pure returns (uint256) {
        for (uint256 i = 0; i < t.accounts.length; ++i) {
            if (t.accounts[i] == account) return i;
        }
        revert("_indexOf: account not in tree");
    }

    function _proof(Tree memory t, address account) internal pure returns (bytes32[] memory) {
        return Merkle.proof(t.leaves, _indexOf(t, account));
    }

    function _amountOf(Tree memory t, address account) internal pure returns (uint256) {
        return t.amounts[_indexOf(t, account)];
    }

    function _claimOf(Tree memory t, address account) internal pure returns (Claim memory) {
        uint256 i = _indexOf(t, account);
        return Claim({account: account, cumulativeAmount: t.amounts[i], proof: Merkle.proof(t.leaves, i)});
    }

    // ---------------------------------------------------------------- epochs

    /// @dev The next commitment the settler would make for `rewardRoot` and `totalCumulative`.
    function _nextCommit(bytes32 rewardRoot, uint256 totalCumulative)
        internal
        view
        returns (EpochCommit memory c)
    {
        uint64 last = distributor.lastCommittedEpoch();
        uint64 epoch = last + 1;
        c = EpochCommit({
            epoch: epoch,
            shareRoot: keccak256(abi.encode("share", epoch, rewardRoot)),
            rewardRoot: rewardRoot,
            totalCumulative: totalCumulative,
            blocksHash: keccak256(abi.encode("blocks", epoch)),
            paramsHash: keccak256("params"),
            dataHash: keccak256(abi.encode("data", epoch, rewardRoot)),
            prevEpochHash: distributor.epochHash(last)
        });
    }

    /// @dev The record the contract stores for `c` if committed now.
    function _recordOf(EpochCommit memory c) internal view returns (EpochRecord memory) {
        return EpochRecord({
            commit: c,
            finalizableAt: uint64(_now()) + distributor.challengePeriod(),
            prevTotalCumulative: distributor.committedTotal()
        });
    }

    function _commit(bytes32 rewardRoot, uint256 totalCumulative) internal returns (EpochRecord memory r) {
        r = _recordOf(_nextCommit(rewardRoot, totalCumulative));
        vm.prank(settler);
        distributor.commitEpoch(r.commit);
    }

    function _commit(Tree memory t) internal returns (EpochRecord memory) {
        return _commit(t.root, t.total);
    }

    /// @dev Waits out the challenge period if needed, then finalizes.
    function _finalize(EpochRecord memory r) internal {
        if (_now() < r.finalizableAt) vm.warp(r.finalizableAt);
        distributor.finalize(r);
    }

    function _commitAndFinalize(Tree memory t) internal returns (EpochRecord memory r) {
        r = _commit(t);
        _finalize(r);
    }

    function _veto(EpochRecord memory r) internal {
        vm.prank(guardian);
        distributor.veto(r);
    }

    // ---------------------------------------------------------------- roles

    /// @dev Queues `newSettler`, waits out the delay and applies it.
    function _changeSettler(address newSettler) internal {
        vm.prank(owner);
        distributor.queueSettler(newSettler);
        vm.warp(_now() + distributor.challengePeriod());
        distributor.applyChange(Change.Settler);
    }

    /// @dev Queues `newGuardian`, waits out the delay and applies it.
    function _changeGuardian(address newGuardian) internal {
        vm.prank(owner);
        distributor.queueGuardian(newGuardian);
        vm.warp(_now() + distributor.challengePeriod());
        distributor.applyChange(Change.Guardian);
    }
}
