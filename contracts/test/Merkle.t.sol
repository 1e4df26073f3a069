// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {RewardProof} from "../src/libraries/RewardProof.sol";
import {Merkle} from "./utils/Merkle.sol";
import {Test} from "./utils/Test.sol";
import {vm} from "./utils/Vm.sol";

/// @dev Exposes the library's calldata functions.
contract RewardProofHarness {
    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leafHash) external pure returns (bool) {
        return RewardProof.verify(proof, root, leafHash);
    }

    function leaf(address distributor, address account, uint256 cumulativeAmount)
        external
        view
        returns (bytes32)
    {
        return RewardProof.leaf(distributor, account, cumulativeAmount);
    }
}

/// @notice The test-side tree builder and the contract's proof library against OpenZeppelin's `MerkleProof`.
contract MerkleTest is Test {
    RewardProofHarness internal harness = new RewardProofHarness();

    function testMerkleRootShouldPromoteOddNodeIfLevelOdd() public pure {
        bytes32[] memory leaves = new bytes32[](5);
        for (uint256 i = 0; i < 5; ++i) {
            leaves[i] = keccak256(abi.encode(i));
        }
        bytes32 ab = Merkle.hashPair(leaves[0], leaves[1]);
        bytes32 cd = Merkle.hashPair(leaves[2], leaves[3]);
        // rs_merkle promotes the fifth leaf unchanged to the top level rather than pairing it with itself.
        vm.assertEq(Merkle.root(leaves), Merkle.hashPair(Merkle.hashPair(ab, cd), leaves[4]));
        vm.assertEq(Merkle.proof(leaves, 4).length, 1);
        vm.assertEq(Merkle.proof(leaves, 0).length, 3);
    }

    function testMerkleProofShouldVerifyWithOpenZeppelinIfAnySize(uint256 size, uint256 seed) public view {
        size = _bound(size, 1, 70);
        bytes32[] memory leaves = new bytes32[](size);
        for (uint256 i = 0; i < size; ++i) {
            leaves[i] = keccak256(abi.encode(seed, i));
        }
        bytes32 root = Merkle.root(leaves);
        for (uint256 i = 0; i < size; ++i) {
            bytes32[] memory proof = Merkle.proof(leaves, i);
            vm.assertTrue(MerkleProof.verify(proof, root, leaves[i]), "OpenZeppelin rejects the proof");
            vm.assertTrue(harness.verify(proof, root, leaves[i]), "RewardProof rejects the proof");
        }
    }

    function testRewardProofShouldMatchOpenZeppelinIfAnyProof(bytes32[] memory proof, bytes32 leafHash)
        public
        view
    {
        bytes32 root = MerkleProof.processProof(proof, leafHash);
        vm.assertTrue(harness.verify(proof, root, leafHash));
        vm.assertFalse(harness.verify(proof, root ^ bytes32(uint256(1)), leafHash));
        vm.assertFalse(harness.verify(proof, root, leafHash ^ bytes32(uint256(1))));
    }

    function testRewardProofShouldAcceptEqualSiblingsIfHashesCollide(bytes32 node, uint8 levels) public view {
        // Equal pairs are an edge of the sorted-pair layout: both halves must still be written.
        bytes32[] memory proof = new bytes32[](_bound(levels, 1, 8));
        bytes32 expected = node;
        for (uint256 i = 0; i < proof.length; ++i) {
            proof[i] = expected;
            expected = keccak256(abi.encode(expected, expected));
        }
        vm.assertTrue(harness.verify(proof, expected, node));
        vm.assertEq(MerkleProof.processProof(proof, node), expected);
    }

    function testRewardLeafShouldMatchAbiEncodingIfAnyInput(
        address distributor,
        address account,
        uint256 amount
    ) public view {
        bytes32 expected = keccak256(
            bytes.concat(keccak256(abi.encode(block.chainid, distributor, account, amount)))
        );
        vm.assertEq(harness.leaf(distributor, account, amount), expected);
    }
}
