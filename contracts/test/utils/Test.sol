// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {vm} from "./Vm.sol";

/// @notice A minimal stand-in for forge-std's `Test`: logging events forge decodes, and `_bound`.
abstract contract Test {
    /// @dev Decoded and printed by forge at `-vv`, like forge-std's `console.log`.
    event log_named_uint(string key, uint256 val);

    /// @dev Maps `x` into `[min, max]`, leaving values already inside unchanged.
    function _bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "_bound: min > max");
        if (x >= min && x <= max) return x;
        uint256 size = max - min;
        if (size == type(uint256).max) return x;
        return min + x % (size + 1);
    }

    /// @dev The current timestamp. Tests read it through the cheatcode rather than `block.timestamp`,
    /// which the via-IR optimizer may cache across `vm.warp`.
    function _now() internal view returns (uint256) {
        return vm.getBlockTimestamp();
    }

    /// @dev A deterministic, mostly non-zero address, as a real miner's would be.
    function _addr(string memory name) internal returns (address a) {
        a = address(uint160(uint256(keccak256(bytes(name)))));
        vm.label(a, name);
    }
}
