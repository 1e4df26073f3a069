// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {PoolParams} from "../src/interfaces/IDistributorTypes.sol";
import {Distributor} from "../src/Distributor.sol";
import {MockBTC} from "../src/MockBTC.sol";

/// @notice The cheatcodes this script uses (forge-std is not on npm).
interface IScriptVm {
    function startBroadcast() external;
    function stopBroadcast() external;
    function envOr(string calldata name, address defaultValue) external view returns (address value);
    function envOr(string calldata name, uint256 defaultValue) external view returns (uint256 value);
    function envOr(string calldata name, bytes calldata defaultValue)
        external
        view
        returns (bytes memory value);
    function envOr(string calldata name, string calldata defaultValue)
        external
        view
        returns (string memory value);
}

/// @title Deploy
/// @notice Deploys the Distributor, and on a local chain a MockBTC to pay in when no token is given.
/// @dev Run with `forge script contracts/script/Deploy.s.sol --rpc-url <url> --broadcast --private-key <key>`.
/// Every setting comes from the environment and defaults to the broadcaster:
/// - `PROOFPOOL_TOKEN`: the reward token; required off local chains (31337, 1337), where a MockBTC owned
///   by the broadcaster is deployed if it is unset;
/// - `PROOFPOOL_OWNER`, `PROOFPOOL_SETTLER`, `PROOFPOOL_GUARDIAN`: the roles;
/// - `PROOFPOOL_CHALLENGE_PERIOD`: in seconds; 1 day by default, 10 seconds on local chains;
/// - `PROOFPOOL_MOCK_MINT`: base units of a newly deployed MockBTC to mint to the settler (default 0);
/// - the pool's parameters, pinned from the start: `PROOFPOOL_PAYOUT_SCRIPT` (hex `scriptPubKey`,
///   required), `PROOFPOOL_WINDOW_X` (2), `PROOFPOOL_FEE_BPS` (100), `PROOFPOOL_EPOCH_SECS` (3600),
///   `PROOFPOOL_MATURITY` (100), `PROOFPOOL_POOL_TAG` ("/proofpool/"); `tokenPerSat` is one token per
///   bitcoin for the token's decimals.
/// forge prints `run`'s return values, which are the addresses.
contract Deploy {
    IScriptVm internal constant VM = IScriptVm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint256 internal constant DEFAULT_CHALLENGE_PERIOD = 1 days;
    uint256 internal constant LOCAL_CHALLENGE_PERIOD = 10 seconds;

    /// @notice Thrown off local chains when `PROOFPOOL_TOKEN` is unset.
    error TokenRequired(uint256 chainId);
    /// @notice `PROOFPOOL_PAYOUT_SCRIPT` is unset.
    error PayoutScriptRequired();
    /// @notice A setting does not fit the contract's uint64.
    /// @param value The setting.
    error OutOfRange(uint256 value);

    /// @notice Deploys and returns the addresses.
    /// @return token The reward token (existing or newly deployed MockBTC).
    /// @return distributor The new Distributor.
    function run() external returns (address token, address distributor) {
        address broadcaster = msg.sender;
        bool local = block.chainid == 31337 || block.chainid == 1337;

        token = VM.envOr("PROOFPOOL_TOKEN", address(0));
        if (token == address(0) && !local) revert TokenRequired(block.chainid);
        address owner = VM.envOr("PROOFPOOL_OWNER", broadcaster);
        address settler = VM.envOr("PROOFPOOL_SETTLER", broadcaster);
        address guardian = VM.envOr("PROOFPOOL_GUARDIAN", broadcaster);
        uint256 period =
            VM.envOr("PROOFPOOL_CHALLENGE_PERIOD", local ? LOCAL_CHALLENGE_PERIOD : DEFAULT_CHALLENGE_PERIOD);
        if (period > type(uint64).max) revert OutOfRange(period);
        uint256 mint = VM.envOr("PROOFPOOL_MOCK_MINT", uint256(0));

        VM.startBroadcast();
        if (token == address(0)) {
            MockBTC mock = new MockBTC(broadcaster);
            if (mint != 0) mock.mint(settler, mint);
            token = address(mock);
        }
        // Safe: `period` was checked against `type(uint64).max` above.
        // forge-lint: disable-next-line(unsafe-typecast)
        uint64 challengePeriod = uint64(period);
        distributor = address(
            new Distributor(IERC20(token), owner, settler, guardian, challengePeriod, _params(token))
        );
        VM.stopBroadcast();
    }

    /// @dev The pool's parameters from the environment (see the contract's notes).
    function _params(address token) internal view returns (PoolParams memory p) {
        p.scoringVersion = 2;
        p.windowX = _u64("PROOFPOOL_WINDOW_X", 2);
        p.feeBps = _u64("PROOFPOOL_FEE_BPS", 100);
        p.epochSecs = _u64("PROOFPOOL_EPOCH_SECS", 3600);
        p.maturity = _u64("PROOFPOOL_MATURITY", 100);
        p.payoutScript = VM.envOr("PROOFPOOL_PAYOUT_SCRIPT", bytes(""));
        if (p.payoutScript.length == 0) revert PayoutScriptRequired();
        p.poolTag = bytes(VM.envOr("PROOFPOOL_POOL_TAG", string("/proofpool/")));
        p.tokenPerSat = 10 ** (IERC20Metadata(token).decimals() - 8);
        // PROOFPOOL_SCHEME: 0 PPLNS, 1 PPS, 2 FPPS (the distributor refuses anything else).
        uint64 scheme = _u64("PROOFPOOL_SCHEME", 0);
        if (scheme > type(uint8).max) revert OutOfRange(scheme);
        // forge-lint: disable-next-line(unsafe-typecast)
        p.scheme = uint8(scheme);
    }

    /// @dev A uint64 setting from the environment.
    function _u64(string memory name, uint64 defaultValue) internal view returns (uint64) {
        uint256 value = VM.envOr(name, uint256(defaultValue));
        if (value > type(uint64).max) revert OutOfRange(value);
        // Safe: checked against `type(uint64).max` above.
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint64(value);
    }
}
