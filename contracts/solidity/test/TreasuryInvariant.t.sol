// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Base, InvariantBase} from "./Base.sol";
import {UsdcFixture} from "./UsdcFixture.sol";
import {USDC} from "../src/USDC.sol";
import {Treasury} from "../src/Treasury.sol";
import {TreasuryFactory} from "../src/TreasuryFactory.sol";
import {Policy, ProposalKind, AuthKind, ProposalState, ProposalView} from "../src/interfaces/ITreasuryTypes.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// Drives a 2-of-3 Treasury at random: spenders propose payments and EIP-3009 authorizations with amounts
/// clustered around the approval threshold, the per-transaction limit and the daily allowance; owners approve
/// and revoke; anyone executes; proposers cancel; approved authorizations are spent through USDC; time passes,
/// often across UTC day boundaries. The handler records, per UTC day, what left the treasury (executed payments
/// plus approved authorization amounts) and, for every execution at or above the approval threshold, how many
/// current-owner approvals the proposal had just before it executed.
contract TreasuryHandler is Base {
    USDC internal immutable token;
    Treasury internal immutable treasury;
    address[] internal owners;
    address[] internal spenders;
    address[] internal recipients;
    address internal constant EXECUTOR = address(0xE1EC);

    /// the time the sequence has reached (re-applied before each call)
    uint256 public time;
    uint256 public calls;
    uint256 internal salt;

    /// UTC day => what the handler saw leave (payments executed + authorizations approved) on that day
    mapping(uint256 => uint256) public outflowOn;
    uint256[] internal daysTouched;
    mapping(uint256 => bool) internal touched;

    /// approvals (current owners) each at/above-threshold proposal had when it executed
    uint256[] public approvalsAtExecution;
    /// proposals at/above the threshold that executed without going through `execute` (must stay 0)
    uint256 public immediateAboveThreshold;

    uint256 public paidByPayments;
    uint256 public paidByAuthorizations;
    uint256 public approvedAuthorizations;
    uint256 public executions;

    /// approved authorization proposals not yet spent through USDC
    uint256[] internal unspentAuths;

    constructor(USDC token_, Treasury treasury_, address[] memory owners_, address[] memory spenders_, address[] memory recipients_) {
        token = token_;
        treasury = treasury_;
        owners = owners_;
        spenders = spenders_;
        recipients = recipients_;
        time = block.timestamp;
    }

    modifier step() {
        vm.warp(time);
        ++calls;
        _;
    }

    // ------------------------------------------------------------ views for the invariants

    function dayCount() external view returns (uint256) {
        return daysTouched.length;
    }

    function dayAt(uint256 i) external view returns (uint256) {
        return daysTouched[i];
    }

    function executionCount() external view returns (uint256) {
        return approvalsAtExecution.length;
    }

    function recipientList() external view returns (address[] memory) {
        return recipients;
    }

    // ------------------------------------------------------------ actions

    function proposePayment(uint256 s, uint256 r, uint256 amountSeed) external step {
        address spender = spenders[s % spenders.length];
        address to = recipients[r % recipients.length];
        uint256 amount = _amount(amountSeed);
        Policy memory p = treasury.policy();
        vm.prank(spender);
        try treasury.proposePayment(to, amount, keccak256(abi.encode(++salt))) returns (uint256 id) {
            ProposalView memory v = treasury.proposal(id);
            if (v.state == ProposalState.Executed) {
                if (amount >= p.approvalThreshold) ++immediateAboveThreshold;
                _record(amount);
                paidByPayments += amount;
            }
        } catch {}
    }

    function proposeAuthorization(uint256 s, uint256 r, uint256 amountSeed, uint256 validity, bool receive_)
        external
        step
    {
        address spender = spenders[s % spenders.length];
        address to = recipients[r % recipients.length];
        uint256 amount = _amount(amountSeed);
        Policy memory p = treasury.policy();
        uint256 validBefore = block.timestamp + bound(validity, 1, p.proposalTtl);
        bytes32 nonce = keccak256(abi.encode("nonce", ++salt));
        vm.prank(spender);
        try treasury.proposeAuthorization(
            receive_ ? AuthKind.Receive : AuthKind.Transfer, to, amount, 0, validBefore, nonce, bytes32(salt)
        ) returns (uint256 id, bytes32) {
            ProposalView memory v = treasury.proposal(id);
            if (v.state == ProposalState.Executed) {
                if (amount >= p.approvalThreshold) ++immediateAboveThreshold;
                _record(amount);
                approvedAuthorizations += amount;
                unspentAuths.push(id);
            }
        } catch {}
    }

    function approve(uint256 o, uint256 seed) external step {
        (uint256 id, bool ok) = _pick(seed);
        if (!ok) return;
        vm.prank(owners[o % owners.length]);
        try treasury.approve(id) {} catch {}
    }

    function revokeApproval(uint256 o, uint256 seed) external step {
        (uint256 id, bool ok) = _pick(seed);
        if (!ok) return;
        vm.prank(owners[o % owners.length]);
        try treasury.revokeApproval(id) {} catch {}
    }

    function execute(uint256 seed) external step {
        (uint256 id, bool ok) = _pick(seed);
        if (!ok) return;
        ProposalView memory before = treasury.proposal(id);
        Policy memory p = treasury.policy();
        vm.prank(EXECUTOR);
        try treasury.execute(id) {
            ++executions;
            if (before.amount >= p.approvalThreshold) approvalsAtExecution.push(before.approvals);
            _record(before.amount);
            if (before.kind == ProposalKind.Payment) {
                paidByPayments += before.amount;
            } else {
                approvedAuthorizations += before.amount;
                unspentAuths.push(id);
            }
        } catch {}
    }

    function cancel(uint256 seed, bool asProposer) external step {
        (uint256 id, bool ok) = _pick(seed);
        if (!ok) return;
        address who = asProposer ? treasury.proposal(id).proposer : owners[seed % owners.length];
        vm.prank(who);
        try treasury.cancel(id) {} catch {}
    }

    /// Spends an approved authorization through USDC (the treasury's EIP-1271 approval is the signature).
    function settleAuthorization(uint256 seed) external step {
        if (unspentAuths.length == 0) return;
        uint256 i = seed % unspentAuths.length;
        ProposalView memory v = treasury.proposal(unspentAuths[i]);
        unspentAuths[i] = unspentAuths[unspentAuths.length - 1];
        unspentAuths.pop();
        if (v.kind == ProposalKind.TransferAuthorization) {
            vm.prank(EXECUTOR);
            try token.transferWithAuthorization(
                address(treasury), v.to, v.amount, v.validAfter, v.validBefore, v.nonce, ""
            ) {
                paidByAuthorizations += v.amount;
            } catch {}
        } else {
            vm.prank(v.to);
            try token.receiveWithAuthorization(
                address(treasury), v.to, v.amount, v.validAfter, v.validBefore, v.nonce, ""
            ) {
                paidByAuthorizations += v.amount;
            } catch {}
        }
    }

    /// Time passes: a few seconds to hours, to just before the next UTC midnight, or k whole days.
    function warp(uint256 mode, uint256 secs) external step {
        uint256 m = mode % 4;
        if (m == 0) {
            time += bound(secs, 1, 6 hours);
        } else if (m == 1) {
            time = (time / 1 days + 1) * 1 days - bound(secs, 1, 60);
        } else if (m == 2) {
            time = (time / 1 days + bound(secs, 1, 3)) * 1 days;
        } else {
            time += bound(secs, 1, 3) * 1 days;
        }
        vm.warp(time);
    }

    // ------------------------------------------------------------ helpers

    /// Amounts clustered at the edges of the policy: threshold, per-tx limit, what is left today.
    function _amount(uint256 seed) internal view returns (uint256) {
        Policy memory p = treasury.policy();
        uint256 remaining = treasury.remainingDailyAllowance();
        uint256 m = seed % 8;
        uint256 jitter = (seed >> 8) % 3; // 0, 1, 2
        if (m == 0) return p.approvalThreshold - 1;
        if (m == 1) return p.approvalThreshold;
        if (m == 2) return p.perTxLimit;
        if (m == 3) return p.perTxLimit + 1;
        if (m == 4) return remaining + jitter == 0 ? 1 : remaining + jitter - (jitter > 0 ? 1 : 0);
        if (m == 5) return remaining == 0 ? 1 : remaining;
        return bound(seed >> 16, 1, p.perTxLimit + p.perTxLimit / 10);
    }

    function _record(uint256 amount) internal {
        uint256 day = block.timestamp / 1 days;
        if (!touched[day]) {
            touched[day] = true;
            daysTouched.push(day);
        }
        outflowOn[day] += amount;
    }

    function _pick(uint256 seed) internal view returns (uint256 id, bool ok) {
        uint256 n = treasury.proposalCount();
        if (n == 0) return (0, false);
        // favour recent proposals, still reaching old (executed, cancelled, expired) ones
        if (seed % 4 != 0 && n > 3) return (n - 1 - (seed >> 2) % 3, true);
        return (seed % n, true);
    }
}

contract TreasuryInvariantTest is InvariantBase, UsdcFixture {
    Treasury internal impl;
    TreasuryFactory internal factory;
    Treasury internal treasury;
    TreasuryHandler internal handler;
    uint256 internal constant PER_TX = 100e6;
    uint256 internal constant DAILY = 300e6;
    uint256 internal constant APPROVAL = 50e6;
    uint64 internal constant TTL = 1 days;
    uint256 internal constant TREASURY_FUNDS = 10_000e6;
    uint256 internal constant M = 2;

    function setUp() public override {
        super.setUp();
        impl = new Treasury();
        factory = new TreasuryFactory(address(impl), IERC20(address(token)));
        address[] memory owners_ = new address[](3);
        (owners_[0], owners_[1], owners_[2]) = (address(0x0101), address(0x0202), address(0x0303));
        address[] memory spenders_ = new address[](2);
        (spenders_[0], spenders_[1]) = (address(0x5BE1), address(0x5BE2));
        address[] memory recipients_ = new address[](3);
        (recipients_[0], recipients_[1], recipients_[2]) = (address(0x4EC1), address(0x4EC2), address(0x4EC3));
        treasury = Treasury(
            factory.createTreasury(
                owners_, M, spenders_, Policy(PER_TX, DAILY, APPROVAL, TTL, false), bytes32("invariant")
            )
        );
        vm.prank(admin);
        token.mint(address(treasury), TREASURY_FUNDS);
        handler = new TreasuryHandler(token, treasury, owners_, spenders_, recipients_);

        bytes4[] memory selectors = new bytes4[](8);
        selectors[0] = TreasuryHandler.proposePayment.selector;
        selectors[1] = TreasuryHandler.proposeAuthorization.selector;
        selectors[2] = TreasuryHandler.approve.selector;
        selectors[3] = TreasuryHandler.revokeApproval.selector;
        selectors[4] = TreasuryHandler.execute.selector;
        selectors[5] = TreasuryHandler.cancel.selector;
        selectors[6] = TreasuryHandler.settleAuthorization.selector;
        selectors[7] = TreasuryHandler.warp.selector;
        targetContract(address(handler));
        targetSelector(address(handler), selectors);
    }

    function invariant_neverPaysMoreThanTheDailyLimitInAUtcDay() public view {
        uint256 daily = treasury.policy().dailyLimit;
        uint256 n = handler.dayCount();
        for (uint256 i = 0; i < n; ++i) {
            uint256 day = handler.dayAt(i);
            assertLe(handler.outflowOn(day), daily, "recorded outflow in a UTC day");
            assertLe(treasury.spentOn(day), daily, "treasury spentOn(day)");
            assertEq(treasury.spentOn(day), handler.outflowOn(day), "spentOn(day) matches recorded outflow");
        }
    }

    function invariant_nothingAboveTheThresholdExecutesWithoutMApprovals() public view {
        assertEq(handler.immediateAboveThreshold(), 0, "executed at proposal at/above the threshold");
        uint256 n = handler.executionCount();
        for (uint256 i = 0; i < n; ++i) {
            assertGe(handler.approvalsAtExecution(i), M, "approvals at execution");
        }
    }

    function invariant_tokensConserved() public view {
        address[] memory rs = handler.recipientList();
        uint256 sum = token.balanceOf(address(treasury));
        for (uint256 i = 0; i < rs.length; ++i) {
            sum += token.balanceOf(rs[i]);
        }
        assertEq(sum, TREASURY_FUNDS, "treasury + recipients");
        assertEq(
            token.balanceOf(address(treasury)),
            TREASURY_FUNDS - handler.paidByPayments() - handler.paidByAuthorizations(),
            "treasury balance"
        );
        assertLe(handler.paidByAuthorizations(), handler.approvedAuthorizations(), "spent authorizations");
    }
}
