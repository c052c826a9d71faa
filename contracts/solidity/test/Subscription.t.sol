// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {UsdcFixture} from "./UsdcFixture.sol";
import {Subscription} from "../src/Subscription.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// A token whose transferFrom answers `false` instead of reverting (some ERC-20s do).
contract FalseToken {
    function transferFrom(address, address, uint256) external pure returns (bool) {
        return false;
    }
}

/// A token whose transferFrom returns nothing and moves nothing (USDT-style return shape).
contract SilentToken {
    uint256 public calls;

    function transferFrom(address, address, uint256) external {
        ++calls;
    }
}

/// Subscription: every function and refusal, the permit path with a real EIP-2612 signature, per-period
/// charging (same period refused, one price per later period, no back-charging), PastDue on a refused pull
/// (unfunded, blacklisted, paused, `false`-returning token) without reverting a batch, cancel, and fuzzed
/// period boundaries.
contract SubscriptionTest is UsdcFixture {
    Subscription internal subs;
    address internal provider = address(0x9E0F1DE4);
    address internal payTo = address(0x9A7E0);
    address internal stranger;
    uint256 internal constant PRICE = 10_000_000; // 10 USDC
    uint64 internal constant PERIOD = 30 days;
    string internal constant URI = "ipfs://plan";
    uint256 internal planId;

    function setUp() public override {
        super.setUp();
        stranger = vm.addr(STRANGER_KEY);
        subs = new Subscription(IERC20(address(token)));
        vm.prank(provider);
        planId = subs.createPlan(payTo, PRICE, PERIOD, URI);
    }

    // ------------------------------------------------------------ helpers

    function subscribed() internal returns (uint256 id) {
        vm.startPrank(buyer);
        token.approve(address(subs), type(uint256).max);
        id = subs.subscribe(planId);
        vm.stopPrank();
    }

    function fundAccount(address who, uint256 amount) internal {
        vm.prank(admin);
        token.mint(who, amount);
    }

    function status(uint256 id) internal view returns (uint256) {
        return uint256(subs.subscription(id).status);
    }

    function permitSig(uint256 value, uint256 deadline) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 h = permitDigest(buyer, address(subs), value, token.nonces(buyer), deadline);
        return vm.sign(BUYER_KEY, h);
    }

    // ------------------------------------------------------------ plans

    function testCreatePlan() public {
        assertEq(subs.planCount(), 1, "one plan");
        Subscription.Plan memory p = subs.plan(planId);
        assertEq(p.provider, provider, "provider");
        assertEq(p.payTo, payTo, "payTo");
        assertEq(p.price, PRICE, "price");
        assertEq(uint256(p.period), uint256(PERIOD), "period");
        assertTrue(p.active, "active");
        assertEq(p.metadataURI, URI, "uri");
        assertEq(address(subs.token()), address(token), "token");

        vm.expectEmit(address(subs));
        emit Subscription.PlanCreated(2, stranger, seller, 5, 1 days, "x");
        vm.prank(stranger);
        assertEq(subs.createPlan(seller, 5, 1 days, "x"), 2, "second id");
        assertEq(subs.planCount(), 2, "two plans");
    }

    function testCreatePlanRefusals() public {
        vm.expectRevert(Subscription.ZeroPayTo.selector);
        subs.createPlan(address(0), PRICE, PERIOD, URI);
        vm.expectRevert(Subscription.ZeroPrice.selector);
        subs.createPlan(payTo, 0, PERIOD, URI);
        vm.expectRevert(Subscription.ZeroPeriod.selector);
        subs.createPlan(payTo, PRICE, 0, URI);
        uint64 max = subs.MAX_PERIOD();
        vm.expectRevert(abi.encodeWithSelector(Subscription.PeriodTooLong.selector, max + 1, max));
        subs.createPlan(payTo, PRICE, max + 1, URI);
        assertEq(subs.createPlan(payTo, PRICE, max, URI), 2, "max period accepted");
    }

    function testSetPlanActive() public {
        vm.expectEmit(address(subs));
        emit Subscription.PlanActiveSet(planId, false);
        vm.prank(provider);
        subs.setPlanActive(planId, false);
        assertFalse(subs.plan(planId).active, "inactive");
        vm.prank(provider);
        subs.setPlanActive(planId, true);
        assertTrue(subs.plan(planId).active, "active again");
    }

    function testSetPlanActiveRefusals() public {
        vm.expectRevert(abi.encodeWithSelector(Subscription.NotProvider.selector, planId, payTo));
        vm.prank(payTo);
        subs.setPlanActive(planId, false);
        vm.expectRevert(abi.encodeWithSelector(Subscription.UnknownPlan.selector, 7));
        vm.prank(provider);
        subs.setPlanActive(7, false);
    }

    function testPlanViewUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Subscription.UnknownPlan.selector, 0));
        subs.plan(0);
    }

    // ------------------------------------------------------------ subscribe

    function testSubscribeChargesFirstPeriod() public {
        vm.startPrank(buyer);
        token.approve(address(subs), PRICE);
        vm.expectEmit(address(subs));
        emit Subscription.Subscribed(1, planId, buyer);
        vm.expectEmit(address(subs));
        emit Subscription.Charged(1, 0, PRICE, uint64(START) + PERIOD);
        uint256 id = subs.subscribe(planId);
        vm.stopPrank();
        assertEq(id, 1, "first id");
        assertEq(subs.subscriptionCount(), 1, "count");
        assertEq(token.balanceOf(payTo), PRICE, "payTo paid");
        assertEq(token.balanceOf(buyer), FUNDS - PRICE, "buyer debited");
        assertEq(token.balanceOf(address(subs)), 0, "contract holds nothing");
        Subscription.Sub memory s = subs.subscription(id);
        assertEq(s.planId, planId, "plan");
        assertEq(s.subscriber, buyer, "subscriber");
        assertEq(uint256(s.start), START, "start");
        assertEq(uint256(s.nextPeriod), 1, "next period");
        assertEq(uint256(s.paidUntil), START + PERIOD, "paid until");
        assertEq(uint256(s.status), uint256(Subscription.Status.Active), "active");
        assertTrue(subs.isActive(id), "isActive");
        assertEq(uint256(subs.currentPeriod(id)), 0, "period 0");
        (uint256 sid, bool active, uint64 until) = subs.activeSubscriptionOf(planId, buyer);
        assertEq(sid, id, "latest");
        assertTrue(active, "served");
        assertEq(uint256(until), START + PERIOD, "until");
    }

    function testSubscribeWithoutAllowanceReverts() public {
        vm.expectRevert(bytes("ERC20: transfer amount exceeds allowance"));
        vm.prank(buyer);
        subs.subscribe(planId);
        assertEq(subs.subscriptionCount(), 0, "nothing stored");
        (uint256 sid, bool active, uint64 until) = subs.activeSubscriptionOf(planId, buyer);
        assertEq(sid, 0, "none");
        assertFalse(active, "not served");
        assertEq(uint256(until), 0, "no paid time");
    }

    function testSubscribeUnfundedReverts() public {
        vm.startPrank(stranger);
        token.approve(address(subs), PRICE);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        subs.subscribe(planId);
        vm.stopPrank();
    }

    function testSubscribeRefusals() public {
        vm.expectRevert(abi.encodeWithSelector(Subscription.UnknownPlan.selector, 9));
        subs.subscribe(9);
        uint256 id = subscribed();
        vm.expectRevert(abi.encodeWithSelector(Subscription.AlreadySubscribed.selector, planId, buyer, id));
        vm.prank(buyer);
        subs.subscribe(planId);
        vm.prank(provider);
        subs.setPlanActive(planId, false);
        vm.expectRevert(abi.encodeWithSelector(Subscription.PlanInactive.selector, planId));
        vm.prank(stranger);
        subs.subscribe(planId);
    }

    function testResubscribeAfterCancel() public {
        uint256 id = subscribed();
        vm.prank(buyer);
        subs.cancel(id);
        vm.prank(buyer);
        uint256 again = subs.subscribe(planId);
        assertEq(again, 2, "new id");
        assertEq(token.balanceOf(payTo), 2 * PRICE, "charged again");
        (uint256 sid,,) = subs.activeSubscriptionOf(planId, buyer);
        assertEq(sid, again, "latest is the new one");
    }

    // ------------------------------------------------------------ subscribeWithPermit

    function testSubscribeWithPermit() public {
        uint256 deadline = START + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = permitSig(PRICE * 12, deadline);
        assertEq(token.allowance(buyer, address(subs)), 0, "no allowance before");
        vm.prank(buyer);
        uint256 id = subs.subscribeWithPermit(planId, PRICE * 12, deadline, v, r, s);
        assertEq(token.nonces(buyer), 1, "permit nonce used");
        assertEq(token.allowance(buyer, address(subs)), PRICE * 11, "allowance left after the first charge");
        assertEq(token.balanceOf(payTo), PRICE, "first period paid");
        assertTrue(subs.isActive(id), "active");
    }

    function testSubscribeWithPermitBadSignatureReverts() public {
        uint256 deadline = START + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = permitSig(PRICE, deadline);
        // signed for PRICE, submitted for more: recovers another signer
        vm.expectRevert(
            abi.encodeWithSelector(Subscription.PermitFailed.selector, revertData("EIP2612: invalid signature"))
        );
        vm.prank(buyer);
        subs.subscribeWithPermit(planId, PRICE + 1, deadline, v, r, s);
        assertEq(subs.subscriptionCount(), 0, "nothing stored");
    }

    function testSubscribeWithPermitExpiredReverts() public {
        uint256 deadline = START - 1;
        (uint8 v, bytes32 r, bytes32 s) = permitSig(PRICE, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(Subscription.PermitFailed.selector, revertData("FiatTokenV2: permit is expired"))
        );
        vm.prank(buyer);
        subs.subscribeWithPermit(planId, PRICE, deadline, v, r, s);
    }

    /// Someone submits the permit first (front-running): the subscribe still goes through on the allowance.
    function testSubscribeWithPermitAlreadySubmitted() public {
        uint256 deadline = START + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = permitSig(PRICE, deadline);
        vm.prank(stranger);
        token.permit(buyer, address(subs), PRICE, deadline, v, r, s);
        vm.prank(buyer);
        uint256 id = subs.subscribeWithPermit(planId, PRICE, deadline, v, r, s);
        assertEq(token.balanceOf(payTo), PRICE, "paid");
        assertTrue(subs.isActive(id), "active");
    }

    function testSubscribeWithPermitUnknownPlan() public {
        vm.expectRevert(abi.encodeWithSelector(Subscription.UnknownPlan.selector, 5));
        vm.prank(buyer);
        subs.subscribeWithPermit(5, PRICE, START + 1, 27, bytes32(0), bytes32(0));
    }

    /// A permit for less than the price succeeds, then the first charge fails: the whole subscribe reverts.
    function testSubscribeWithPermitTooSmall() public {
        uint256 deadline = START + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = permitSig(PRICE - 1, deadline);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds allowance"));
        vm.prank(buyer);
        subs.subscribeWithPermit(planId, PRICE - 1, deadline, v, r, s);
        assertEq(token.nonces(buyer), 0, "permit rolled back too");
    }

    // ------------------------------------------------------------ charge

    function testChargeSamePeriodRefused() public {
        uint256 id = subscribed();
        vm.expectRevert(abi.encodeWithSelector(Subscription.AlreadyCharged.selector, id, 0));
        vm.prank(provider);
        subs.charge(id);
        vm.warp(START + PERIOD - 1);
        vm.expectRevert(abi.encodeWithSelector(Subscription.AlreadyCharged.selector, id, 0));
        subs.charge(id);
        assertEq(token.balanceOf(payTo), PRICE, "only the first period");
    }

    function testChargeNextPeriodMovesOnePrice() public {
        uint256 id = subscribed();
        vm.warp(START + PERIOD);
        assertFalse(subs.isActive(id), "period 1 unpaid");
        assertEq(uint256(subs.currentPeriod(id)), 1, "period 1");
        uint256 before = token.balanceOf(buyer);
        vm.expectEmit(address(subs));
        emit Subscription.Charged(id, 1, PRICE, uint64(START) + 2 * PERIOD);
        vm.prank(provider);
        assertTrue(subs.charge(id), "charged");
        assertEq(token.balanceOf(buyer), before - PRICE, "buyer -price");
        assertEq(token.balanceOf(payTo), 2 * PRICE, "payTo +price");
        assertTrue(subs.isActive(id), "period 1 paid");
        assertEq(uint256(subs.subscription(id).paidUntil), START + 2 * PERIOD, "paid until");
        assertEq(uint256(subs.subscription(id).nextPeriod), 2, "next");
        vm.expectRevert(abi.encodeWithSelector(Subscription.AlreadyCharged.selector, id, 1));
        subs.charge(id);
    }

    function testMissedPeriodsNotBackCharged() public {
        uint256 id = subscribed();
        vm.warp(START + 5 * PERIOD + 3);
        assertTrue(subs.charge(id), "charged");
        assertEq(token.balanceOf(payTo), 2 * PRICE, "one price for five elapsed periods");
        assertEq(uint256(subs.subscription(id).paidUntil), START + 6 * PERIOD, "paid through period 5");
        assertEq(uint256(subs.subscription(id).nextPeriod), 6, "next");
    }

    function testChargeRefusals() public {
        vm.expectRevert(abi.encodeWithSelector(Subscription.UnknownSubscription.selector, 1));
        subs.charge(1);
        uint256 id = subscribed();
        vm.warp(START + PERIOD);
        vm.prank(provider);
        subs.setPlanActive(planId, false);
        vm.expectRevert(abi.encodeWithSelector(Subscription.PlanInactive.selector, planId));
        subs.charge(id);
        vm.prank(provider);
        subs.setPlanActive(planId, true);
        vm.prank(buyer);
        subs.cancel(id);
        vm.expectRevert(abi.encodeWithSelector(Subscription.SubscriptionCancelled.selector, id));
        subs.charge(id);
        assertEq(token.balanceOf(payTo), PRICE, "nothing after the first");
    }

    function testReactivatedPlanChargesCurrentPeriod() public {
        uint256 id = subscribed();
        vm.prank(provider);
        subs.setPlanActive(planId, false);
        vm.warp(START + 3 * PERIOD);
        vm.prank(provider);
        subs.setPlanActive(planId, true);
        assertTrue(subs.charge(id), "charged");
        assertEq(token.balanceOf(payTo), 2 * PRICE, "one price");
        assertEq(uint256(subs.subscription(id).paidUntil), START + 4 * PERIOD, "period 3 paid");
    }

    function testUnfundedChargeGoesPastDueThenRecovers() public {
        uint256 id = subscribed();
        uint256 rest = token.balanceOf(buyer);
        vm.prank(buyer);
        token.transfer(stranger, rest);
        vm.warp(START + PERIOD);
        vm.expectEmit(address(subs));
        emit Subscription.ChargeFailed(id, 1, revertData("ERC20: transfer amount exceeds balance"));
        assertFalse(subs.charge(id), "refused");
        assertEq(status(id), uint256(Subscription.Status.PastDue), "past due");
        assertFalse(subs.isActive(id), "not active");
        (, bool active,) = subs.activeSubscriptionOf(planId, buyer);
        assertFalse(active, "not served");
        assertEq(token.balanceOf(payTo), PRICE, "nothing moved");
        // a retry in the same period after funding succeeds and makes it Active
        fundAccount(buyer, PRICE);
        vm.warp(START + PERIOD + 1 days);
        assertTrue(subs.charge(id), "retry charged");
        assertEq(status(id), uint256(Subscription.Status.Active), "active again");
        assertEq(token.balanceOf(payTo), 2 * PRICE, "one price");
        assertEq(token.balanceOf(buyer), 0, "buyer drained exactly");
        assertTrue(subs.isActive(id), "paid");
    }

    function testNoAllowanceChargeGoesPastDue() public {
        uint256 id = subscribed();
        vm.prank(buyer);
        token.approve(address(subs), 0);
        vm.warp(START + PERIOD);
        vm.expectEmit(address(subs));
        emit Subscription.ChargeFailed(id, 1, revertData("ERC20: transfer amount exceeds allowance"));
        assertFalse(subs.charge(id), "refused");
        assertEq(status(id), uint256(Subscription.Status.PastDue), "past due");
    }

    function testBlacklistedChargeGoesPastDue() public {
        uint256 id = subscribed();
        vm.prank(admin);
        token.blacklist(buyer);
        vm.warp(START + PERIOD);
        vm.expectEmit(address(subs));
        emit Subscription.ChargeFailed(id, 1, revertData("Blacklistable: account is blacklisted"));
        assertFalse(subs.charge(id), "refused");
        assertEq(status(id), uint256(Subscription.Status.PastDue), "past due");
    }

    function testPausedChargeGoesPastDue() public {
        uint256 id = subscribed();
        vm.prank(admin);
        token.pause();
        vm.warp(START + PERIOD);
        vm.expectEmit(address(subs));
        emit Subscription.ChargeFailed(id, 1, revertData("Pausable: paused"));
        assertFalse(subs.charge(id), "refused");
        assertEq(status(id), uint256(Subscription.Status.PastDue), "past due");
    }

    function testFalseReturningTokenIsAFailure() public {
        FalseToken bad = new FalseToken();
        Subscription s = new Subscription(IERC20(address(bad)));
        // subscribe's SafeERC20 pull refuses a `false` as well
        uint256 p = s.createPlan(payTo, PRICE, PERIOD, URI);
        vm.expectRevert(abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, address(bad)));
        vm.prank(buyer);
        s.subscribe(p);
        assertEq(s.subscriptionCount(), 0, "none");
    }

    function testChargeFalseReturnMarksPastDue() public {
        uint256 id = subscribed();
        FalseToken bad = new FalseToken();
        vm.etch(address(token), address(bad).code);
        vm.warp(START + PERIOD);
        vm.expectEmit(address(subs));
        emit Subscription.ChargeFailed(id, 1, abi.encode(false));
        assertFalse(subs.charge(id), "a false return is a failure");
        assertEq(status(id), uint256(Subscription.Status.PastDue), "past due");
    }

    function testNoReturnTokenCounts() public {
        SilentToken silent = new SilentToken();
        Subscription s = new Subscription(IERC20(address(silent)));
        uint256 p = s.createPlan(payTo, PRICE, PERIOD, URI);
        vm.prank(buyer);
        uint256 id = s.subscribe(p);
        vm.warp(START + PERIOD);
        assertTrue(s.charge(id), "an empty return from a contract counts as success");
        assertEq(silent.calls(), 2, "two pulls");
    }

    // ------------------------------------------------------------ chargeBatch

    function testChargeBatchSkipsBadEntries() public {
        uint256 a = subscribed();
        // b: unfunded after subscribing
        fundAccount(stranger, PRICE);
        vm.startPrank(stranger);
        token.approve(address(subs), type(uint256).max);
        uint256 b = subs.subscribe(planId);
        vm.stopPrank();
        // c: blacklisted
        address carol = address(0xCA401);
        fundAccount(carol, 10 * PRICE);
        vm.startPrank(carol);
        token.approve(address(subs), type(uint256).max);
        uint256 c = subs.subscribe(planId);
        vm.stopPrank();
        vm.prank(admin);
        token.blacklist(carol);
        // d: cancelled
        address dave = address(0xDA7E);
        fundAccount(dave, 10 * PRICE);
        vm.startPrank(dave);
        token.approve(address(subs), type(uint256).max);
        uint256 d = subs.subscribe(planId);
        subs.cancel(d);
        vm.stopPrank();
        assertEq(token.balanceOf(payTo), 4 * PRICE, "four first periods");

        vm.warp(START + PERIOD);
        uint256[] memory ids = new uint256[](6);
        ids[0] = a;
        ids[1] = b;
        ids[2] = c;
        ids[3] = d;
        ids[4] = 99; // unknown
        ids[5] = a; // twice in one batch: second is already charged
        vm.prank(provider);
        assertEq(subs.chargeBatch(ids), 1, "only a charged");
        assertEq(token.balanceOf(payTo), 5 * PRICE, "one more price");
        assertEq(status(a), uint256(Subscription.Status.Active), "a active");
        assertEq(status(b), uint256(Subscription.Status.PastDue), "b past due");
        assertEq(status(c), uint256(Subscription.Status.PastDue), "c past due");
        assertEq(status(d), uint256(Subscription.Status.Cancelled), "d cancelled");
        assertEq(token.balanceOf(dave), 9 * PRICE, "cancelled not charged");
        assertEq(token.balanceOf(carol), 9 * PRICE, "blacklisted not charged");

        // plan inactive: batch skips all
        vm.warp(START + 2 * PERIOD);
        vm.prank(provider);
        subs.setPlanActive(planId, false);
        assertEq(subs.chargeBatch(ids), 0, "inactive plan skipped");
        assertEq(subs.chargeBatch(new uint256[](0)), 0, "empty batch");
    }

    // ------------------------------------------------------------ cancel

    function testCancelStopsCharges() public {
        uint256 id = subscribed();
        vm.warp(START + 10 days);
        vm.expectEmit(address(subs));
        emit Subscription.Cancelled(id);
        vm.prank(buyer);
        subs.cancel(id);
        assertEq(status(id), uint256(Subscription.Status.Cancelled), "cancelled");
        assertFalse(subs.isActive(id), "not renewing");
        (uint256 sid, bool active, uint64 until) = subs.activeSubscriptionOf(planId, buyer);
        assertEq(sid, id, "still the latest");
        assertTrue(active, "paid period stays usable");
        assertEq(uint256(until), START + PERIOD, "until period end");
        vm.warp(START + PERIOD);
        (, active,) = subs.activeSubscriptionOf(planId, buyer);
        assertFalse(active, "over after the paid period");
        uint256 before = token.balanceOf(buyer);
        vm.expectRevert(abi.encodeWithSelector(Subscription.SubscriptionCancelled.selector, id));
        subs.charge(id);
        uint256[] memory ids = new uint256[](1);
        ids[0] = id;
        assertEq(subs.chargeBatch(ids), 0, "batch skips it");
        assertEq(token.balanceOf(buyer), before, "nothing moved");
    }

    function testCancelRefusals() public {
        vm.expectRevert(abi.encodeWithSelector(Subscription.UnknownSubscription.selector, 1));
        subs.cancel(1);
        uint256 id = subscribed();
        vm.expectRevert(abi.encodeWithSelector(Subscription.NotSubscriber.selector, id, provider));
        vm.prank(provider);
        subs.cancel(id);
        vm.prank(buyer);
        subs.cancel(id);
        vm.expectRevert(abi.encodeWithSelector(Subscription.SubscriptionCancelled.selector, id));
        vm.prank(buyer);
        subs.cancel(id);
    }

    function testCancelPastDue() public {
        uint256 id = subscribed();
        vm.prank(buyer);
        token.approve(address(subs), 0);
        vm.warp(START + PERIOD);
        subs.charge(id);
        vm.prank(buyer);
        subs.cancel(id);
        assertEq(status(id), uint256(Subscription.Status.Cancelled), "past due can cancel");
    }

    // ------------------------------------------------------------ views

    function testViewsUnknownSubscription() public {
        vm.expectRevert(abi.encodeWithSelector(Subscription.UnknownSubscription.selector, 3));
        subs.subscription(3);
        vm.expectRevert(abi.encodeWithSelector(Subscription.UnknownSubscription.selector, 3));
        subs.isActive(3);
        vm.expectRevert(abi.encodeWithSelector(Subscription.UnknownSubscription.selector, 3));
        subs.currentPeriod(3);
    }

    // ------------------------------------------------------------ fuzz

    /// Whatever the period and however far the chain moves, a charge succeeds exactly when a new period index
    /// has begun, moves exactly one price, and pays through the end of the period the chain is in.
    function testFuzzPeriodBoundaries(uint64 period, uint256 elapsed, uint256 again) public {
        period = uint64(bound(period, 1, 3650 days));
        elapsed = bound(elapsed, 0, 20 * uint256(period));
        vm.prank(provider);
        uint256 p = subs.createPlan(payTo, PRICE, period, URI);
        vm.startPrank(buyer);
        token.approve(address(subs), type(uint256).max);
        uint256 id = subs.subscribe(p);
        vm.stopPrank();

        vm.warp(START + elapsed);
        uint256 k = elapsed / period;
        assertEq(uint256(subs.currentPeriod(id)), k, "period index");
        assertEq(subs.isActive(id), k == 0, "active only in period 0 before a charge");
        uint256 paid = token.balanceOf(payTo);
        if (k == 0) {
            vm.expectRevert(abi.encodeWithSelector(Subscription.AlreadyCharged.selector, id, 0));
            subs.charge(id);
            assertEq(token.balanceOf(payTo), paid, "nothing moved");
        } else {
            assertTrue(subs.charge(id), "charged");
            assertEq(token.balanceOf(payTo), paid + PRICE, "one price");
            assertEq(uint256(subs.subscription(id).paidUntil), START + (k + 1) * period, "paid until");
            assertTrue(subs.isActive(id), "paid now");
        }
        // a second attempt within the same period never moves money; one in a later period moves one price
        uint256 periodEnd = START + (k + 1) * uint256(period);
        uint256 t = bound(again, START + elapsed, periodEnd + 2 * uint256(period));
        vm.warp(t);
        paid = token.balanceOf(payTo);
        if (t < periodEnd) {
            vm.expectRevert(abi.encodeWithSelector(Subscription.AlreadyCharged.selector, id, uint64(k)));
            subs.charge(id);
            assertEq(token.balanceOf(payTo), paid, "same period: nothing");
        } else {
            assertTrue(subs.charge(id), "later period charged");
            assertEq(token.balanceOf(payTo), paid + PRICE, "later period: one price");
        }
    }
}
