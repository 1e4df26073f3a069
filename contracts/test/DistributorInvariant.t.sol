// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Distributor} from "../src/Distributor.sol";
import {MockBTC} from "../src/MockBTC.sol";
import {IDistributorErrors} from "../src/interfaces/IDistributorErrors.sol";
import {Change, Claim, EpochCommit, EpochRecord} from "../src/interfaces/IDistributorTypes.sol";
import {Merkle} from "./utils/Merkle.sol";
import {Test} from "./utils/Test.sol";
import {vm} from "./utils/Vm.sol";
import {poolParams} from "./utils/Params.sol";

/// @notice Drives the distributor the way the pool does, at random: an honest settler commits trees over a
/// fixed set of accounts whose cumulative amounts only grow, the guardian vetoes, anyone finalizes and
/// claims. It keeps a model of every committed epoch and ghost totals of what was paid.
/// @dev Invariant runs do not fail on a handler revert (`fail_on_revert = false`), so any check that fails
/// inside an action is counted in `violations` instead, and an invariant requires it to stay zero.
contract DistributorHandler is Test {
    uint256 internal constant ACCOUNTS = 5;
    uint256 internal constant MAX_INCREMENT = 1e8;
    uint64 internal constant MAX_PERIOD = 3 days;

    Distributor public distributor;
    MockBTC public token;
    address public owner;
    address public settler;
    address public guardian;

    /// @dev Sorted ascending, as reward leaves are.
    address[] public accounts;
    /// @dev The record of each committed epoch (rolled-back epochs are overwritten on re-commit).
    mapping(uint64 epoch => EpochRecord) internal _records;
    /// @dev Each committed epoch's cumulative amount per account, in `accounts` order.
    mapping(uint64 epoch => uint256[]) internal _amounts;
    /// @dev The highest epoch number ever committed, vetoed or not.
    uint64 public maxEpochEverCommitted;

    uint256 public ghostTotalClaimed;
    /// @dev The highest cumulative amount any finalized root gave each account, in `accounts` order.
    uint256[ACCOUNTS] public maxFinalized;
    /// @dev Total refunds the settler withdrew.
    uint256 public ghostRefunded;
    mapping(address account => uint256) public ghostPaid;
    uint256 public violations;
    string public lastViolation;
    mapping(bytes4 action => uint256) public calls;

    constructor(
        Distributor distributor_,
        MockBTC token_,
        address owner_,
        address settler_,
        address guardian_
    ) {
        distributor = distributor_;
        token = token_;
        owner = owner_;
        settler = settler_;
        guardian = guardian_;
        for (uint256 i = 0; i < ACCOUNTS; ++i) {
            address a = address(uint160(uint256(keccak256(abi.encode("miner", i)))));
            uint256 j = accounts.length;
            accounts.push(a);
            while (j > 0 && accounts[j - 1] > a) {
                accounts[j] = accounts[j - 1];
                --j;
            }
            accounts[j] = a;
        }
    }

    // ---------------------------------------------------------------- actions

    /// @notice The settler commits the next epoch, each account's cumulative amount growing by a random
    /// increment (often zero). One commit in eight is over-allocated (its leaves promise twice the total it
    /// funds) and one in eight lowers some accounts' amounts: a dishonest settler's roots, which the
    /// guardian should veto but which may be finalized all the same.
    function commit(uint256 seed) external {
        calls[this.commit.selector]++;
        uint64 last = distributor.lastCommittedEpoch();
        uint64 epoch = last + 1;
        uint256[] memory amounts = _amountsAt(last);
        uint256 mode = seed % 8;
        uint256 total;
        for (uint256 i = 0; i < ACCOUNTS; ++i) {
            uint256 rand = uint256(keccak256(abi.encode(seed, i)));
            if (mode == 1 && rand % 4 == 0) amounts[i] /= 2;
            else if (rand % 3 != 0) amounts[i] += rand % MAX_INCREMENT;
            total += amounts[i];
        }
        if (mode == 0) total /= 2;
        // The contract refuses a total that decreases.
        uint256 prevTotal = distributor.committedTotal();
        if (total < prevTotal) total = prevTotal;
        EpochCommit memory c = EpochCommit({
            epoch: epoch,
            shareRoot: keccak256(abi.encode("share", seed)),
            rewardRoot: Merkle.root(_leaves(amounts)),
            totalCumulative: total,
            blocksHash: keccak256(abi.encode("blocks", seed)),
            paramsHash: keccak256("params"),
            dataHash: keccak256(abi.encode("data", seed)),
            prevEpochHash: distributor.epochHash(last)
        });
        EpochRecord memory r = EpochRecord({
            commit: c,
            finalizableAt: uint64(_now()) + distributor.challengePeriod(),
            prevTotalCumulative: distributor.committedTotal()
        });
        uint256 settlerBefore = token.balanceOf(settler);
        vm.prank(settler);
        bytes32 hash = distributor.commitEpoch(c);
        _check(hash == keccak256(abi.encode(r)), "commit: hash");
        _check(
            settlerBefore - token.balanceOf(settler) == total - r.prevTotalCumulative, "commit: pulled amount"
        );

        _records[epoch] = r;
        _amounts[epoch] = amounts;
        if (epoch > maxEpochEverCommitted) maxEpochEverCommitted = epoch;
    }

    /// @notice The guardian vetoes a random pending epoch that is still inside its challenge period.
    function veto(uint256 seed) external {
        calls[this.veto.selector]++;
        uint64 lastFinalized = distributor.lastFinalizedEpoch();
        uint64 lastCommitted = distributor.lastCommittedEpoch();
        if (lastCommitted == lastFinalized) return;
        uint64 epoch = uint64(_bound(seed, lastFinalized + 1, lastCommitted));
        EpochRecord memory r = _records[epoch];
        if (_now() >= r.finalizableAt) return;

        uint256 committedBefore = distributor.committedTotal();
        uint256 owedBefore = distributor.refundOwed(settler);
        uint256 balanceBefore = token.balanceOf(address(distributor));
        vm.prank(guardian);
        distributor.veto(r);
        _check(distributor.lastCommittedEpoch() == epoch - 1, "veto: later epochs kept");
        _check(distributor.committedTotal() == r.prevTotalCumulative, "veto: total kept");
        _check(
            distributor.refundOwed(settler) - owedBefore == committedBefore - r.prevTotalCumulative,
            "veto: refund owed"
        );
        _check(token.balanceOf(address(distributor)) == balanceBefore, "veto: moved tokens");
    }

    /// @notice The settler withdraws what vetoes refunded to it, if anything.
    function withdrawRefund() external {
        calls[this.withdrawRefund.selector]++;
        uint256 owed = distributor.refundOwed(settler);
        if (owed == 0) return;
        uint256 settlerBefore = token.balanceOf(settler);
        vm.prank(settler);
        uint256 paid = distributor.withdrawRefund();
        _check(paid == owed && token.balanceOf(settler) - settlerBefore == owed, "withdrawRefund: paid");
        _check(distributor.refundOwed(settler) == 0, "withdrawRefund: still owed");
        ghostRefunded += paid;
    }

    /// @notice Time passes, then anyone finalizes the next pending epoch if its challenge period is over.
    function finalize(uint256 delay) external {
        calls[this.finalize.selector]++;
        vm.warp(_now() + _bound(delay, 0, 2 * uint256(MAX_PERIOD)));
        uint64 epoch = distributor.lastFinalizedEpoch() + 1;
        if (epoch > distributor.lastCommittedEpoch()) return;
        EpochRecord memory r = _records[epoch];
        if (_now() < r.finalizableAt) return;
        distributor.finalize(r);
        uint256[] storage amounts = _amounts[epoch];
        for (uint256 i = 0; i < ACCOUNTS; ++i) {
            if (amounts[i] > maxFinalized[i]) maxFinalized[i] = amounts[i];
        }
        _check(distributor.finalizedRewardRoot() == r.commit.rewardRoot, "finalize: root");
        _check(distributor.finalizedTotal() == r.commit.totalCumulative, "finalize: total");
    }

    /// @notice Anyone tries to finalize the next pending epoch before its challenge period is over: it must
    /// revert and change nothing.
    function finalizeEarly(uint256 delay) external {
        calls[this.finalizeEarly.selector]++;
        uint64 epoch = distributor.lastFinalizedEpoch() + 1;
        if (epoch > distributor.lastCommittedEpoch()) return;
        EpochRecord memory r = _records[epoch];
        if (_now() >= r.finalizableAt) return;
        vm.warp(_bound(delay, _now(), r.finalizableAt - 1));
        try distributor.finalize(r) {
            _violation("finalize: early");
        } catch {}
        _check(distributor.lastFinalizedEpoch() == epoch - 1, "finalize: early moved head");
    }

    /// @notice The guardian tries to veto a pending epoch whose challenge period is over: it must revert and
    /// change nothing.
    function vetoLate(uint256 seed) external {
        calls[this.vetoLate.selector]++;
        uint64 lastFinalized = distributor.lastFinalizedEpoch();
        uint64 lastCommitted = distributor.lastCommittedEpoch();
        if (lastCommitted == lastFinalized) return;
        uint64 epoch = uint64(_bound(seed, lastFinalized + 1, lastCommitted));
        EpochRecord memory r = _records[epoch];
        if (_now() < r.finalizableAt) return;
        vm.prank(guardian);
        try distributor.veto(r) {
            _violation("veto: late");
        } catch {}
        _check(distributor.lastCommittedEpoch() == lastCommitted, "veto: a late veto rolled back");
    }

    /// @notice Time passes.
    function warp(uint256 delay) external {
        calls[this.warp.selector]++;
        vm.warp(_now() + _bound(delay, 0, MAX_PERIOD));
    }

    /// @notice The owner queues a new challenge period for later commits.
    function queueChallengePeriod(uint256 period) external {
        calls[this.queueChallengePeriod.selector]++;
        vm.prank(owner);
        distributor.queueChallengePeriod(uint64(_bound(period, 0, MAX_PERIOD)));
    }

    /// @notice Anyone applies the queued challenge period: inside its delay it must revert and change
    /// nothing (the owner cannot shorten the window under a pending epoch).
    function applyChallengePeriod() external {
        calls[this.applyChallengePeriod.selector]++;
        (uint256 value, uint64 eta) = distributor.pendingChange(Change.ChallengePeriod);
        if (eta == 0) return;
        uint64 before = distributor.challengePeriod();
        if (_now() < eta) {
            try distributor.applyChange(Change.ChallengePeriod) {
                _violation("applyChange: applied inside the delay");
            } catch {}
            _check(distributor.challengePeriod() == before, "applyChange: early period");
            return;
        }
        distributor.applyChange(Change.ChallengePeriod);
        _check(distributor.challengePeriod() == value, "applyChange: period not applied");
    }

    /// @notice Someone claims for a random account against the finalized root, then claims again, which
    /// must pay nothing.
    function claim(uint256 seed, address caller) external {
        calls[this.claim.selector]++;
        uint64 finalized = distributor.lastFinalizedEpoch();
        if (finalized == 0) return;
        uint256 i = seed % ACCOUNTS;
        address account = accounts[i];
        uint256[] memory amounts = _amounts[finalized];
        uint256 amount = amounts[i];
        bytes32[] memory proof = Merkle.proof(_leaves(amounts), i);
        uint256 already = distributor.claimed(account);
        uint256 balanceBefore = token.balanceOf(account);

        if (amount > already) {
            vm.prank(caller);
            try distributor.claim(account, amount, proof) returns (uint256 paid) {
                _check(paid == amount - already, "claim: paid is not the difference");
                _check(token.balanceOf(account) - balanceBefore == paid, "claim: balance change");
                _recordPaid(account, paid);
            } catch {
                // Only an over-allocated root runs the claimable balance dry; the pending funding is out
                // of its reach.
                _check(amount - already > token.balanceOf(address(distributor)), "claim: reverted");
                return;
            }
        }

        // Whatever happened above, the same claim now pays nothing.
        uint256 distributorBefore = token.balanceOf(address(distributor));
        balanceBefore = token.balanceOf(account);
        vm.prank(caller);
        try distributor.claim(account, amount, proof) returns (uint256 paid) {
            _violation("claim: a repeated claim succeeded");
            paid;
        } catch (bytes memory reason) {
            _check(
                keccak256(reason)
                    == keccak256(
                        abi.encodeWithSelector(
                            IDistributorErrors.NothingToClaim.selector,
                            account,
                            amount,
                            distributor.claimed(account)
                        )
                    ),
                "claim: repeat error"
            );
        }
        _check(token.balanceOf(account) == balanceBefore, "claim: repeated claim moved tokens");
        _check(
            token.balanceOf(address(distributor)) == distributorBefore, "claim: repeated claim moved tokens"
        );
    }

    /// @notice Someone batch-claims for a random subset of accounts (with repeats), then repeats the batch,
    /// which must pay nothing.
    function claimMany(uint256 seed) external {
        calls[this.claimMany.selector]++;
        uint64 finalized = distributor.lastFinalizedEpoch();
        if (finalized == 0) return;
        uint256[] memory amounts = _amounts[finalized];
        bytes32[] memory leaves = _leaves(amounts);
        uint256 n = seed % 8;
        Claim[] memory claims = new Claim[](n);
        uint256[] memory due = new uint256[](ACCOUNTS);
        uint256 expected;
        for (uint256 k = 0; k < n; ++k) {
            uint256 i = uint256(keccak256(abi.encode(seed, k))) % ACCOUNTS;
            claims[k] =
                Claim({account: accounts[i], cumulativeAmount: amounts[i], proof: Merkle.proof(leaves, i)});
            uint256 already = distributor.claimed(accounts[i]);
            if (due[i] == 0 && amounts[i] > already) {
                due[i] = amounts[i] - already;
                expected += due[i];
            }
        }
        if (expected > token.balanceOf(address(distributor))) {
            // An over-allocated root: the batch cannot be paid from finalized funding alone.
            try distributor.claimMany(claims) {
                _violation("claimMany: overpaid");
            } catch {}
            return;
        }
        uint256 total = distributor.claimMany(claims);
        _check(total == expected, "claimMany: total is not what was due");
        for (uint256 i = 0; i < ACCOUNTS; ++i) {
            if (due[i] != 0) _recordPaid(accounts[i], due[i]);
        }
        uint256 distributorBefore = token.balanceOf(address(distributor));
        _check(distributor.claimMany(claims) == 0, "claimMany: a repeated batch paid");
        _check(token.balanceOf(address(distributor)) == distributorBefore, "claimMany: repeat moved");
    }

    /// @notice Someone claims with a proof against a root that is neither the newest nor the previous
    /// finalized one (an older finalized epoch, or a pending one): it must fail.
    function claimWithOtherRoot(uint256 seed) external {
        calls[this.claimWithOtherRoot.selector]++;
        uint64 lastCommitted = distributor.lastCommittedEpoch();
        if (lastCommitted == 0) return;
        uint64 epoch = uint64(_bound(seed, 1, lastCommitted));
        bytes32 root = _records[epoch].commit.rewardRoot;
        if (root == distributor.finalizedRewardRoot() || root == distributor.previousRewardRoot()) return;
        uint256 i = (seed >> 128) % ACCOUNTS;
        uint256[] memory amounts = _amounts[epoch];
        if (amounts[i] <= distributor.claimed(accounts[i])) return;
        try distributor.claim(accounts[i], amounts[i], Merkle.proof(_leaves(amounts), i)) {
            _violation("claim: other root paid");
        } catch {}
    }

    // ---------------------------------------------------------------- model views

    /// @notice The record the handler committed for `epoch`.
    function recordHash(uint64 epoch) external view returns (bytes32) {
        return keccak256(abi.encode(_records[epoch]));
    }

    function accountCount() external pure returns (uint256) {
        return ACCOUNTS;
    }

    // ---------------------------------------------------------------- helpers

    function _amountsAt(uint64 epoch) internal view returns (uint256[] memory amounts) {
        amounts = new uint256[](ACCOUNTS);
        if (epoch == 0) return amounts;
        uint256[] storage stored = _amounts[epoch];
        for (uint256 i = 0; i < ACCOUNTS; ++i) {
            amounts[i] = stored[i];
        }
    }

    function _leaves(uint256[] memory amounts) internal view returns (bytes32[] memory leaves) {
        leaves = new bytes32[](ACCOUNTS);
        for (uint256 i = 0; i < ACCOUNTS; ++i) {
            leaves[i] = keccak256(
                bytes.concat(
                    keccak256(abi.encode(block.chainid, address(distributor), accounts[i], amounts[i]))
                )
            );
        }
    }

    function _recordPaid(address account, uint256 paid) internal {
        ghostPaid[account] += paid;
        ghostTotalClaimed += paid;
    }

    function _check(bool ok, string memory what) internal {
        if (!ok) _violation(what);
    }

    function _violation(string memory what) internal {
        violations++;
        lastViolation = what;
    }
}

/// @notice The owner's parameter announcements, beside the epochs: a version is never in force before a whole
/// challenge period has passed, and one in force is never withdrawn. (A handler of its own: the epoch
/// handler is near the contract size limit.)
contract ParamsHandler is Test {
    Distributor public distributor;
    address public owner;
    uint256 public violations;
    string public lastViolation;
    mapping(bytes4 action => uint256) public calls;

    constructor(Distributor distributor_, address owner_) {
        distributor = distributor_;
        owner = owner_;
    }

    /// @notice The owner announces a new fee: the parameters in force now, and until the challenge period
    /// has passed, stay what they were (and the schedule can still be read at every time).
    function queueParams(uint256 fee) external {
        calls[this.queueParams.selector]++;
        uint64 t = uint64(_now());
        uint64 notice = distributor.challengePeriod();
        bytes32 before = distributor.paramsAt(t);
        vm.prank(owner);
        try distributor.queueParams(poolParams(1, uint64(_bound(fee, 0, 10_000)))) {}
        catch {
            _violation("queueParams: valid parameters refused");
            return;
        }
        // A zero challenge period (local chains only) gives no notice at all.
        if (notice == 0) return;
        if (_paramsAt(t) != before) _violation("queueParams: in force at once");
        if (_paramsAt(t + notice - 1) != before) _violation("queueParams: notice cut short");
    }

    /// @notice The owner tries to withdraw the newest announcement: the parameters in force stay.
    function cancelParams() external {
        calls[this.cancelParams.selector]++;
        uint64 t = uint64(_now());
        bytes32 before = distributor.paramsAt(t);
        vm.prank(owner);
        try distributor.cancelParams() {} catch {}
        if (_paramsAt(t) != before) _violation("cancelParams: withdrew parameters in force");
    }

    /// @dev `paramsAt(t)`, or zero if the schedule cannot answer (which is a violation of its own).
    function _paramsAt(uint64 t) internal returns (bytes32) {
        try distributor.paramsAt(t) returns (bytes32 hash) {
            return hash;
        } catch {
            _violation("paramsAt: the schedule has no version in force");
            return bytes32(0);
        }
    }

    function _violation(string memory what) internal {
        violations++;
        lastViolation = what;
    }
}

/// @notice Solvency and no-over-claim under random commits, vetoes, finalizations and claims.
contract DistributorInvariantTest is Test {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    Distributor internal distributor;
    MockBTC internal token;
    DistributorHandler internal handler;
    ParamsHandler internal paramsHandler;
    address internal settlerAccount;

    function setUp() public {
        address owner = _addr("owner");
        address settler = _addr("settler");
        settlerAccount = settler;
        address guardian = _addr("guardian");
        vm.warp(1_700_000_000);
        token = new MockBTC(address(this));
        distributor = new Distributor(token, owner, settler, guardian, 1 days, poolParams(1, 100));
        handler = new DistributorHandler(distributor, token, owner, settler, guardian);
        paramsHandler = new ParamsHandler(distributor, owner);
        token.mint(settler, type(uint128).max);
        // The escrow's lasting base unit, given up front so the handler's commits pull exactly their increase.
        token.mint(address(distributor.escrow()), 1);
        vm.prank(settler);
        token.approve(address(distributor), type(uint256).max);
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](2);
        targets[0] = address(handler);
        targets[1] = address(paramsHandler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory selectors = new bytes4[](12);
        selectors[0] = DistributorHandler.commit.selector;
        selectors[1] = DistributorHandler.veto.selector;
        selectors[2] = DistributorHandler.finalize.selector;
        selectors[3] = DistributorHandler.warp.selector;
        selectors[4] = DistributorHandler.queueChallengePeriod.selector;
        selectors[5] = DistributorHandler.claim.selector;
        selectors[6] = DistributorHandler.claimMany.selector;
        selectors[7] = DistributorHandler.claimWithOtherRoot.selector;
        selectors[8] = DistributorHandler.withdrawRefund.selector;
        selectors[9] = DistributorHandler.applyChallengePeriod.selector;
        selectors[10] = DistributorHandler.finalizeEarly.selector;
        selectors[11] = DistributorHandler.vetoLate.selector;
        bytes4[] memory paramsSelectors = new bytes4[](2);
        paramsSelectors[0] = ParamsHandler.queueParams.selector;
        paramsSelectors[1] = ParamsHandler.cancelParams.selector;
        targets = new FuzzSelector[](2);
        targets[0] = FuzzSelector({addr: address(handler), selectors: selectors});
        targets[1] = FuzzSelector({addr: address(paramsHandler), selectors: paramsSelectors});
    }

    /// @notice Every check inside the handler's actions held.
    function invariant_handlerChecksHold() public view {
        vm.assertEq(handler.violations(), 0, handler.lastViolation());
        vm.assertEq(paramsHandler.violations(), 0, paramsHandler.lastViolation());
    }

    /// @notice The escrow holds exactly the funding of the pending epochs plus the refunds owed, out of any
    /// root's reach; the distributor holds exactly the finalized total minus what was claimed, so the total
    /// claimed never passes the finalized total, whatever roots were finalized.
    function invariant_solvent() public view {
        uint256 held = token.balanceOf(address(distributor.escrow()));
        uint256 claimable = token.balanceOf(address(distributor));
        uint256 paid = handler.ghostTotalClaimed();
        uint256 owed = distributor.refundOwed(settlerAccount);
        vm.assertEq(
            held,
            distributor.committedTotal() - distributor.finalizedTotal() + owed + 1,
            "escrow != pending funding + refunds owed"
        );
        vm.assertEq(claimable + paid, distributor.finalizedTotal(), "claimable + claimed != finalized total");
        vm.assertLe(paid, distributor.finalizedTotal(), "claimed more than the finalized total");
    }

    /// @notice No account is paid more than the highest cumulative amount a finalized root gave it (roots may
    /// lower an amount already claimed), and the contract's `claimed` agrees with what the account received.
    function invariant_noOverClaim() public view {
        uint256 sum;
        for (uint256 i = 0; i < handler.accountCount(); ++i) {
            address account = handler.accounts(i);
            uint256 claimed = distributor.claimed(account);
            vm.assertLe(claimed, handler.maxFinalized(i), "claimed beyond every finalized cumulative amount");
            vm.assertEq(claimed, handler.ghostPaid(account), "claimed != paid");
            vm.assertEq(token.balanceOf(account), claimed, "balance != claimed");
            sum += claimed;
        }
        vm.assertEq(sum, handler.ghostTotalClaimed());
    }

    /// @notice Totals and epoch numbers keep their order.
    function invariant_ordered() public view {
        vm.assertGe(distributor.committedTotal(), distributor.finalizedTotal(), "committed < finalized total");
        vm.assertLe(
            uint256(distributor.lastFinalizedEpoch()),
            uint256(distributor.lastCommittedEpoch()),
            "finalized epoch beyond committed"
        );
    }

    /// @notice Every kept epoch stores its record's hash; every rolled-back epoch stores nothing.
    function invariant_epochHashesMatchModel() public view {
        uint64 lastCommitted = distributor.lastCommittedEpoch();
        for (uint64 e = 1; e <= lastCommitted; ++e) {
            vm.assertEq(distributor.epochHash(e), handler.recordHash(e), "stored hash != record hash");
        }
        for (uint64 e = lastCommitted + 1; e <= handler.maxEpochEverCommitted(); ++e) {
            vm.assertEq(distributor.epochHash(e), bytes32(0), "rolled-back epoch still stored");
        }
    }
}
