// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Base, InvariantBase} from "./Base.sol";
import {UsdcFixture} from "./UsdcFixture.sol";
import {Escrow} from "../src/Escrow.sol";
import {USDC} from "../src/USDC.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// Drives an Escrow at random with several buyers, sellers and arbiters: funding by allowance and by signed
/// ReceiveWithAuthorization, delivery (single and batch), release, claim, dispute, resolve, refund and time
/// passing. Every call picks any existing agreement, settled ones included, so repeated settlements are tried
/// all the time; the handler records what the escrow paid out for each agreement.
contract EscrowHandler is Base {
    USDC internal immutable token;
    Escrow internal immutable escrow;
    uint256[] internal buyerKeys;
    address[] public buyers;
    address[] public sellers;
    address[] public arbiters;
    address internal constant RELAYER = address(0x4E1A7);

    /// the time the sequence has reached (re-applied before each call)
    uint256 public time;
    /// what left the escrow while settling each agreement
    mapping(uint256 => uint256) public paidOut;
    uint256 public calls;
    uint256 internal salt;

    constructor(USDC token_, Escrow escrow_, uint256[] memory keys, address[] memory sellers_, address[] memory arbiters_) {
        token = token_;
        escrow = escrow_;
        buyerKeys = keys;
        for (uint256 i = 0; i < keys.length; ++i) {
            buyers.push(vm.addr(keys[i]));
        }
        sellers = sellers_;
        arbiters = arbiters_;
        time = block.timestamp;
    }

    modifier step() {
        vm.warp(time);
        ++calls;
        _;
    }

    function buyerCount() external view returns (uint256) {
        return buyers.length;
    }

    function sellerCount() external view returns (uint256) {
        return sellers.length;
    }

    function arbiterCount() external view returns (uint256) {
        return arbiters.length;
    }

    // ------------------------------------------------------------ actions

    function create(uint256 b, uint256 s, uint256 a, uint256 amount, uint256 delivery, uint256 review) external step {
        Escrow.Terms memory t = _terms(s, a, amount, delivery, review);
        address buyer = buyers[b % buyers.length];
        if (token.balanceOf(buyer) < t.amount) return;
        vm.startPrank(buyer);
        token.approve(address(escrow), t.amount);
        escrow.create(t);
        vm.stopPrank();
    }

    function createWithAuthorization(uint256 b, uint256 s, uint256 a, uint256 amount, uint256 delivery, uint256 review)
        external
        step
    {
        Escrow.Terms memory t = _terms(s, a, amount, delivery, review);
        uint256 i = b % buyers.length;
        if (token.balanceOf(buyers[i]) < t.amount) return;
        bytes32 nonce = escrow.termsNonce(t);
        bytes32 structHash = keccak256(
            abi.encode(
                token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), buyers[i], address(escrow), t.amount, 0, time + 1, nonce
            )
        );
        bytes32 h = keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 sig) = vm.sign(buyerKeys[i], h);
        vm.prank(RELAYER);
        escrow.createWithAuthorization(t, buyers[i], 0, time + 1, nonce, abi.encodePacked(r, sig, v));
    }

    function deliver(uint256 seed, bytes32 hash) external step {
        (uint256 id, bool ok) = _pick(seed);
        if (!ok) return;
        vm.prank(escrow.agreement(id).seller);
        try escrow.markDelivered(id, hash) {} catch {}
    }

    function deliverBatch(uint256 seed1, uint256 seed2) external step {
        (uint256 id1, bool ok) = _pick(seed1);
        if (!ok) return;
        (uint256 id2,) = _pick(seed2);
        Escrow.Agreement memory a1 = escrow.agreement(id1);
        if (escrow.agreement(id2).seller != a1.seller) id2 = id1;
        uint256[] memory ids = new uint256[](id1 == id2 ? 1 : 2);
        bytes32[] memory hashes = new bytes32[](ids.length);
        ids[0] = id1;
        if (ids.length == 2) ids[1] = id2;
        vm.prank(a1.seller);
        try escrow.markDeliveredBatch(ids, hashes) {} catch {}
    }

    function release(uint256 seed) external step {
        (uint256 id, bool ok) = _pick(seed);
        if (!ok) return;
        address buyer = escrow.agreement(id).buyer;
        uint256 before = token.balanceOf(address(escrow));
        vm.prank(buyer);
        try escrow.release(id) {} catch {}
        paidOut[id] += before - token.balanceOf(address(escrow));
    }

    function claim(uint256 seed) external step {
        (uint256 id, bool ok) = _pick(seed);
        if (!ok) return;
        uint256 before = token.balanceOf(address(escrow));
        vm.prank(RELAYER);
        try escrow.claim(id) {} catch {}
        paidOut[id] += before - token.balanceOf(address(escrow));
    }

    function dispute(uint256 seed, bytes32 reason) external step {
        (uint256 id, bool ok) = _pick(seed);
        if (!ok) return;
        vm.prank(escrow.agreement(id).buyer);
        try escrow.dispute(id, reason) {} catch {}
    }

    function resolve(uint256 seed, uint256 buyerAmount) external step {
        (uint256 id, bool ok) = _pick(seed);
        if (!ok) return;
        Escrow.Agreement memory a = escrow.agreement(id);
        buyerAmount = bound(buyerAmount, 0, a.amount);
        uint256 before = token.balanceOf(address(escrow));
        vm.prank(a.arbiter);
        try escrow.resolve(id, buyerAmount) {} catch {}
        paidOut[id] += before - token.balanceOf(address(escrow));
    }

    function refund(uint256 seed) external step {
        (uint256 id, bool ok) = _pick(seed);
        if (!ok) return;
        uint256 before = token.balanceOf(address(escrow));
        vm.prank(RELAYER);
        try escrow.refund(id) {} catch {}
        paidOut[id] += before - token.balanceOf(address(escrow));
    }

    function warp(uint256 secs) external step {
        time += bound(secs, 1, 3 days);
        vm.warp(time);
    }

    // ------------------------------------------------------------ helpers

    function _terms(uint256 s, uint256 a, uint256 amount, uint256 delivery, uint256 review)
        internal
        returns (Escrow.Terms memory)
    {
        return Escrow.Terms({
            seller: sellers[s % sellers.length],
            arbiter: arbiters[a % arbiters.length],
            amount: bound(amount, 1, 100_000_000),
            deliveryDeadline: uint64(time + bound(delivery, 1, 4 days)),
            reviewSeconds: uint64(bound(review, 1, 3 days)),
            termsHash: keccak256(abi.encode(amount)),
            salt: bytes32(++salt)
        });
    }

    function _pick(uint256 seed) internal view returns (uint256 id, bool ok) {
        uint256 n = escrow.agreementCount();
        if (n == 0) return (0, false);
        return (bound(seed, 1, n), true);
    }
}

/// Whatever the handler does: the escrow's token balance, `openBalance()` and the sum of the open agreements
/// are always equal; a settled agreement paid out exactly its amount once and an open one nothing; no token
/// is created or lost among the participants.
contract EscrowInvariantTest is InvariantBase, UsdcFixture {
    Escrow internal escrow;
    EscrowHandler internal handler;
    uint256 internal total;

    function setUp() public override {
        super.setUp();
        escrow = new Escrow(IERC20(address(token)));
        uint256[] memory keys = new uint256[](3);
        keys[0] = 0x1001;
        keys[1] = 0x1002;
        keys[2] = 0x1003;
        address[] memory sellers_ = new address[](3);
        sellers_[0] = address(0x5E1);
        sellers_[1] = address(0x5E2);
        sellers_[2] = address(0x5E3);
        address[] memory arbiters_ = new address[](2);
        arbiters_[0] = address(0xA41);
        arbiters_[1] = address(0xA42);
        handler = new EscrowHandler(token, escrow, keys, sellers_, arbiters_);
        vm.startPrank(admin);
        for (uint256 i = 0; i < keys.length; ++i) {
            token.mint(vm.addr(keys[i]), 2_000_000_000);
        }
        vm.stopPrank();
        total = _participantsTotal();

        bytes4[] memory selectors = new bytes4[](10);
        selectors[0] = EscrowHandler.create.selector;
        selectors[1] = EscrowHandler.createWithAuthorization.selector;
        selectors[2] = EscrowHandler.deliver.selector;
        selectors[3] = EscrowHandler.deliverBatch.selector;
        selectors[4] = EscrowHandler.release.selector;
        selectors[5] = EscrowHandler.claim.selector;
        selectors[6] = EscrowHandler.dispute.selector;
        selectors[7] = EscrowHandler.resolve.selector;
        selectors[8] = EscrowHandler.refund.selector;
        selectors[9] = EscrowHandler.warp.selector;
        targetContract(address(handler));
        targetSelector(address(handler), selectors);
    }

    function _participantsTotal() internal view returns (uint256 sum) {
        sum = token.balanceOf(address(escrow));
        for (uint256 i = 0; i < handler.buyerCount(); ++i) {
            sum += token.balanceOf(handler.buyers(i));
        }
        for (uint256 i = 0; i < handler.sellerCount(); ++i) {
            sum += token.balanceOf(handler.sellers(i));
        }
        for (uint256 i = 0; i < handler.arbiterCount(); ++i) {
            sum += token.balanceOf(handler.arbiters(i));
        }
    }

    function _isOpen(Escrow.State s) internal pure returns (bool) {
        return s == Escrow.State.Funded || s == Escrow.State.Delivered || s == Escrow.State.Disputed;
    }

    function invariant_balanceEqualsOpenAgreements() public view {
        uint256 sum;
        uint256 n = escrow.agreementCount();
        for (uint256 id = 1; id <= n; ++id) {
            Escrow.Agreement memory a = escrow.agreement(id);
            if (_isOpen(a.state)) sum += a.amount;
        }
        assertEq(token.balanceOf(address(escrow)), escrow.openBalance(), "balance == openBalance");
        assertEq(escrow.openBalance(), sum, "openBalance == sum of open agreements");
    }

    function invariant_settledPaidExactlyOnce() public view {
        uint256 n = escrow.agreementCount();
        for (uint256 id = 1; id <= n; ++id) {
            Escrow.Agreement memory a = escrow.agreement(id);
            assertEq(handler.paidOut(id), _isOpen(a.state) ? 0 : a.amount, "paid out once, in full, when settled");
        }
    }

    function invariant_tokensConserved() public view {
        assertEq(_participantsTotal(), total, "no token created or lost");
        assertEq(token.balanceOf(address(handler)), 0, "handler holds nothing");
    }
}
