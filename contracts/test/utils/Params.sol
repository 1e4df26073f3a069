// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {PoolParams} from "../../src/interfaces/IDistributorTypes.sol";

/// @notice Pool parameters a distributor accepts, for a token with `tokenPerSat` base units per satoshi
/// (1 for an 8-decimal token, 1e10 for an 18-decimal one); `feeBps` varies the hash.
function poolParams(uint256 tokenPerSat, uint64 feeBps) pure returns (PoolParams memory) {
    return PoolParams({
        scoringVersion: 2,
        windowX: 2,
        feeBps: feeBps,
        tokenPerSat: tokenPerSat,
        payoutScript: hex"0014000102030405060708090a0b0c0d0e0f10111213",
        epochSecs: 3600,
        maturity: 100,
        poolTag: "/proofpool/",
        scheme: 0
    });
}
