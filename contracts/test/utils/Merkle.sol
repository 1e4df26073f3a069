// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice Test-side Merkle trees with proofpool's semantics (DESIGN.md, "Merkle trees"): inner nodes
/// hash the sorted pair, and an odd node at the end of a level is promoted unchanged (rs_merkle), not
/// paired with itself. Proofs verify with OpenZeppelin's `MerkleProof`.
library Merkle {
    /// @dev OpenZeppelin's commutative pair hash.
    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encode(a, b)) : keccak256(abi.encode(b, a));
    }

    /// @dev The root of `leaves`, in the order given. A single leaf is its own root.
    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        require(leaves.length != 0, "Merkle: no leaves");
        bytes32[] memory level = leaves;
        while (level.length > 1) {
            level = _up(level);
        }
        return level[0];
    }

    /// @dev The proof of `leaves[index]`: one sibling per level that has one (a promoted node has none).
    function proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory siblings) {
        require(index < leaves.length, "Merkle: index out of range");
        siblings = new bytes32[](256);
        uint256 n;
        bytes32[] memory level = leaves;
        while (level.length > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < level.length) siblings[n++] = level[sibling];
            level = _up(level);
            index >>= 1;
        }
        assembly ("memory-safe") {
            mstore(siblings, n)
        }
    }

    /// @dev The next level up: pairs hashed, a trailing odd node promoted.
    function _up(bytes32[] memory level) private pure returns (bytes32[] memory next) {
        uint256 len = level.length;
        next = new bytes32[]((len + 1) / 2);
        for (uint256 i = 0; i < len; i += 2) {
            next[i / 2] = i + 1 < len ? hashPair(level[i], level[i + 1]) : level[i];
        }
    }
}
