// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Base, InvariantBase} from "./Base.sol";
import {UsdcFixture} from "./UsdcFixture.sol";
import {Subscription} from "../src/Subscription.sol";
import {USDC} from "../src/USDC.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// Drives a Subscription at random: three plans (different prices and periods, two sharing a payTo), four
/// subscribers (two rich, two nearly broke so charges fail and go PastDue, topped up now and then), subscribe,
/// charge, chargeBatch (duplicate ids included), cancel, setPlanActive and time passing by random amounts.
/// Every successful charge is recorded as (subId, period index), the index computed by the handler from the
/// start it saw at subscribe time, so a second charge in one period is caught whatever the contract stores.
contract SubscriptionHandler is Base {
    USDC internal immutable token;
    Subscription internal immutable subs;
    address internal immutable admin;

    uint256[] public planIds;
    address[] public providers;
    address[] public payTos;
    address[] public subscribers;

    /// the time the sequence has reached (re-applied before each call)
    uint256 public time;
    uint256 public calls;
    uint256 public successfulCharges;

    /// the start each subscription had when the handler subscribed it
    mapping(uint256 => uint256) public startOf;
    /// how many times (subId, period) was charged
    mapping(uint256 => mapping(uint256 => uint256)) public timesCharged;
    /// distinct periods charged per subscription
    mapping(uint256 => uint256) public distinctPeriods;
    /// every (subId, period) pair recorded, once per successful charge
    uint256[] public chargedSub;
    uint256[] public chargedPeriod;
    /// a charge whose period (as the handler computes it) differs from the one the contract says it charged
    uint256 public periodMismatches;

    constructor(USDC token_, Subscription subs_, address admin_) {
        token = token_;
        subs = subs_;
        admin = admin_;
        time = block.timestamp;

        providers.push(address(0x9001));
        providers.push(address(0x9002));
        payTos.push(address(0xB001));
        payTos.push(address(0xB002));

        vm.prank(providers[0]);
        planIds.push(subs.createPlan(payTos[0], 10_000_000, 30 days, "ipfs://monthly"));
        vm.prank(providers[0]);
        planIds.push(subs.createPlan(payTos[0], 3_000_000, 7 days, "ipfs://weekly"));
        vm.prank(providers[1]);
        planIds.push(subs.createPlan(payTos[1], 25_000_000, 1 days, "ipfs://daily"));

        subscribers.push(address(0xC001));
        subscribers.push(address(0xC002));
        subscribers.push(address(0xC003));
        subscribers.push(address(0xC004));
        uint256[4] memory funds = [uint256(1_000_000_000), 500_000_000, 30_000_000, 8_000_000];
        for (uint256 i = 0; i < subscribers.length; ++i) {
            vm.prank(admin);
            token.mint(subscribers[i], funds[i]);
            vm.prank(subscribers[i]);
            token.approve(address(subs), type(uint256).max);
        }
    }

    modifier step() {
        vm.warp(time);
        ++calls;
        _;
    }

    function planCount() external view returns (uint256) {
        return planIds.length;
    }

    function payToCount() external view returns (uint256) {
        return payTos.length;
    }

    function chargeCount() external view returns (uint256) {
        return chargedSub.length;
    }

    // ------------------------------------------------------------ actions

    function subscribe(uint256 s, uint256 p) external step {
        address who = subscribers[s % subscribers.length];
        uint256 planId = planIds[p % planIds.length];
        vm.prank(who);
        try subs.subscribe(planId) returns (uint256 id) {
            startOf[id] = block.timestamp;
            _record(id, 0);
        } catch {}
    }

    function charge(uint256 i) external step {
        uint256 id = _pickSub(i);
        if (id == 0) return;
        Subscription.Sub memory before = subs.subscription(id);
        Subscription.Plan memory p = subs.plan(before.planId);
        uint256 paid = token.balanceOf(p.payTo);
        vm.prank(address(0x4E1A7)); // any keeper may charge
        try subs.charge(id) returns (bool) {} catch {}
        if (token.balanceOf(p.payTo) != paid) {
            _recordCharge(id, p, subs.subscription(id));
        }
    }

    function chargeBatch(uint256 seed, uint256 n) external step {
        uint256 count = subs.subscriptionCount();
        if (count == 0) return;
        n = bound(n, 1, 6);
        uint256[] memory ids = new uint256[](n);
        Subscription.Sub[] memory before = new Subscription.Sub[](n);
        for (uint256 j = 0; j < n; ++j) {
            // ids 0 and count + 1 are unknown; repeats are likely with few subscriptions
            ids[j] = uint256(keccak256(abi.encode(seed, j))) % (count + 2);
            if (ids[j] >= 1 && ids[j] <= count) before[j] = subs.subscription(ids[j]);
        }
        subs.chargeBatch(ids);
        for (uint256 j = 0; j < n; ++j) {
            uint256 id = ids[j];
            if (id == 0 || id > count) continue;
            bool seen;
            for (uint256 q = 0; q < j; ++q) {
                if (ids[q] == id) seen = true;
            }
            if (seen) continue;
            Subscription.Sub memory afterSub = subs.subscription(id);
            if (afterSub.nextPeriod != before[j].nextPeriod || afterSub.paidUntil != before[j].paidUntil) {
                _recordCharge(id, subs.plan(afterSub.planId), afterSub);
            }
        }
    }

    function cancel(uint256 i) external step {
        uint256 id = _pickSub(i);
        if (id == 0) return;
        vm.prank(subs.subscription(id).subscriber);
        try subs.cancel(id) {} catch {}
    }

    function setPlanActive(uint256 p, bool active) external step {
        uint256 k = p % planIds.length;
        vm.prank(providers[k == 2 ? 1 : 0]);
        subs.setPlanActive(planIds[k], active);
    }

    function topUp(uint256 s, uint256 amount) external step {
        vm.prank(admin);
        token.mint(subscribers[s % subscribers.length], bound(amount, 1_000_000, 60_000_000));
    }

    function warp(uint256 dt) external step {
        // mostly inside a period, sometimes across several
        time += dt % 4 == 0 ? bound(dt, 0, 3 days) : bound(dt, 1 hours, 45 days);
    }

    // ------------------------------------------------------------ bookkeeping

    function _pickSub(uint256 i) internal view returns (uint256) {
        uint256 count = subs.subscriptionCount();
        return count == 0 ? 0 : 1 + (i % count);
    }

    function _recordCharge(uint256 id, Subscription.Plan memory p, Subscription.Sub memory afterSub) internal {
        uint256 k = (block.timestamp - startOf[id]) / p.period;
        if (afterSub.nextPeriod != k + 1) ++periodMismatches;
        _record(id, k);
    }

    function _record(uint256 id, uint256 k) internal {
        ++successfulCharges;
        if (timesCharged[id][k] == 0) ++distinctPeriods[id];
        ++timesCharged[id][k];
        chargedSub.push(id);
        chargedPeriod.push(k);
    }
}

contract SubscriptionInvariantTest is InvariantBase, UsdcFixture {
    Subscription internal subs;
    SubscriptionHandler internal handler;

    function setUp() public override {
        super.setUp();
        subs = new Subscription(IERC20(address(token)));
        handler = new SubscriptionHandler(token, subs, admin);

        bytes4[] memory selectors = new bytes4[](8);
        selectors[0] = SubscriptionHandler.subscribe.selector;
        selectors[1] = SubscriptionHandler.charge.selector;
        selectors[2] = SubscriptionHandler.chargeBatch.selector;
        selectors[3] = SubscriptionHandler.cancel.selector;
        selectors[4] = SubscriptionHandler.setPlanActive.selector;
        selectors[5] = SubscriptionHandler.topUp.selector;
        selectors[6] = SubscriptionHandler.warp.selector;
        selectors[7] = SubscriptionHandler.charge.selector; // charging is the point: weight it
        targetContract(address(handler));
        targetSelector(address(handler), selectors);
    }

    function invariant_neverChargedTwiceInOnePeriod() public view {
        uint256 n = handler.chargeCount();
        for (uint256 i = 0; i < n; ++i) {
            uint256 id = handler.chargedSub(i);
            uint256 k = handler.chargedPeriod(i);
            assertEq(handler.timesCharged(id, k), 1, "a (subscription, period) pair charged once");
        }
        assertEq(handler.periodMismatches(), 0, "a charge pays for the period the chain is in");
        // the contract's own record agrees: nothing at or past nextPeriod was charged
        uint256 count = subs.subscriptionCount();
        for (uint256 id = 1; id <= count; ++id) {
            assertLe(handler.distinctPeriods(id), subs.subscription(id).nextPeriod, "distinct periods <= nextPeriod");
        }
    }

    function invariant_providerReceivesPriceTimesDistinctPeriods() public view {
        uint256 m = handler.payToCount();
        uint256 count = subs.subscriptionCount();
        for (uint256 j = 0; j < m; ++j) {
            address payTo = handler.payTos(j);
            uint256 expected;
            for (uint256 id = 1; id <= count; ++id) {
                Subscription.Plan memory p = subs.plan(subs.subscription(id).planId);
                if (p.payTo == payTo) expected += p.price * handler.distinctPeriods(id);
            }
            assertEq(token.balanceOf(payTo), expected, "payTo holds price x distinct charged periods");
        }
        assertEq(token.balanceOf(address(subs)), 0, "the contract holds nothing");
    }
}
