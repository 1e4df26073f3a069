// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title FundingEscrow
/// @notice Holds the funding of committed epochs apart from the distributor's claimable balance, until each
/// epoch is finalized (then the distributor takes it in) or vetoed (then it is owed back to the settler).
/// Claims pay only from the distributor's own balance, which finalized epochs alone fill: no root, an
/// over-allocated one included, can reach the funding of pending epochs or the refunds vetoes owe, and the
/// total claimed can never pass the finalized total.
/// @dev Deployed by the distributor in its constructor; only that distributor can move its tokens.
contract FundingEscrow {
    using SafeERC20 for IERC20;

    /// @notice The reward token.
    IERC20 public immutable token;
    /// @notice The distributor this escrow serves.
    address public immutable distributor;

    /// @notice The caller is not the distributor.
    /// @param caller The caller.
    error NotDistributor(address caller);

    /// @param token_ The reward token.
    constructor(IERC20 token_) {
        token = token_;
        distributor = msg.sender;
    }

    /// @notice Pays `amount` to `to`. Distributor only.
    /// @param to The recipient: the distributor (a finalized epoch's funding) or a settler (a refund).
    /// @param amount The amount.
    function pay(address to, uint256 amount) external {
        if (msg.sender != distributor) revert NotDistributor(msg.sender);
        token.safeTransfer(to, amount);
    }
}
