// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title Recurring USDC payments for provider plans, pulled from a subscriber's allowance
/// @notice A provider publishes a plan (price per period, paid to `payTo`). Subscribing charges period 0 at
/// once; afterwards anyone (the provider's keeper) may `charge` a subscription once per period index, where
/// period k = [start + k·period, start + (k+1)·period). Missed periods are never back-charged: a charge always
/// pays for the period the chain is in now. A charge the token refuses (allowance, balance, blacklist, pause)
/// marks the subscription PastDue and emits `ChargeFailed` instead of reverting; a later successful charge in
/// the same or a later period makes it Active again. The subscriber may cancel at any time; the period already
/// paid for stays usable (see `activeSubscriptionOf`).
///
/// Single-call API: `charge` returns true when it moved the price and false when the token refused it (the
/// PastDue mark and the `ChargeFailed` event persist); it reverts with its own error when there is nothing it
/// may charge (unknown, cancelled, already charged this period, plan deactivated). `chargeBatch` never reverts
/// for one entry: it skips those and returns how many it charged.
///
/// A deactivated plan takes no new subscriptions and renews none; paid periods stay usable, and reactivating
/// it resumes charging from the current period.
contract Subscription is ReentrancyGuard {
    using SafeERC20 for IERC20;

    enum Status {
        None,
        Active,
        PastDue,
        Cancelled
    }

    struct Plan {
        address provider;
        address payTo;
        uint256 price;
        uint64 period;
        bool active;
        string metadataURI;
    }

    struct Sub {
        uint256 planId;
        address subscriber;
        uint64 start;
        /// the first period index not charged yet (every index below it was paid or skipped)
        uint64 nextPeriod;
        /// end of the last paid period
        uint64 paidUntil;
        Status status;
    }

    enum Outcome {
        Charged,
        Failed,
        Unknown,
        Cancelled,
        AlreadyCharged,
        Inactive
    }

    /// @notice The longest period a plan may have (keeps every period end inside uint64 seconds).
    uint64 public constant MAX_PERIOD = 100 * 365 days;

    IERC20 public immutable token;

    mapping(uint256 => Plan) private _plans;
    mapping(uint256 => Sub) private _subs;
    /// the latest subscription of a subscriber to a plan (live unless cancelled)
    mapping(uint256 => mapping(address => uint256)) private _latest;
    uint256 private _planCount;
    uint256 private _subCount;

    event PlanCreated(
        uint256 indexed planId,
        address indexed provider,
        address indexed payTo,
        uint256 price,
        uint64 period,
        string metadataURI
    );
    event PlanActiveSet(uint256 indexed planId, bool active);
    event Subscribed(uint256 indexed subId, uint256 indexed planId, address indexed subscriber);
    event Charged(uint256 indexed subId, uint64 period, uint256 amount, uint64 paidUntil);
    event ChargeFailed(uint256 indexed subId, uint64 period, bytes reason);
    event Cancelled(uint256 indexed subId);

    error ZeroPayTo();
    error ZeroPrice();
    error ZeroPeriod();
    error PeriodTooLong(uint64 period, uint64 maxPeriod);
    error UnknownPlan(uint256 planId);
    error NotProvider(uint256 planId, address caller);
    error PlanInactive(uint256 planId);
    error AlreadySubscribed(uint256 planId, address subscriber, uint256 subId);
    error PermitFailed(bytes reason);
    error UnknownSubscription(uint256 subId);
    error NotSubscriber(uint256 subId, address caller);
    error SubscriptionCancelled(uint256 subId);
    error AlreadyCharged(uint256 subId, uint64 period);

    constructor(IERC20 token_) {
        token = token_;
    }

    // ------------------------------------------------------------ plans

    /// @notice Publishes a plan; `msg.sender` becomes its provider. Plans start active.
    function createPlan(address payTo, uint256 price, uint64 period, string calldata metadataURI)
        external
        returns (uint256 planId)
    {
        if (payTo == address(0)) revert ZeroPayTo();
        if (price == 0) revert ZeroPrice();
        if (period == 0) revert ZeroPeriod();
        if (period > MAX_PERIOD) revert PeriodTooLong(period, MAX_PERIOD);
        planId = ++_planCount;
        _plans[planId] = Plan(msg.sender, payTo, price, period, true, metadataURI);
        emit PlanCreated(planId, msg.sender, payTo, price, period, metadataURI);
    }

    /// @notice The provider opens or closes a plan to new subscriptions and renewals.
    function setPlanActive(uint256 planId, bool active) external {
        Plan storage p = _plan(planId);
        if (msg.sender != p.provider) revert NotProvider(planId, msg.sender);
        p.active = active;
        emit PlanActiveSet(planId, active);
    }

    // ------------------------------------------------------------ subscribing

    /// @notice Subscribes `msg.sender`, charging the first period now from an existing allowance (reverts if
    /// that charge fails). One live (not cancelled) subscription per plan and subscriber.
    function subscribe(uint256 planId) external nonReentrant returns (uint256 subId) {
        return _subscribe(planId);
    }

    /// @notice `subscribe` after an EIP-2612 permit from `msg.sender` to this contract for `value`. If the
    /// permit fails (for instance because someone already submitted it) an allowance of at least the price
    /// is accepted instead; otherwise it reverts with `PermitFailed` and the token's reason.
    function subscribeWithPermit(uint256 planId, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
        returns (uint256 subId)
    {
        uint256 price = _plan(planId).price;
        try IERC20Permit(address(token)).permit(msg.sender, address(this), value, deadline, v, r, s) {}
        catch (bytes memory reason) {
            if (token.allowance(msg.sender, address(this)) < price) revert PermitFailed(reason);
        }
        return _subscribe(planId);
    }

    /// @notice The subscriber stops future charges; the period already paid for stays usable.
    function cancel(uint256 subId) external nonReentrant {
        Sub storage sub = _sub(subId);
        if (msg.sender != sub.subscriber) revert NotSubscriber(subId, msg.sender);
        if (sub.status == Status.Cancelled) revert SubscriptionCancelled(subId);
        sub.status = Status.Cancelled;
        emit Cancelled(subId);
    }

    // ------------------------------------------------------------ charging

    /// @notice Charges the current period's price if not charged yet. True: charged. False: the token refused
    /// (now PastDue, `ChargeFailed` emitted). Reverts `UnknownSubscription`, `SubscriptionCancelled`,
    /// `AlreadyCharged` or `PlanInactive` when there is nothing to charge.
    function charge(uint256 subId) external nonReentrant returns (bool charged) {
        Outcome outcome = _charge(subId);
        if (outcome == Outcome.Charged) return true;
        if (outcome == Outcome.Failed) return false;
        if (outcome == Outcome.Unknown) revert UnknownSubscription(subId);
        if (outcome == Outcome.Cancelled) revert SubscriptionCancelled(subId);
        if (outcome == Outcome.Inactive) revert PlanInactive(_subs[subId].planId);
        revert AlreadyCharged(subId, _periodIndex(_subs[subId]));
    }

    /// @notice Charges each subscription like `charge`, skipping the ones it cannot charge instead of reverting.
    /// @return charged how many were charged
    function chargeBatch(uint256[] calldata ids) external nonReentrant returns (uint256 charged) {
        for (uint256 i = 0; i < ids.length; ++i) {
            if (_charge(ids[i]) == Outcome.Charged) ++charged;
        }
    }

    // ------------------------------------------------------------ views

    function plan(uint256 planId) external view returns (Plan memory) {
        return _plan(planId);
    }

    function subscription(uint256 subId) external view returns (Sub memory) {
        return _sub(subId);
    }

    function planCount() external view returns (uint256) {
        return _planCount;
    }

    function subscriptionCount() external view returns (uint256) {
        return _subCount;
    }

    /// @notice Renewing and paid: not cancelled, and the period the chain is in now has been paid for.
    function isActive(uint256 subId) external view returns (bool) {
        Sub storage sub = _sub(subId);
        return sub.status != Status.Cancelled && block.timestamp < sub.paidUntil;
    }

    /// @notice What a server asks before serving: the latest subscription of `subscriber` to `planId` (0 if
    /// none), whether access is paid for right now (now < paidUntil — which includes the rest of a cancelled
    /// subscription's paid period), and when that paid access ends.
    function activeSubscriptionOf(uint256 planId, address subscriber)
        external
        view
        returns (uint256 subId, bool active, uint64 paidUntil)
    {
        subId = _latest[planId][subscriber];
        if (subId == 0) return (0, false, 0);
        paidUntil = _subs[subId].paidUntil;
        active = block.timestamp < paidUntil;
    }

    /// @notice The period index the chain is in now for `subId`.
    function currentPeriod(uint256 subId) external view returns (uint64) {
        return _periodIndex(_sub(subId));
    }

    // ------------------------------------------------------------ internals

    function _subscribe(uint256 planId) private returns (uint256 subId) {
        Plan storage p = _plan(planId);
        if (!p.active) revert PlanInactive(planId);
        uint256 previous = _latest[planId][msg.sender];
        if (previous != 0 && _subs[previous].status != Status.Cancelled) {
            revert AlreadySubscribed(planId, msg.sender, previous);
        }
        subId = ++_subCount;
        uint64 paidUntil = uint64(block.timestamp + p.period);
        _subs[subId] = Sub(planId, msg.sender, uint64(block.timestamp), 1, paidUntil, Status.Active);
        _latest[planId][msg.sender] = subId;
        emit Subscribed(subId, planId, msg.sender);
        token.safeTransferFrom(msg.sender, p.payTo, p.price);
        emit Charged(subId, 0, p.price, paidUntil);
    }

    function _charge(uint256 subId) private returns (Outcome) {
        Sub storage sub = _subs[subId];
        if (sub.status == Status.None) return Outcome.Unknown;
        if (sub.status == Status.Cancelled) return Outcome.Cancelled;
        Plan storage p = _plans[sub.planId];
        if (!p.active) return Outcome.Inactive;
        uint64 k = _periodIndex(sub);
        if (k < sub.nextPeriod) return Outcome.AlreadyCharged;

        // Any failure of the token — a revert, a `false` return, an odd return — is a failed charge.
        (bool ok, bytes memory ret) =
            address(token).call(abi.encodeCall(IERC20.transferFrom, (sub.subscriber, p.payTo, p.price)));
        if (ok && (ret.length == 0 ? address(token).code.length > 0 : ret.length == 32 && uint256(bytes32(ret)) == 1))
        {
            uint64 paidUntil = uint64(uint256(sub.start) + (uint256(k) + 1) * p.period);
            sub.nextPeriod = k + 1;
            sub.paidUntil = paidUntil;
            sub.status = Status.Active;
            emit Charged(subId, k, p.price, paidUntil);
            return Outcome.Charged;
        }
        sub.status = Status.PastDue;
        emit ChargeFailed(subId, k, ret);
        return Outcome.Failed;
    }

    function _periodIndex(Sub storage sub) private view returns (uint64) {
        return uint64((block.timestamp - sub.start) / _plans[sub.planId].period);
    }

    function _plan(uint256 planId) private view returns (Plan storage p) {
        p = _plans[planId];
        if (p.provider == address(0)) revert UnknownPlan(planId);
    }

    function _sub(uint256 subId) private view returns (Sub storage sub) {
        sub = _subs[subId];
        if (sub.status == Status.None) revert UnknownSubscription(subId);
    }
}
