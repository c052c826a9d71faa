// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {UsdcFixture} from "./UsdcFixture.sol";
import {Treasury} from "../src/Treasury.sol";
import {TreasuryFactory} from "../src/TreasuryFactory.sol";
import {Policy, ProposalKind, AuthKind, ProposalState, ProposalView} from "../src/interfaces/ITreasuryTypes.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {Errors} from "@openzeppelin/contracts/utils/Errors.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// A token whose `transfer` calls back into a treasury, to prove the clone's reentrancy guard holds.
contract ReenteringToken is ERC20 {
    Treasury public target;
    uint256 public reenterId;
    bool public armed;

    constructor() ERC20("Evil", "EVL") {
        _mint(msg.sender, 1_000_000_000);
    }

    function arm(Treasury t, uint256 id) external {
        target = t;
        reenterId = id;
        armed = true;
    }

    function disarm() external {
        armed = false;
    }

    function transfer(address to, uint256 value) public override returns (bool) {
        if (armed) {
            armed = false;
            target.execute(reenterId);
        }
        return super.transfer(to, value);
    }
}

/// Shared set-up: a 2-of-3 Treasury cloned by the factory over the fixture's USDC, one spender, funded.
abstract contract TreasurySetup is UsdcFixture {
    Treasury internal impl;
    TreasuryFactory internal factory;
    Treasury internal treasury;
    address internal o1 = address(0x0101);
    address internal o2 = address(0x0202);
    address internal o3 = address(0x0303);
    address internal spender = address(0x5BE4D);
    address internal stranger = address(0xBAD0);
    uint256 internal constant PER_TX = 100e6;
    uint256 internal constant DAILY = 300e6;
    uint256 internal constant APPROVAL = 50e6;
    uint64 internal constant TTL = 1 days;
    uint256 internal constant TREASURY_FUNDS = 10_000e6;

    function policyOf(uint256 perTx, uint256 daily, uint256 approval, uint64 ttl, bool allowList)
        internal
        pure
        returns (Policy memory)
    {
        return Policy(perTx, daily, approval, ttl, allowList);
    }

    function defaultPolicy() internal pure returns (Policy memory) {
        return policyOf(PER_TX, DAILY, APPROVAL, TTL, false);
    }

    function ownerList() internal view returns (address[] memory list) {
        list = new address[](3);
        (list[0], list[1], list[2]) = (o1, o2, o3);
    }

    function spenderList() internal view returns (address[] memory list) {
        list = new address[](1);
        list[0] = spender;
    }

    function setUp() public virtual override {
        super.setUp();
        impl = new Treasury();
        factory = new TreasuryFactory(address(impl), IERC20(address(token)));
        treasury = Treasury(factory.createTreasury(ownerList(), 2, spenderList(), defaultPolicy(), bytes32("t")));
        vm.prank(admin);
        token.mint(address(treasury), TREASURY_FUNDS);
    }

    /// Runs `data` through governance: o1 proposes, o2 approves, a stranger executes.
    function govern(bytes memory data) internal returns (uint256 id) {
        id = prepare(data);
        vm.prank(stranger);
        treasury.execute(id);
    }

    /// A governance proposal by o1 approved by o2, ready to execute.
    function prepare(bytes memory data) internal returns (uint256 id) {
        vm.prank(o1);
        id = treasury.proposeGovernance(data);
        vm.prank(o2);
        treasury.approve(id);
    }

    function pay(address to, uint256 amount) internal returns (uint256 id) {
        vm.prank(spender);
        id = treasury.proposePayment(to, amount, keccak256("memo"));
    }

    function approveBy(uint256 id, address a, address b) internal {
        vm.prank(a);
        treasury.approve(id);
        vm.prank(b);
        treasury.approve(id);
    }
}

contract TreasuryFactoryTest is TreasurySetup {
    function testConstructorRefuses() public {
        vm.expectRevert(abi.encodeWithSelector(TreasuryFactory.ImplementationHasNoCode.selector, address(0x1234)));
        new TreasuryFactory(address(0x1234), IERC20(address(token)));
        vm.expectRevert(TreasuryFactory.InvalidToken.selector);
        new TreasuryFactory(address(impl), IERC20(address(0)));
        assertEq(factory.implementation(), address(impl), "implementation");
        assertEq(address(factory.token()), address(token), "token");
    }

    function testCreateTreasuryAtPredictedAddress() public {
        address predicted = factory.predictTreasury(o1, bytes32("salt"));
        assertFalse(factory.isTreasury(predicted), "not yet");
        vm.expectEmit(address(factory));
        emit TreasuryFactory.TreasuryCreated(predicted, o1, ownerList(), 3);
        vm.prank(o1);
        address made = factory.createTreasury(ownerList(), 3, spenderList(), defaultPolicy(), bytes32("salt"));
        assertEq(made, predicted, "predicted");
        assertTrue(factory.isTreasury(made), "registered");
        assertFalse(factory.isTreasury(address(impl)), "implementation is not a treasury");
        Treasury t = Treasury(made);
        assertEq(t.threshold(), 3, "threshold");
        assertEq(t.owners().length, 3, "owners");
        assertTrue(t.isSpender(spender), "spender");
        assertEq(address(t.token()), address(token), "token");
        assertEq(t.policy().dailyLimit, DAILY, "policy");
        // the salt is mixed with the creator
        assertTrue(factory.predictTreasury(o2, bytes32("salt")) != made, "other creator, other address");
        vm.prank(o2);
        address other = factory.createTreasury(ownerList(), 1, spenderList(), defaultPolicy(), bytes32("salt"));
        assertTrue(other != made, "o2 gets its own");
        // the same creator and salt twice cannot deploy
        vm.prank(o1);
        vm.expectRevert(Errors.FailedDeployment.selector);
        factory.createTreasury(ownerList(), 1, spenderList(), defaultPolicy(), bytes32("salt"));
    }

    function testCreateTreasuryBubblesInitializeErrors() public {
        vm.expectRevert(abi.encodeWithSelector(Treasury.ThresholdAboveOwners.selector, 4, 3));
        factory.createTreasury(ownerList(), 4, spenderList(), defaultPolicy(), bytes32("x"));
    }

    function testImplementationAndClonesInitializeOnce() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        impl.initialize(IERC20(address(token)), ownerList(), 1, spenderList(), defaultPolicy());
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        treasury.initialize(IERC20(address(token)), ownerList(), 1, spenderList(), defaultPolicy());
    }

    function testInitializeRefusals() public {
        address[] memory owners = ownerList();
        address[] memory spenders = spenderList();
        Policy memory p = defaultPolicy();
        IERC20 t = IERC20(address(token));

        Treasury c = Treasury(Clones.clone(address(impl)));
        vm.expectRevert(Treasury.InvalidToken.selector);
        c.initialize(IERC20(address(0)), owners, 1, spenders, p);

        address[] memory bad = ownerList();
        bad[1] = address(0);
        vm.expectRevert(abi.encodeWithSelector(Treasury.InvalidOwner.selector, address(0)));
        c.initialize(t, bad, 1, spenders, p);
        bad[1] = address(c);
        vm.expectRevert(abi.encodeWithSelector(Treasury.InvalidOwner.selector, address(c)));
        c.initialize(t, bad, 1, spenders, p);
        bad[1] = o1;
        vm.expectRevert(abi.encodeWithSelector(Treasury.DuplicateOwner.selector, o1));
        c.initialize(t, bad, 1, spenders, p);

        vm.expectRevert(Treasury.ThresholdZero.selector);
        c.initialize(t, owners, 0, spenders, p);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ThresholdAboveOwners.selector, 1, 0));
        c.initialize(t, new address[](0), 1, spenders, p);

        address[] memory badSpenders = new address[](1);
        vm.expectRevert(Treasury.InvalidSpender.selector);
        c.initialize(t, owners, 1, badSpenders, p);

        vm.expectRevert(abi.encodeWithSelector(Treasury.PerTxAboveDaily.selector, DAILY + 1, DAILY));
        c.initialize(t, owners, 1, spenders, policyOf(DAILY + 1, DAILY, APPROVAL, TTL, false));
        vm.expectRevert(Treasury.ProposalTtlZero.selector);
        c.initialize(t, owners, 1, spenders, policyOf(PER_TX, DAILY, APPROVAL, 0, false));

        // and a valid set-up still goes through afterwards
        c.initialize(t, owners, 2, spenders, p);
        assertEq(c.threshold(), 2, "initialised");
    }

    function testInitializeEmitsSetUp() public {
        Treasury c = Treasury(Clones.clone(address(impl)));
        vm.expectEmit(address(c));
        emit Treasury.OwnerAdded(o1);
        vm.expectEmit(address(c));
        emit Treasury.OwnerAdded(o2);
        vm.expectEmit(address(c));
        emit Treasury.OwnerAdded(o3);
        vm.expectEmit(address(c));
        emit Treasury.ThresholdChanged(0, 2);
        vm.expectEmit(address(c));
        emit Treasury.SpenderSet(spender, true);
        vm.expectEmit(address(c));
        emit Treasury.PolicyChanged(defaultPolicy());
        c.initialize(IERC20(address(token)), ownerList(), 2, spenderList(), defaultPolicy());
    }
}

contract TreasuryTest is TreasurySetup {
    // ------------------------------------------------------------------ views
    function testViews() public view {
        address[] memory owners = treasury.owners();
        assertEq(owners.length, 3, "owners");
        assertEq(owners[0], o1, "o1");
        assertEq(owners[2], o3, "o3");
        assertEq(treasury.threshold(), 2, "threshold");
        assertTrue(treasury.isOwner(o2) && !treasury.isOwner(spender), "isOwner");
        assertTrue(treasury.isSpender(spender) && !treasury.isSpender(o1), "isSpender");
        assertFalse(treasury.isRecipientAllowed(seller), "allow-list empty");
        Policy memory p = treasury.policy();
        assertEq(p.perTxLimit, PER_TX, "perTx");
        assertEq(p.dailyLimit, DAILY, "daily");
        assertEq(p.approvalThreshold, APPROVAL, "approval");
        assertEq(uint256(p.proposalTtl), TTL, "ttl");
        assertFalse(p.allowListEnabled, "allow-list off");
        assertEq(treasury.proposalCount(), 0, "no proposals");
        assertEq(treasury.spentToday(), 0, "nothing spent");
        assertEq(treasury.remainingDailyAllowance(), DAILY, "full allowance");
        assertEq(address(treasury.token()), address(token), "token");
    }

    function testUnknownProposalViews() public {
        vm.expectRevert(abi.encodeWithSelector(Treasury.UnknownProposal.selector, 0));
        treasury.proposal(0);
        vm.expectRevert(abi.encodeWithSelector(Treasury.UnknownProposal.selector, 7));
        treasury.approvers(7);
    }

    // ------------------------------------------------------------------ payments
    function testSmallPaymentExecutesAtOnce() public {
        uint256 amount = APPROVAL - 1;
        bytes32 memo = keccak256("memo");
        vm.expectEmit(address(treasury));
        emit Treasury.PaymentProposed(0, spender, seller, amount, memo);
        vm.expectEmit(address(treasury));
        emit Treasury.PaymentExecuted(0, spender, seller, amount, memo);
        uint256 id = pay(seller, amount);
        assertEq(id, 0, "first id");
        assertEq(token.balanceOf(seller), amount, "seller paid");
        assertEq(token.balanceOf(address(treasury)), TREASURY_FUNDS - amount, "treasury debited");
        assertEq(treasury.spentToday(), amount, "counted");
        assertEq(treasury.spentOn(block.timestamp / 1 days), amount, "counted on today");
        assertEq(treasury.remainingDailyAllowance(), DAILY - amount, "remaining");
        ProposalView memory v = treasury.proposal(id);
        assertTrue(v.kind == ProposalKind.Payment, "kind");
        assertTrue(v.state == ProposalState.Executed, "executed");
        assertFalse(v.needsApproval, "no approval needed");
        assertEq(v.proposer, spender, "proposer");
        assertEq(v.to, seller, "to");
        assertEq(v.amount, amount, "amount");
        assertEq(v.memoHash, memo, "memo");
        assertEq(uint256(v.createdAt), block.timestamp, "createdAt");
        assertEq(uint256(v.expiresAt), block.timestamp + TTL, "expiresAt");
        assertEq(v.digest, bytes32(0), "no digest");
        assertEq(treasury.proposalCount(), 1, "count");
    }

    function testLargePaymentNeedsTwoOwners() public {
        uint256 amount = APPROVAL;
        uint256 id = pay(seller, amount);
        ProposalView memory v = treasury.proposal(id);
        assertTrue(v.state == ProposalState.Pending && v.needsApproval, "pending");
        assertEq(token.balanceOf(seller), 0, "nothing moved");
        assertEq(treasury.spentToday(), 0, "nothing counted");

        vm.expectRevert(abi.encodeWithSelector(Treasury.NotEnoughApprovals.selector, id, 0, 2));
        treasury.execute(id);
        vm.expectEmit(address(treasury));
        emit Treasury.Approved(id, o1);
        vm.prank(o1);
        treasury.approve(id);
        vm.expectRevert(abi.encodeWithSelector(Treasury.NotEnoughApprovals.selector, id, 1, 2));
        treasury.execute(id);
        vm.prank(o3);
        treasury.approve(id);
        address[] memory who = treasury.approvers(id);
        assertEq(who.length, 2, "two approvers");
        assertEq(who[0], o1, "o1 approved");
        assertEq(who[1], o3, "o3 approved");
        assertEq(treasury.proposal(id).approvals, 2, "approvals");

        vm.expectEmit(address(treasury));
        emit Treasury.PaymentExecuted(id, stranger, seller, amount, keccak256("memo"));
        vm.prank(stranger);
        treasury.execute(id);
        assertEq(token.balanceOf(seller), amount, "seller paid");
        assertEq(token.balanceOf(address(treasury)), TREASURY_FUNDS - amount, "treasury debited");
        assertEq(treasury.spentToday(), amount, "counted at execution");
        assertTrue(treasury.proposal(id).state == ProposalState.Executed, "executed");
        vm.expectRevert(abi.encodeWithSelector(Treasury.ProposalAlreadyExecuted.selector, id));
        treasury.execute(id);
    }

    function testProposePaymentRefusals() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Treasury.CallerNotSpender.selector, stranger));
        treasury.proposePayment(seller, 1, 0);
        vm.startPrank(spender);
        vm.expectRevert(Treasury.InvalidRecipient.selector);
        treasury.proposePayment(address(0), 1, 0);
        vm.expectRevert(Treasury.ZeroAmount.selector);
        treasury.proposePayment(seller, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ExceedsPerTxLimit.selector, PER_TX + 1, PER_TX));
        treasury.proposePayment(seller, PER_TX + 1, 0);
        vm.stopPrank();
        // spend 280 of 300 today via approved large payments, then 21 is over the remaining 20
        for (uint256 i = 0; i < 2; i++) {
            uint256 id = pay(seller, PER_TX);
            approveBy(id, o1, o2);
            treasury.execute(id);
        }
        pay(seller, 40e6);
        pay(seller, 40e6);
        assertEq(treasury.remainingDailyAllowance(), 20e6, "20 left");
        vm.prank(spender);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ExceedsDailyLimit.selector, 21e6, 20e6));
        treasury.proposePayment(seller, 21e6, 0);
        pay(seller, 20e6);
        assertEq(treasury.remainingDailyAllowance(), 0, "all spent");
        assertEq(token.balanceOf(seller), DAILY, "paid exactly the daily limit");

        // allow-list
        govern(abi.encodeCall(Treasury.setPolicy, (policyOf(PER_TX, DAILY, APPROVAL, TTL, true))));
        vm.warp(block.timestamp + 1 days);
        vm.prank(spender);
        vm.expectRevert(abi.encodeWithSelector(Treasury.RecipientNotAllowed.selector, relayer));
        treasury.proposePayment(relayer, 1, 0);
        govern(abi.encodeCall(Treasury.setRecipientAllowed, (relayer, true)));
        pay(relayer, 1);
        assertEq(token.balanceOf(relayer), 1, "allowed recipient paid");
    }

    function testExecuteRechecksPolicy() public {
        uint256 a = pay(seller, PER_TX);
        uint256 b = pay(seller, PER_TX);
        uint256 c = pay(seller, PER_TX);
        approveBy(a, o1, o2);
        approveBy(b, o1, o2);
        approveBy(c, o1, o2);
        treasury.execute(a);
        treasury.execute(b);
        // the daily limit is counted when money leaves: a small payment uses part of the rest
        pay(seller, 1e6);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ExceedsDailyLimit.selector, PER_TX, PER_TX - 1e6));
        treasury.execute(c);

        // per-tx lowered after approval
        vm.warp(START - (START % 1 days) + 1 days); // the next UTC day; c (created at START) is unexpired
        govern(abi.encodeCall(Treasury.setPolicy, (policyOf(PER_TX - 1, DAILY, APPROVAL, TTL, false))));
        vm.expectRevert(abi.encodeWithSelector(Treasury.ExceedsPerTxLimit.selector, PER_TX, PER_TX - 1));
        treasury.execute(c);
        // allow-list turned on after approval
        govern(abi.encodeCall(Treasury.setPolicy, (policyOf(PER_TX, DAILY, APPROVAL, TTL, true))));
        vm.expectRevert(abi.encodeWithSelector(Treasury.RecipientNotAllowed.selector, seller));
        treasury.execute(c);
        govern(abi.encodeCall(Treasury.setRecipientAllowed, (seller, true)));
        treasury.execute(c);
        assertEq(token.balanceOf(seller), 3 * PER_TX + 1e6, "all three paid in the end");
    }

    function testApproveAndRevokeRefusals() public {
        uint256 id = pay(seller, PER_TX);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Treasury.CallerNotOwner.selector, stranger));
        treasury.approve(id);
        vm.prank(spender);
        vm.expectRevert(abi.encodeWithSelector(Treasury.CallerNotOwner.selector, spender));
        treasury.revokeApproval(id);
        vm.startPrank(o1);
        vm.expectRevert(abi.encodeWithSelector(Treasury.UnknownProposal.selector, 9));
        treasury.approve(9);
        vm.expectRevert(abi.encodeWithSelector(Treasury.NotApproved.selector, id, o1));
        treasury.revokeApproval(id);
        treasury.approve(id);
        vm.expectRevert(abi.encodeWithSelector(Treasury.AlreadyApproved.selector, id, o1));
        treasury.approve(id);
        vm.expectEmit(address(treasury));
        emit Treasury.ApprovalRevoked(id, o1);
        treasury.revokeApproval(id);
        vm.stopPrank();
        assertEq(treasury.proposal(id).approvals, 0, "revoked");
        assertEq(treasury.approvers(id).length, 0, "no approvers");
        // a revoked approval does not count
        vm.prank(o2);
        treasury.approve(id);
        vm.expectRevert(abi.encodeWithSelector(Treasury.NotEnoughApprovals.selector, id, 1, 2));
        treasury.execute(id);

        // executed, cancelled and expired proposals take no approvals
        uint256 small = pay(seller, 1);
        vm.prank(o1);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ProposalAlreadyExecuted.selector, small));
        treasury.approve(small);
        vm.prank(spender);
        treasury.cancel(id);
        vm.prank(o1);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ProposalAlreadyCancelled.selector, id));
        treasury.approve(id);
        vm.prank(o2);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ProposalAlreadyCancelled.selector, id));
        treasury.revokeApproval(id);
        uint256 late = pay(seller, PER_TX);
        vm.warp(block.timestamp + TTL + 1);
        vm.prank(o1);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ProposalExpired.selector, late));
        treasury.approve(late);
    }

    function testExpiry() public {
        uint256 id = pay(seller, PER_TX);
        approveBy(id, o1, o2);
        uint256 other = pay(seller, PER_TX);
        approveBy(other, o1, o2);
        vm.warp(START + TTL); // the last second it is valid
        assertTrue(treasury.proposal(id).state == ProposalState.Pending, "pending at expiresAt");
        treasury.execute(id);
        vm.warp(START + TTL + 1);
        assertTrue(treasury.proposal(other).state == ProposalState.Expired, "expired after");
        vm.expectRevert(abi.encodeWithSelector(Treasury.ProposalExpired.selector, other));
        treasury.execute(other);
        vm.prank(o3);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ProposalExpired.selector, other));
        treasury.revokeApproval(other);
        // an expired proposal can still be cancelled (tidy-up) by its proposer
        vm.prank(spender);
        treasury.cancel(other);
        assertTrue(treasury.proposal(other).state == ProposalState.Cancelled, "cancelled");
        assertEq(token.balanceOf(seller), PER_TX, "only the unexpired one paid");
    }

    function testCancel() public {
        uint256 id = pay(seller, PER_TX);
        vm.expectRevert(abi.encodeWithSelector(Treasury.UnknownProposal.selector, 5));
        treasury.cancel(5);
        vm.prank(o1); // an owner alone cannot cancel a spender's proposal
        vm.expectRevert(abi.encodeWithSelector(Treasury.CallerCannotCancel.selector, o1));
        treasury.cancel(id);
        vm.expectEmit(address(treasury));
        emit Treasury.Cancelled(id, spender);
        vm.prank(spender);
        treasury.cancel(id);
        assertTrue(treasury.proposal(id).state == ProposalState.Cancelled, "cancelled");
        vm.prank(spender);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ProposalAlreadyCancelled.selector, id));
        treasury.cancel(id);
        approveBy(pay(seller, PER_TX), o1, o2); // id + 1
        vm.expectRevert(abi.encodeWithSelector(Treasury.ProposalAlreadyCancelled.selector, id));
        treasury.execute(id);
        uint256 done = pay(seller, 1);
        vm.prank(spender);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ProposalAlreadyExecuted.selector, done));
        treasury.cancel(done);

        // the Treasury itself cancels through governance (M owners)
        uint256 target = id + 1;
        {
            uint256 g_ = prepare(abi.encodeCall(Treasury.cancel, (target)));
            vm.expectEmit(address(treasury));
            emit Treasury.Cancelled(target, address(treasury));
            treasury.execute(g_);
        }
        assertTrue(treasury.proposal(target).state == ProposalState.Cancelled, "cancelled by governance");
        assertEq(token.balanceOf(seller), 1, "only the small one paid");
    }

    function testRemovedOwnerApprovalNoLongerCounts() public {
        uint256 id = pay(seller, PER_TX);
        approveBy(id, o1, o2);
        assertEq(treasury.proposal(id).approvals, 2, "two");
        vm.prank(o1);
        uint256 g = treasury.proposeGovernance(abi.encodeCall(Treasury.removeOwner, (o2)));
        vm.prank(o3);
        treasury.approve(g);
        treasury.execute(g);
        assertFalse(treasury.isOwner(o2), "o2 removed");
        assertEq(treasury.proposal(id).approvals, 1, "o2's approval gone");
        vm.expectRevert(abi.encodeWithSelector(Treasury.NotEnoughApprovals.selector, id, 1, 2));
        treasury.execute(id);
        // re-adding o2 does not revive the old approval
        vm.prank(o1);
        g = treasury.proposeGovernance(abi.encodeCall(Treasury.addOwner, (o2)));
        vm.prank(o3);
        treasury.approve(g);
        treasury.execute(g);
        assertTrue(treasury.isOwner(o2), "o2 back");
        assertEq(treasury.proposal(id).approvals, 1, "still one");
        vm.prank(o2);
        vm.expectRevert(abi.encodeWithSelector(Treasury.NotApproved.selector, id, o2));
        treasury.revokeApproval(id);
        vm.prank(o2);
        treasury.approve(id);
        treasury.execute(id);
        assertEq(token.balanceOf(seller), PER_TX, "paid with current owners");
    }

    function testReentrancyGuardWorksInAClone() public {
        ReenteringToken evil = new ReenteringToken();
        TreasuryFactory f = new TreasuryFactory(address(impl), IERC20(address(evil)));
        Treasury t = Treasury(f.createTreasury(ownerList(), 2, spenderList(), defaultPolicy(), bytes32(0)));
        bytes32 slot = 0x9b779b17422d0df92223018b32b4d1fa46e071723d6817e2486d003becc55f00;
        assertEq(vm.load(address(t), slot), bytes32(0), "a fresh clone's guard slot is 0 (not entered)");
        evil.transfer(address(t), 1000e6);
        vm.prank(spender);
        t.proposePayment(seller, 1, 0); // works with the slot at 0
        assertEq(evil.balanceOf(seller), 1, "paid through the clone");
        assertEq(vm.load(address(t), slot), bytes32(uint256(1)), "guard left at NOT_ENTERED");
        vm.startPrank(spender);
        uint256 a = t.proposePayment(seller, PER_TX, 0);
        uint256 b = t.proposePayment(seller, PER_TX, 0);
        vm.stopPrank();
        for (uint256 i = a; i <= b; i++) {
            vm.prank(o1);
            t.approve(i);
            vm.prank(o2);
            t.approve(i);
        }
        evil.arm(t, b);
        vm.expectRevert(ReentrancyGuard.ReentrancyGuardReentrantCall.selector);
        t.execute(a);
        assertEq(evil.balanceOf(seller), 1, "nothing more left");
        evil.disarm();
        t.execute(a);
        t.execute(b);
        assertEq(evil.balanceOf(seller), 1 + 2 * PER_TX, "unarmed, both pay once");
    }

    // ------------------------------------------------------------------ governance
    function testGovernanceSettersOnlySelf() public {
        vm.startPrank(o1);
        vm.expectRevert(abi.encodeWithSelector(Treasury.CallerNotTreasury.selector, o1));
        treasury.addOwner(stranger);
        vm.expectRevert(abi.encodeWithSelector(Treasury.CallerNotTreasury.selector, o1));
        treasury.removeOwner(o2);
        vm.expectRevert(abi.encodeWithSelector(Treasury.CallerNotTreasury.selector, o1));
        treasury.setThreshold(1);
        vm.expectRevert(abi.encodeWithSelector(Treasury.CallerNotTreasury.selector, o1));
        treasury.setSpender(o1, true);
        vm.expectRevert(abi.encodeWithSelector(Treasury.CallerNotTreasury.selector, o1));
        treasury.setPolicy(defaultPolicy());
        vm.expectRevert(abi.encodeWithSelector(Treasury.CallerNotTreasury.selector, o1));
        treasury.setRecipientAllowed(seller, true);
        vm.stopPrank();
    }

    function testGovernanceChanges() public {
        bytes memory data = abi.encodeCall(Treasury.addOwner, (stranger));
        vm.expectEmit(address(treasury));
        emit Treasury.GovernanceProposed(0, o1, data);
        vm.expectEmit(address(treasury));
        emit Treasury.Approved(0, o1);
        vm.prank(o1);
        uint256 id = treasury.proposeGovernance(data);
        ProposalView memory v = treasury.proposal(id);
        assertTrue(v.kind == ProposalKind.Governance && v.needsApproval, "governance");
        assertEq(v.approvals, 1, "the proposer's approval counts");
        assertEq(v.data, data, "calldata kept");
        assertEq(v.to, address(treasury), "self");
        vm.expectRevert(abi.encodeWithSelector(Treasury.NotEnoughApprovals.selector, id, 1, 2));
        treasury.execute(id);
        vm.prank(o3);
        treasury.approve(id);
        vm.expectEmit(address(treasury));
        emit Treasury.OwnerAdded(stranger);
        vm.expectEmit(address(treasury));
        emit Treasury.GovernanceExecuted(id, spender, data);
        vm.prank(spender);
        treasury.execute(id);
        assertTrue(treasury.isOwner(stranger), "added");
        assertEq(treasury.owners().length, 4, "four owners");

        {
            uint256 g_ = prepare(abi.encodeCall(Treasury.setThreshold, (3)));
            vm.expectEmit(address(treasury));
            emit Treasury.ThresholdChanged(2, 3);
            treasury.execute(g_);
        }
        assertEq(treasury.threshold(), 3, "threshold 3");
        // now three approvals are needed
        vm.prank(o1);
        id = treasury.proposeGovernance(abi.encodeCall(Treasury.removeOwner, (stranger)));
        vm.prank(o2);
        treasury.approve(id);
        vm.expectRevert(abi.encodeWithSelector(Treasury.NotEnoughApprovals.selector, id, 2, 3));
        treasury.execute(id);
        vm.prank(stranger);
        treasury.approve(id);
        vm.expectEmit(address(treasury));
        emit Treasury.OwnerRemoved(stranger);
        treasury.execute(id);
        assertFalse(treasury.isOwner(stranger), "removed");
        assertEq(treasury.owners().length, 3, "three owners");

        vm.prank(o1);
        id = treasury.proposeGovernance(abi.encodeCall(Treasury.setThreshold, (2)));
        approveBy(id, o2, o3);
        treasury.execute(id);

        {
            uint256 g_ = prepare(abi.encodeCall(Treasury.setSpender, (o3, true)));
            vm.expectEmit(address(treasury));
            emit Treasury.SpenderSet(o3, true);
            treasury.execute(g_);
        }
        assertTrue(treasury.isSpender(o3), "o3 spends");
        govern(abi.encodeCall(Treasury.setSpender, (spender, false)));
        assertFalse(treasury.isSpender(spender), "spender removed");

        Policy memory p = policyOf(10e6, 20e6, 5e6, 2 hours, true);
        {
            uint256 g_ = prepare(abi.encodeCall(Treasury.setPolicy, (p)));
            vm.expectEmit(address(treasury));
            emit Treasury.PolicyChanged(p);
            treasury.execute(g_);
        }
        assertEq(treasury.policy().perTxLimit, 10e6, "new perTx");
        assertEq(uint256(treasury.policy().proposalTtl), 2 hours, "new ttl");
        assertTrue(treasury.policy().allowListEnabled, "allow-list on");

        {
            uint256 g_ = prepare(abi.encodeCall(Treasury.setRecipientAllowed, (seller, true)));
            vm.expectEmit(address(treasury));
            emit Treasury.RecipientAllowed(seller, true);
            treasury.execute(g_);
        }
        assertTrue(treasury.isRecipientAllowed(seller), "allowed");
        govern(abi.encodeCall(Treasury.setRecipientAllowed, (seller, false)));
        assertFalse(treasury.isRecipientAllowed(seller), "disallowed");
    }

    function governFails(bytes memory data, bytes memory inner) internal {
        vm.prank(o1);
        uint256 id = treasury.proposeGovernance(data);
        vm.prank(o2);
        treasury.approve(id);
        vm.expectRevert(abi.encodeWithSelector(Treasury.GovernanceCallFailed.selector, inner));
        treasury.execute(id);
        assertTrue(treasury.proposal(id).state == ProposalState.Pending, "still pending after a failed call");
    }

    function testGovernanceRefusals() public {
        vm.prank(spender);
        vm.expectRevert(abi.encodeWithSelector(Treasury.CallerNotOwner.selector, spender));
        treasury.proposeGovernance(abi.encodeCall(Treasury.setThreshold, (1)));
        vm.prank(o1);
        vm.expectRevert(Treasury.GovernanceCallTooShort.selector);
        treasury.proposeGovernance(hex"010203");

        governFails(
            abi.encodeCall(Treasury.addOwner, (address(0))),
            abi.encodeWithSelector(Treasury.InvalidOwner.selector, address(0))
        );
        governFails(
            abi.encodeCall(Treasury.addOwner, (address(treasury))),
            abi.encodeWithSelector(Treasury.InvalidOwner.selector, address(treasury))
        );
        governFails(
            abi.encodeCall(Treasury.addOwner, (o3)), abi.encodeWithSelector(Treasury.DuplicateOwner.selector, o3)
        );
        governFails(
            abi.encodeCall(Treasury.removeOwner, (stranger)),
            abi.encodeWithSelector(Treasury.OwnerNotFound.selector, stranger)
        );
        governFails(abi.encodeCall(Treasury.setThreshold, (0)), abi.encodeWithSelector(Treasury.ThresholdZero.selector));
        governFails(
            abi.encodeCall(Treasury.setThreshold, (4)),
            abi.encodeWithSelector(Treasury.ThresholdAboveOwners.selector, 4, 3)
        );
        governFails(
            abi.encodeCall(Treasury.setSpender, (address(0), true)),
            abi.encodeWithSelector(Treasury.InvalidSpender.selector)
        );
        governFails(
            abi.encodeCall(Treasury.setRecipientAllowed, (address(0), true)),
            abi.encodeWithSelector(Treasury.InvalidRecipient.selector)
        );
        governFails(
            abi.encodeCall(Treasury.setPolicy, (policyOf(2, 1, 1, 1, false))),
            abi.encodeWithSelector(Treasury.PerTxAboveDaily.selector, 2, 1)
        );
        governFails(
            abi.encodeCall(Treasury.setPolicy, (policyOf(1, 1, 1, 0, false))),
            abi.encodeWithSelector(Treasury.ProposalTtlZero.selector)
        );
        // a call to a function the Treasury does not have fails without data
        governFails(hex"deadbeef", "");
        // execute cannot be re-entered through governance
        governFails(
            abi.encodeCall(Treasury.execute, (0)),
            abi.encodeWithSelector(ReentrancyGuard.ReentrancyGuardReentrantCall.selector)
        );

        // removing an owner that would leave fewer owners than the threshold
        govern(abi.encodeCall(Treasury.setThreshold, (3)));
        vm.prank(o1);
        uint256 id = treasury.proposeGovernance(abi.encodeCall(Treasury.removeOwner, (o3)));
        approveBy(id, o2, o3);
        vm.expectRevert(
            abi.encodeWithSelector(
                Treasury.GovernanceCallFailed.selector,
                abi.encodeWithSelector(Treasury.RemovalBreaksThreshold.selector, 2, 3)
            )
        );
        treasury.execute(id);

        // governance proposals expire like the others
        vm.warp(block.timestamp + TTL + 1);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ProposalExpired.selector, id));
        treasury.execute(id);
    }

    // ------------------------------------------------------------------ x402 authorizations (EIP-1271)
    function proposeAuth(AuthKind kind, uint256 amount, uint256 validBefore, bytes32 nonce)
        internal
        returns (uint256 id, bytes32 d)
    {
        vm.prank(spender);
        (id, d) = treasury.proposeAuthorization(kind, seller, amount, 0, validBefore, nonce, keccak256("x402"));
    }

    function settle(uint256 amount, uint256 validBefore, bytes32 nonce) internal {
        token.transferWithAuthorization(address(treasury), seller, amount, 0, validBefore, nonce, "");
    }

    function testSmallAuthorizationSettlesThroughUsdc() public {
        uint256 amount = 10e6;
        uint256 vb = block.timestamp + 1 hours;
        bytes32 nonce = keccak256("n1");
        bytes32 expected = authorizationDigest(
            token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), address(treasury), seller, amount, 0, vb, nonce
        );
        vm.expectEmit(address(treasury));
        emit Treasury.AuthorizationProposed(0, spender, seller, amount, expected);
        vm.expectEmit(address(treasury));
        emit Treasury.AuthorizationApproved(0, expected, seller, amount, vb, nonce);
        (uint256 id, bytes32 d) = proposeAuth(AuthKind.Transfer, amount, vb, nonce);
        assertEq(d, expected, "digest is FiatToken's");
        ProposalView memory v = treasury.proposal(id);
        assertTrue(v.kind == ProposalKind.TransferAuthorization, "kind");
        assertTrue(v.state == ProposalState.Executed, "approved at once");
        assertEq(v.digest, d, "digest kept");
        assertEq(v.validBefore, vb, "validBefore kept");
        assertEq(v.nonce, nonce, "nonce kept");
        assertEq(treasury.spentToday(), amount, "counted when approved");
        assertTrue(treasury.isValidSignature(d, "") == bytes4(0x1626ba7e), "valid");
        assertTrue(treasury.isValidSignature(d, hex"1234") == bytes4(0x1626ba7e), "any signature bytes");
        assertTrue(treasury.isValidSignature(keccak256("other"), "") == bytes4(0xffffffff), "other hash");

        vm.prank(relayer);
        settle(amount, vb, nonce);
        assertEq(token.balanceOf(seller), amount, "seller paid");
        assertEq(token.balanceOf(address(treasury)), TREASURY_FUNDS - amount, "treasury debited");
        assertTrue(token.authorizationState(address(treasury), nonce), "nonce used");
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        settle(amount, vb, nonce);
        // a used nonce cannot be proposed again
        vm.prank(spender);
        vm.expectRevert(abi.encodeWithSelector(Treasury.AuthorizationNonceUsed.selector, nonce));
        treasury.proposeAuthorization(AuthKind.Transfer, seller, amount, 0, vb, nonce, 0);
    }

    function testLargeAuthorizationNeedsApprovals() public {
        uint256 amount = PER_TX;
        uint256 vb = block.timestamp + 2 hours;
        bytes32 nonce = keccak256("n2");
        (uint256 id, bytes32 d) = proposeAuth(AuthKind.Transfer, amount, vb, nonce);
        assertTrue(treasury.proposal(id).state == ProposalState.Pending, "pending");
        assertTrue(treasury.isValidSignature(d, "") == bytes4(0xffffffff), "not yet valid");
        assertEq(treasury.spentToday(), 0, "not counted yet");
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        settle(amount, vb, nonce);
        vm.prank(o1);
        treasury.approve(id);
        vm.expectRevert(abi.encodeWithSelector(Treasury.NotEnoughApprovals.selector, id, 1, 2));
        treasury.execute(id);
        vm.prank(o2);
        treasury.approve(id);
        vm.expectEmit(address(treasury));
        emit Treasury.AuthorizationApproved(id, d, seller, amount, vb, nonce);
        treasury.execute(id);
        assertEq(treasury.spentToday(), amount, "counted when approved");
        // a different digest (other amount) is still refused
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        settle(amount - 1, vb, nonce);
        settle(amount, vb, nonce);
        assertEq(token.balanceOf(seller), amount, "seller paid");
    }

    function testAuthorizationExpires() public {
        uint256 vb = block.timestamp + 1 hours;
        (, bytes32 d) = proposeAuth(AuthKind.Transfer, 1e6, vb, keccak256("n3"));
        vm.warp(vb - 1);
        assertTrue(treasury.isValidSignature(d, "") == bytes4(0x1626ba7e), "valid before validBefore");
        vm.warp(vb);
        assertTrue(treasury.isValidSignature(d, "") == bytes4(0xffffffff), "invalid from validBefore");
        vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        token.transferWithAuthorization(address(treasury), seller, 1e6, 0, vb, keccak256("n3"), "");
        assertEq(token.balanceOf(seller), 0, "nothing moved");

        // a pending large authorization whose validBefore passed cannot be approved anymore
        uint256 vb2 = block.timestamp + 1 hours;
        (uint256 id,) = proposeAuth(AuthKind.Transfer, PER_TX, vb2, keccak256("n4"));
        approveBy(id, o1, o2);
        vm.warp(vb2);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ValidBeforePassed.selector, vb2));
        treasury.execute(id);
    }

    function testReceiveAuthorization() public {
        uint256 amount = 5e6;
        uint256 vb = block.timestamp + 1 hours;
        bytes32 nonce = keccak256("r1");
        (uint256 id, bytes32 d) = proposeAuth(AuthKind.Receive, amount, vb, nonce);
        assertTrue(treasury.proposal(id).kind == ProposalKind.ReceiveAuthorization, "kind");
        bytes32 expected = authorizationDigest(
            token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), address(treasury), seller, amount, 0, vb, nonce
        );
        assertEq(d, expected, "receive digest");
        // the Transfer form of the same values is a different digest, never approved
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        settle(amount, vb, nonce);
        vm.prank(seller);
        token.receiveWithAuthorization(address(treasury), seller, amount, 0, vb, nonce, "");
        assertEq(token.balanceOf(seller), amount, "payee pulled it");
    }

    function testProposeAuthorizationRefusals() public {
        uint256 vb = block.timestamp + 1 hours;
        vm.prank(o1);
        vm.expectRevert(abi.encodeWithSelector(Treasury.CallerNotSpender.selector, o1));
        treasury.proposeAuthorization(AuthKind.Transfer, seller, 1, 0, vb, 0, 0);
        vm.startPrank(spender);
        vm.expectRevert(Treasury.InvalidRecipient.selector);
        treasury.proposeAuthorization(AuthKind.Transfer, address(0), 1, 0, vb, 0, 0);
        vm.expectRevert(Treasury.ZeroAmount.selector);
        treasury.proposeAuthorization(AuthKind.Transfer, seller, 0, 0, vb, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ExceedsPerTxLimit.selector, PER_TX + 1, PER_TX));
        treasury.proposeAuthorization(AuthKind.Transfer, seller, PER_TX + 1, 0, vb, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ValidityWindowEmpty.selector, vb, vb));
        treasury.proposeAuthorization(AuthKind.Transfer, seller, 1, vb, vb, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ValidBeforePassed.selector, block.timestamp));
        treasury.proposeAuthorization(AuthKind.Transfer, seller, 1, 0, block.timestamp, 0, 0);
        uint256 tooLate = block.timestamp + TTL + 1;
        vm.expectRevert(abi.encodeWithSelector(Treasury.ValidityTooLong.selector, tooLate, tooLate - 1));
        treasury.proposeAuthorization(AuthKind.Transfer, seller, 1, 0, tooLate, 0, 0);
        (, bytes32 d) = treasury.proposeAuthorization(AuthKind.Transfer, seller, 1, 0, vb, keccak256("d"), 0);
        vm.expectRevert(abi.encodeWithSelector(Treasury.DigestAlreadyApproved.selector, d));
        treasury.proposeAuthorization(AuthKind.Transfer, seller, 1, 0, vb, keccak256("d"), 0);
        // two pending large ones with the same digest: only the first can be approved
        (uint256 a, bytes32 big) =
            treasury.proposeAuthorization(AuthKind.Transfer, seller, PER_TX, 0, vb, keccak256("e"), 0);
        (uint256 b,) = treasury.proposeAuthorization(AuthKind.Transfer, seller, PER_TX, 0, vb, keccak256("e"), 0);
        vm.stopPrank();
        approveBy(a, o1, o2);
        approveBy(b, o1, o2);
        treasury.execute(a);
        vm.expectRevert(abi.encodeWithSelector(Treasury.DigestAlreadyApproved.selector, big));
        treasury.execute(b);
        // the daily limit applies to authorizations too (1 + 100 approved, 100 paid)
        uint256 c = pay(seller, PER_TX);
        approveBy(c, o1, o2);
        treasury.execute(c);
        vm.prank(spender);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ExceedsDailyLimit.selector, PER_TX, DAILY - 2 * PER_TX - 1));
        treasury.proposeAuthorization(AuthKind.Transfer, seller, PER_TX, 0, vb, keccak256("f"), 0);
        govern(abi.encodeCall(Treasury.setPolicy, (policyOf(PER_TX, DAILY, APPROVAL, TTL, true))));
        vm.prank(spender);
        vm.expectRevert(abi.encodeWithSelector(Treasury.RecipientNotAllowed.selector, seller));
        treasury.proposeAuthorization(AuthKind.Transfer, seller, 1, 0, vb, keccak256("g"), 0);
    }

    // ------------------------------------------------------------------ fuzz
    /// Per-tx and daily limits over a run of payments below the approval threshold.
    function testFuzzLimits(uint256 seed, uint256 perTx, uint256 daily) public {
        daily = bound(daily, 1, 1_000e6);
        perTx = bound(perTx, 1, daily);
        govern(abi.encodeCall(Treasury.setPolicy, (policyOf(perTx, daily, type(uint256).max, TTL, false))));
        uint256 spent = 0;
        for (uint256 i = 0; i < 12; i++) {
            uint256 amount = bound(uint256(keccak256(abi.encode(seed, i))), 1, perTx * 2);
            vm.prank(spender);
            if (amount > perTx) {
                vm.expectRevert(abi.encodeWithSelector(Treasury.ExceedsPerTxLimit.selector, amount, perTx));
            } else if (amount > daily - spent) {
                vm.expectRevert(abi.encodeWithSelector(Treasury.ExceedsDailyLimit.selector, amount, daily - spent));
            } else {
                spent += amount;
            }
            treasury.proposePayment(seller, amount, 0);
            assertEq(treasury.spentToday(), spent, "spent");
            assertLe(spent, daily, "within the daily limit");
        }
        assertEq(token.balanceOf(seller), spent, "paid what was counted");
    }

    /// The daily window is the UTC day: k*86400 - 1 is the old day, k*86400 a fresh one.
    function testFuzzDayBoundary(uint256 k, uint256 amount) public {
        k = bound(k, START / 1 days + 1, START / 1 days + 10_000);
        amount = bound(amount, 1, APPROVAL - 1);
        vm.warp(k * 1 days - 1);
        // fill the old day to the limit with small payments
        uint256 spent = 0;
        while (spent + (APPROVAL - 1) <= DAILY) {
            pay(seller, APPROVAL - 1);
            spent += APPROVAL - 1;
        }
        uint256 rest = DAILY - spent;
        if (rest > 0) pay(seller, rest);
        assertEq(treasury.remainingDailyAllowance(), 0, "day full");
        vm.prank(spender);
        vm.expectRevert(abi.encodeWithSelector(Treasury.ExceedsDailyLimit.selector, amount, 0));
        treasury.proposePayment(seller, amount, 0);
        vm.warp(k * 1 days);
        assertEq(treasury.remainingDailyAllowance(), DAILY, "a new UTC day");
        pay(seller, amount);
        assertEq(treasury.spentOn(k - 1), DAILY, "old day");
        assertEq(treasury.spentOn(k), amount, "new day");
        assertEq(token.balanceOf(seller), DAILY + amount, "paid");
    }

    /// A large payment executes exactly when at least M current owners approved.
    function testFuzzApprovals(uint8 mask, uint8 threshold_) public {
        uint256 m = bound(threshold_, 1, 3);
        if (m != 2) govern(abi.encodeCall(Treasury.setThreshold, (m)));
        uint256 id = pay(seller, PER_TX);
        address[3] memory os = [o1, o2, o3];
        uint256 count = 0;
        for (uint256 i = 0; i < 3; i++) {
            if ((mask >> i) & 1 == 1) {
                vm.prank(os[i]);
                treasury.approve(id);
                count++;
            }
        }
        assertEq(treasury.proposal(id).approvals, count, "counted");
        if (count < m) {
            vm.expectRevert(abi.encodeWithSelector(Treasury.NotEnoughApprovals.selector, id, count, m));
            treasury.execute(id);
            assertEq(token.balanceOf(seller), 0, "not paid");
        } else {
            treasury.execute(id);
            assertEq(token.balanceOf(seller), PER_TX, "paid");
        }
    }
}
