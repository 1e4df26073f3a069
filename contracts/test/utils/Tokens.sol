// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A token with a blocklist, as USDC has: no transfer from or to a blocked account succeeds.
contract BlockingToken is ERC20 {
    /// @notice A transfer touched a blocked account.
    /// @param account The blocked account.
    error Blocked(address account);

    /// @notice Whether an account is blocked.
    mapping(address account => bool) public blocked;

    constructor() ERC20("Blocking", "BLK") {}

    /// @notice Mints `amount` to `to`.
    /// @param to The recipient.
    /// @param amount The amount.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Blocks or unblocks `account`.
    /// @param account The account.
    /// @param isBlocked Whether it is blocked.
    function setBlocked(address account, bool isBlocked) external {
        blocked[account] = isBlocked;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (blocked[from]) revert Blocked(from);
        if (blocked[to]) revert Blocked(to);
        super._update(from, to, value);
    }
}

/// @notice A token that burns 1% of every transfer (a fee-on-transfer token).
contract FeeToken is ERC20 {
    constructor() ERC20("Fee", "FEE") {}

    /// @notice Mints `amount` to `to`.
    /// @param to The recipient.
    /// @param amount The amount.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        uint256 fee = value / 100;
        super._update(from, address(0), fee);
        super._update(from, to, value - fee);
    }
}
