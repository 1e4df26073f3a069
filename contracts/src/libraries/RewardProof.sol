// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title RewardProof
/// @notice The reward leaf and calldata Merkle proof verification on the claim path, in assembly.
/// @dev Same results as `keccak256(bytes.concat(keccak256(abi.encode(...))))` and OpenZeppelin's
/// `MerkleProof.verifyCalldata` (sorted-pair hashing); written out because a claim runs them for every
/// level of a proof and every claimer pays for it.
library RewardProof {
    /// @notice The reward leaf `keccak256(bytes.concat(keccak256(abi.encode(chainId, distributor, account,
    /// cumulativeAmount))))`.
    /// @param distributor The distributor the leaf is for.
    /// @param account The account.
    /// @param cumulativeAmount Its cumulative amount.
    /// @return hash The double-hashed leaf.
    function leaf(address distributor, address account, uint256 cumulativeAmount)
        internal
        view
        returns (bytes32 hash)
    {
        assembly ("memory-safe") {
            // Free memory is used as scratch and not allocated.
            let m := mload(0x40)
            mstore(m, chainid())
            mstore(add(m, 0x20), and(distributor, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x40), and(account, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x60), cumulativeAmount)
            mstore(0x00, keccak256(m, 0x80))
            hash := keccak256(0x00, 0x20)
        }
    }

    /// @notice Whether `proof` proves `leafHash` under `root`, hashing each pair in sorted order.
    /// @param proof The sibling hashes, from the leaf up.
    /// @param root The root.
    /// @param leafHash The leaf.
    /// @return valid True if the proof folds up to `root`.
    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leafHash)
        internal
        pure
        returns (bool valid)
    {
        assembly ("memory-safe") {
            let node := leafHash
            let p := proof.offset
            let end := add(p, shl(5, proof.length))
            // Each level hashes the sorted pair: `node` at 0x00 if it is the smaller, else at 0x20.
            // With an odd number of levels the first goes alone; the rest go two an iteration, which halves
            // the loop's bookkeeping (~15 gas a level, measured at 20 levels).
            if and(proof.length, 1) {
                let sibling := calldataload(p)
                let slot := shl(5, gt(node, sibling))
                mstore(slot, node)
                mstore(xor(slot, 0x20), sibling)
                node := keccak256(0x00, 0x40)
                p := add(p, 0x20)
            }
            if lt(p, end) {
                for {} 1 {} {
                    let sibling := calldataload(p)
                    let slot := shl(5, gt(node, sibling))
                    mstore(slot, node)
                    mstore(xor(slot, 0x20), sibling)
                    node := keccak256(0x00, 0x40)
                    sibling := calldataload(add(p, 0x20))
                    slot := shl(5, gt(node, sibling))
                    mstore(slot, node)
                    mstore(xor(slot, 0x20), sibling)
                    node := keccak256(0x00, 0x40)
                    p := add(p, 0x40)
                    if iszero(lt(p, end)) { break }
                }
            }
            valid := eq(node, root)
        }
    }
}
