// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title MockBTC
/// @notice An 8-decimal stand-in for WBTC or cbBTC on local chains. Only the owner mints.
contract MockBTC is ERC20, Ownable {
    /// @param owner_ The account allowed to mint.
    constructor(address owner_) ERC20("Mock Bitcoin", "mBTC") Ownable(owner_) {}

    /// @notice Satoshi precision, as WBTC.
    /// @return 8.
    function decimals() public pure override returns (uint8) {
        return 8;
    }

    /// @notice Mints `amount` to `to`. Owner only.
    /// @param to The recipient.
    /// @param amount The amount in base units.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
