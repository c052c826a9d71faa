// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {UsdcFixture} from "./UsdcFixture.sol";
import {USDC} from "../src/USDC.sol";
import {SmartWallet} from "../src/SmartWallet.sol";

/// Answers isValidSignature with whatever it is told to, to probe the EIP-1271 checks.
contract FixedAnswerSigner {
    bytes internal answer;

    constructor(bytes memory answer_) {
        answer = answer_;
    }

    fallback(bytes calldata) external returns (bytes memory) {
        return answer;
    }
}

/// EIP-3009: transferWithAuthorization and receiveWithAuthorization (both overloads each),
/// cancelAuthorization, authorizationState, EOA and EIP-1271 signers.
contract EIP3009Test is UsdcFixture {
    uint256 internal validBefore;

    function setUp() public override {
        super.setUp();
        validBefore = block.timestamp + 60;
    }

    // ------------------------------------------------------------ transferWithAuthorization (bytes signature)
    function testTransferWithAuthorizationBytes() public {
        bytes32 nonce = keccak256("n1");
        bytes memory sig = authorize(10_000, 0, validBefore, nonce);
        assertTrue(!token.authorizationState(buyer, nonce), "nonce unused");
        vm.expectEmit(true, true, false, true, address(token));
        emit AuthorizationUsed(buyer, nonce);
        vm.expectEmit(true, true, false, true, address(token));
        emit Transfer(buyer, seller, 10_000);
        vm.prank(relayer);
        token.transferWithAuthorization(buyer, seller, 10_000, 0, validBefore, nonce, sig);
        assertEq(token.balanceOf(seller), 10_000, "paid");
        assertEq(token.balanceOf(buyer), FUNDS - 10_000, "debited");
        assertEq(token.balanceOf(relayer), 0, "the relayer pays gas only");
        assertTrue(token.authorizationState(buyer, nonce), "nonce used");
        assertTrue(!token.authorizationState(seller, nonce), "nonces are per authorizer");
    }

    function testReplayRevertsBothOverloads() public {
        bytes32 nonce = keccak256("replay");
        bytes memory sig = authorize(10_000, 0, validBefore, nonce);
        token.transferWithAuthorization(buyer, seller, 10_000, 0, validBefore, nonce, sig);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.transferWithAuthorization(buyer, seller, 10_000, 0, validBefore, nonce, sig);
        (uint8 v, bytes32 r, bytes32 s) = split(sig);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.transferWithAuthorization(buyer, seller, 10_000, 0, validBefore, nonce, v, r, s);
        // a fresh signature on the same nonce is refused too
        bytes memory other = authorize(1, 0, validBefore + 1, nonce);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore + 1, nonce, other);
        assertEq(token.balanceOf(seller), 10_000, "paid once");
    }

    // ------------------------------------------------------------ transferWithAuthorization (v, r, s)
    function testTransferWithAuthorizationVrs() public {
        bytes32 nonce = keccak256("n2");
        (uint8 v, bytes32 r, bytes32 s) = split(authorize(5, 0, validBefore, nonce));
        vm.expectEmit(true, true, false, true, address(token));
        emit AuthorizationUsed(buyer, nonce);
        token.transferWithAuthorization(buyer, seller, 5, 0, validBefore, nonce, v, r, s);
        assertEq(token.balanceOf(seller), 5, "paid via v,r,s");
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.transferWithAuthorization(buyer, seller, 5, 0, validBefore, nonce, abi.encodePacked(r, s, v));
    }

    function testVrsOverloadReverts() public {
        bytes32 nonce = keccak256("n2r");
        (uint8 v, bytes32 r, bytes32 s) = split(authorize(5, 0, validBefore, nonce));
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(buyer, seller, 6, 0, validBefore, nonce, v, r, s);
        vm.expectRevert(bytes("ECRecover: invalid signature 'v' value"));
        token.transferWithAuthorization(buyer, seller, 5, 0, validBefore, nonce, 0, r, s);
        vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        token.transferWithAuthorization(buyer, seller, 5, 0, block.timestamp, nonce, v, r, s);
        vm.expectRevert(bytes("FiatTokenV2: authorization is not yet valid"));
        token.transferWithAuthorization(buyer, seller, 5, block.timestamp, validBefore, nonce, v, r, s);
        vm.prank(admin);
        token.blacklist(seller);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.transferWithAuthorization(buyer, seller, 5, 0, validBefore, nonce, v, r, s);
        vm.prank(admin);
        token.pause();
        vm.expectRevert(bytes("Pausable: paused"));
        token.transferWithAuthorization(buyer, seller, 5, 0, validBefore, nonce, v, r, s);
    }

    // ------------------------------------------------------------ validity window (strict on both ends)
    function testValidityWindowBoundaries() public {
        uint256 validAfter = START + 10;
        uint256 before_ = START + 20;
        bytes32 nonce = keccak256("window");
        bytes memory sig = authorize(1, validAfter, before_, nonce);

        vm.warp(validAfter - 1);
        vm.expectRevert(bytes("FiatTokenV2: authorization is not yet valid"));
        token.transferWithAuthorization(buyer, seller, 1, validAfter, before_, nonce, sig);
        vm.warp(validAfter); // now == validAfter is still too early
        vm.expectRevert(bytes("FiatTokenV2: authorization is not yet valid"));
        token.transferWithAuthorization(buyer, seller, 1, validAfter, before_, nonce, sig);
        vm.warp(before_); // now == validBefore is already too late
        vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        token.transferWithAuthorization(buyer, seller, 1, validAfter, before_, nonce, sig);
        vm.warp(before_ + 1000);
        vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        token.transferWithAuthorization(buyer, seller, 1, validAfter, before_, nonce, sig);

        vm.warp(validAfter + 1); // first valid second
        token.transferWithAuthorization(buyer, seller, 1, validAfter, before_, nonce, sig);
        bytes32 nonce2 = keccak256("window2");
        bytes memory sig2 = authorize(1, validAfter, before_, nonce2);
        vm.warp(before_ - 1); // last valid second
        token.transferWithAuthorization(buyer, seller, 1, validAfter, before_, nonce2, sig2);
        assertEq(token.balanceOf(seller), 2, "both ends of the window pay");
    }

    function testTimeChecksComeBeforeNonceAndSignature() public {
        bytes32 nonce = keccak256("order");
        bytes memory sig = authorize(1, 0, validBefore, nonce);
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, sig);
        vm.warp(validBefore);
        vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, hex"");
        vm.warp(START);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, hex"");
    }

    // ------------------------------------------------------------ signatures
    function testWrongSignerOrTermsRevert() public {
        bytes32 nonce = keccak256("n3");
        bytes memory good = authorize(1, 0, validBefore, nonce);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(buyer, seller, 2, 0, validBefore, nonce, good); // value
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(buyer, relayer, 1, 0, validBefore, nonce, good); // payee
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(buyer, seller, 1, 1, validBefore, nonce, good); // validAfter
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore + 1, nonce, good); // validBefore
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, keccak256("n4"), good); // nonce
        bytes32 typehash = token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH();
        bytes memory stranger =
            signed(STRANGER_KEY, authorizationDigest(typehash, buyer, seller, 1, 0, validBefore, nonce));
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, stranger);
        // a payer cannot move someone else's funds with their own signature
        vm.prank(admin);
        token.mint(vm.addr(STRANGER_KEY), 10);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(vm.addr(STRANGER_KEY), seller, 1, 0, validBefore, nonce, good);
        assertTrue(!token.authorizationState(buyer, nonce), "a refused authorization leaves the nonce unused");
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, good);
    }

    function testSignatureIsBoundToChainAndToken() public {
        bytes32 nonce = keccak256("domain");
        bytes memory sig = authorize(1, 0, validBefore, nonce);
        uint256 chain = block.chainid;
        vm.chainId(chain + 1);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, sig);
        vm.chainId(chain);
        USDC other = new USDC();
        other.initialize("USDC", "USDC", "USD", 6, admin, admin, admin, admin);
        vm.startPrank(admin);
        other.configureMinter(admin, 10);
        other.mint(buyer, 10);
        vm.stopPrank();
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        other.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, sig);
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, sig);
    }

    function testMalformedSignaturesRevertLikeECRecover() public {
        bytes32 nonce = keccak256("n5");
        vm.expectRevert(bytes("ECRecover: invalid signature length"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, hex"1234");
        bytes memory good = authorize(1, 0, validBefore, nonce);
        vm.expectRevert(bytes("ECRecover: invalid signature length"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, bytes.concat(good, hex"00"));
        vm.expectRevert(bytes("ECRecover: invalid signature 's' value"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, highS(good));
        bytes memory badV = authorize(1, 0, validBefore, nonce);
        badV[64] = bytes1(uint8(1));
        vm.expectRevert(bytes("ECRecover: invalid signature 'v' value"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, badV);
        // r = 0 makes ecrecover return the zero address
        bytes memory zero = abi.encodePacked(bytes32(0), bytes32(uint256(1)), uint8(27));
        vm.expectRevert(bytes("ECRecover: invalid signature"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, zero);
    }

    function testAmountBeyondBalanceReverts() public {
        bytes32 nonce = keccak256("n6");
        bytes memory sig = authorize(FUNDS + 1, 0, validBefore, nonce);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        token.transferWithAuthorization(buyer, seller, FUNDS + 1, 0, validBefore, nonce, sig);
        assertTrue(!token.authorizationState(buyer, nonce), "the failed transfer rolls the nonce back");
    }

    function testZeroValueAuthorizationUsesTheNonce() public {
        bytes32 nonce = keccak256("zero");
        token.transferWithAuthorization(buyer, seller, 0, 0, validBefore, nonce, authorize(0, 0, validBefore, nonce));
        assertTrue(token.authorizationState(buyer, nonce), "used");
    }

    // ------------------------------------------------------------ pause and blacklist
    function testPausedTokenRefusesAuthorizations() public {
        bytes32 nonce = keccak256("paused");
        bytes memory sig = authorize(1, 0, validBefore, nonce);
        bytes memory rsig = authorizeReceive(1, 0, validBefore, nonce);
        bytes memory csig = signed(BUYER_KEY, cancelDigest(buyer, nonce));
        vm.prank(admin);
        token.pause();
        vm.expectRevert(bytes("Pausable: paused"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, sig);
        vm.prank(seller);
        vm.expectRevert(bytes("Pausable: paused"));
        token.receiveWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, rsig);
        (uint8 v, bytes32 r, bytes32 s) = split(rsig);
        vm.prank(seller);
        vm.expectRevert(bytes("Pausable: paused"));
        token.receiveWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, v, r, s);
        vm.expectRevert(bytes("Pausable: paused"));
        token.cancelAuthorization(buyer, nonce, csig);
        (v, r, s) = split(csig);
        vm.expectRevert(bytes("Pausable: paused"));
        token.cancelAuthorization(buyer, nonce, v, r, s);
        vm.prank(admin);
        token.unpause();
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, sig);
    }

    function testBlacklistedPartiesRefused() public {
        bytes32 nonce = keccak256("blacklisted");
        bytes memory sig = authorize(1, 0, validBefore, nonce);
        bytes memory rsig = authorizeReceive(1, 0, validBefore, nonce);
        (uint8 v, bytes32 r, bytes32 s) = split(rsig);
        vm.prank(admin);
        token.blacklist(seller);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, sig);
        vm.prank(seller);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.receiveWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, rsig);
        vm.prank(seller);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.receiveWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, v, r, s);
        vm.startPrank(admin);
        token.unBlacklist(seller);
        token.blacklist(buyer);
        vm.stopPrank();
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, sig);
        vm.prank(seller);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.receiveWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, rsig);
        // a blacklisted relayer (msg.sender) is not checked by transferWithAuthorization, as in FiatToken
        vm.startPrank(admin);
        token.unBlacklist(buyer);
        token.blacklist(relayer);
        vm.stopPrank();
        vm.prank(relayer);
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, sig);
        assertEq(token.balanceOf(seller), 1, "paid once unblacklisted");
    }

    // ------------------------------------------------------------ receiveWithAuthorization
    function testReceiveWithAuthorizationBothOverloads() public {
        bytes32 nonce = keccak256("r1");
        bytes memory sig = authorizeReceive(7, 0, validBefore, nonce);
        vm.prank(relayer);
        vm.expectRevert(bytes("FiatTokenV2: caller must be the payee"));
        token.receiveWithAuthorization(buyer, seller, 7, 0, validBefore, nonce, sig);
        vm.expectEmit(true, true, false, true, address(token));
        emit AuthorizationUsed(buyer, nonce);
        vm.expectEmit(true, true, false, true, address(token));
        emit Transfer(buyer, seller, 7);
        vm.prank(seller);
        token.receiveWithAuthorization(buyer, seller, 7, 0, validBefore, nonce, sig);
        assertEq(token.balanceOf(seller), 7, "received");
        vm.prank(seller);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.receiveWithAuthorization(buyer, seller, 7, 0, validBefore, nonce, sig);

        bytes32 nonce2 = keccak256("r2");
        (uint8 v, bytes32 r, bytes32 s) = split(authorizeReceive(3, 0, validBefore, nonce2));
        vm.prank(buyer);
        vm.expectRevert(bytes("FiatTokenV2: caller must be the payee"));
        token.receiveWithAuthorization(buyer, seller, 3, 0, validBefore, nonce2, v, r, s);
        vm.prank(seller);
        token.receiveWithAuthorization(buyer, seller, 3, 0, validBefore, nonce2, v, r, s);
        assertEq(token.balanceOf(seller), 10, "received via v,r,s");
        vm.prank(seller);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.receiveWithAuthorization(buyer, seller, 3, 0, validBefore, nonce2, v, r, s);
    }

    function testReceiveAndTransferAuthorizationsAreNotInterchangeable() public {
        bytes32 nonce = keccak256("r3");
        bytes memory transferSig = authorize(1, 0, validBefore, nonce);
        vm.prank(seller);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.receiveWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, transferSig);
        bytes memory receiveSig = authorizeReceive(1, 0, validBefore, nonce);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, receiveSig);
        // they share the nonce space: a nonce used by one is used for the other
        vm.prank(seller);
        token.receiveWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, receiveSig);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, transferSig);
    }

    function testReceiveWithAuthorizationRevertPaths() public {
        bytes32 nonce = keccak256("r4");
        uint256 validAfter = START + 5;
        bytes memory sig = authorizeReceive(1, validAfter, validBefore, nonce);
        vm.startPrank(seller);
        vm.expectRevert(bytes("FiatTokenV2: authorization is not yet valid"));
        token.receiveWithAuthorization(buyer, seller, 1, validAfter, validBefore, nonce, sig);
        vm.warp(validBefore);
        vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        token.receiveWithAuthorization(buyer, seller, 1, validAfter, validBefore, nonce, sig);
        vm.warp(validAfter + 1);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.receiveWithAuthorization(buyer, seller, 2, validAfter, validBefore, nonce, sig);
        vm.expectRevert(bytes("ECRecover: invalid signature length"));
        token.receiveWithAuthorization(buyer, seller, 1, validAfter, validBefore, nonce, hex"00");
        token.receiveWithAuthorization(buyer, seller, 1, validAfter, validBefore, nonce, sig);
        vm.stopPrank();
    }

    // ------------------------------------------------------------ cancelAuthorization
    function testCancelAuthorizationBytes() public {
        bytes32 nonce = keccak256("c1");
        bytes32 hash = cancelDigest(buyer, nonce);
        bytes memory cancel = signed(BUYER_KEY, hash);
        bytes memory sig = authorize(1, 0, validBefore, nonce);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.cancelAuthorization(buyer, nonce, signed(STRANGER_KEY, hash));
        vm.expectEmit(true, true, false, true, address(token));
        emit AuthorizationCanceled(buyer, nonce);
        vm.prank(relayer); // anyone may submit the buyer's cancellation
        token.cancelAuthorization(buyer, nonce, cancel);
        assertTrue(token.authorizationState(buyer, nonce), "canceled");
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, sig);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.cancelAuthorization(buyer, nonce, cancel);
    }

    function testCancelAuthorizationVrs() public {
        bytes32 nonce = keccak256("c2");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(BUYER_KEY, cancelDigest(buyer, nonce));
        vm.expectRevert(bytes("ECRecover: invalid signature 'v' value"));
        token.cancelAuthorization(buyer, nonce, 29, r, s);
        vm.expectEmit(true, true, false, true, address(token));
        emit AuthorizationCanceled(buyer, nonce);
        token.cancelAuthorization(buyer, nonce, v, r, s);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.cancelAuthorization(buyer, nonce, v, r, s);
    }

    function testCannotCancelAUsedAuthorization() public {
        bytes32 nonce = keccak256("c3");
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, nonce, authorize(1, 0, validBefore, nonce));
        bytes memory cancel = signed(BUYER_KEY, cancelDigest(buyer, nonce));
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.cancelAuthorization(buyer, nonce, cancel);
    }

    function testCancelAuthorizationIsNotTimeBoundOrBlacklistChecked() public {
        bytes32 nonce = keccak256("c4");
        vm.prank(admin);
        token.blacklist(buyer);
        vm.warp(type(uint64).max);
        token.cancelAuthorization(buyer, nonce, signed(BUYER_KEY, cancelDigest(buyer, nonce)));
        assertTrue(token.authorizationState(buyer, nonce), "canceled");
    }

    // ------------------------------------------------------------ EIP-1271 contract signers
    function testContractWalletPaysWithEip1271() public {
        SmartWallet wallet = new SmartWallet(buyer);
        vm.prank(admin);
        token.mint(address(wallet), 100);
        bytes32 nonce = keccak256("w1");
        bytes32 hash = authorizationDigest(
            token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), address(wallet), seller, 40, 0, validBefore, nonce
        );
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(address(wallet), seller, 40, 0, validBefore, nonce, signed(STRANGER_KEY, hash));
        // the wallet judges the signature: a malformed one is the wallet's "no", not ECRecover's revert
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(address(wallet), seller, 40, 0, validBefore, nonce, hex"1234");
        vm.expectEmit(true, true, false, true, address(token));
        emit AuthorizationUsed(address(wallet), nonce);
        token.transferWithAuthorization(address(wallet), seller, 40, 0, validBefore, nonce, signed(BUYER_KEY, hash));
        assertEq(token.balanceOf(seller), 40, "contract wallet paid");
        assertEq(token.balanceOf(address(wallet)), 60, "wallet debited");
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.transferWithAuthorization(address(wallet), seller, 40, 0, validBefore, nonce, signed(BUYER_KEY, hash));
        // the owner's own EOA authorization does not move the wallet's funds, nor the other way round
        bytes32 nonce2 = keccak256("w2");
        bytes memory eoaSig = authorize(1, 0, validBefore, nonce2);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(address(wallet), seller, 1, 0, validBefore, nonce2, eoaSig);
    }

    function testContractWalletVrsReceiveAndCancel() public {
        SmartWallet wallet = new SmartWallet(buyer);
        vm.prank(admin);
        token.mint(address(wallet), 100);
        bytes32 nonce = keccak256("w3");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(
            BUYER_KEY,
            authorizationDigest(
                token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), address(wallet), seller, 10, 0, validBefore, nonce
            )
        );
        token.transferWithAuthorization(address(wallet), seller, 10, 0, validBefore, nonce, v, r, s);
        assertEq(token.balanceOf(seller), 10, "v,r,s overload packs and asks the wallet");

        bytes32 nonce2 = keccak256("w4");
        bytes memory rsig = signed(
            BUYER_KEY,
            authorizationDigest(
                token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), address(wallet), seller, 5, 0, validBefore, nonce2
            )
        );
        vm.prank(seller);
        token.receiveWithAuthorization(address(wallet), seller, 5, 0, validBefore, nonce2, rsig);
        assertEq(token.balanceOf(seller), 15, "wallet receive authorization");

        bytes32 nonce3 = keccak256("w5");
        bytes32 cancelHash = cancelDigest(address(wallet), nonce3);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.cancelAuthorization(address(wallet), nonce3, signed(STRANGER_KEY, cancelHash));
        vm.expectEmit(true, true, false, true, address(token));
        emit AuthorizationCanceled(address(wallet), nonce3);
        token.cancelAuthorization(address(wallet), nonce3, signed(BUYER_KEY, cancelHash));
        assertTrue(token.authorizationState(address(wallet), nonce3), "wallet canceled");
    }

    function testEip1271AnswerMustBeTheExactMagicWord() public {
        bytes32 nonce = keccak256("w6");
        address[4] memory signers = [
            address(new FixedAnswerSigner(abi.encode(bytes4(0xffffffff)))), // "no"
            address(new FixedAnswerSigner(hex"1626ba7e")), // magic, but shorter than a word
            address(new FixedAnswerSigner(abi.encode(bytes32(uint256(0x1626ba7e))))), // magic in the wrong place
            address(new USDC()) // a contract without isValidSignature (its call reverts)
        ];
        for (uint256 i = 0; i < signers.length; i++) {
            vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
            token.transferWithAuthorization(signers[i], seller, 0, 0, validBefore, nonce, hex"00");
        }
        address yes = address(new FixedAnswerSigner(abi.encode(bytes4(0x1626ba7e))));
        token.transferWithAuthorization(yes, seller, 0, 0, validBefore, nonce, hex"00");
        assertTrue(token.authorizationState(yes, nonce), "a contract saying the magic word authorises");
    }

    // ------------------------------------------------------------ x402 golden vector
    /// The x402 specification's example payment (Base Sepolia USDC) settles on this token installed at the same
    /// address and chain: the stand-in hashes exactly like FiatToken.
    function testX402SpecExampleSettles() public {
        address baseSepoliaUsdc = 0x036CbD53842c5426634e7929541eC2318f3dCF7e;
        address from = 0x857b06519E91e3A54538791bDbb0E22373e36b66;
        address to = 0x209693Bc6afc0C5328bA36FaF03C514EF312287C;
        bytes32 nonce = 0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480;
        bytes memory signature =
            hex"2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608a2ce6496642e377d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b571c";
        vm.etch(baseSepoliaUsdc, address(token).code);
        USDC usdc = USDC(baseSepoliaUsdc);
        usdc.initialize("USDC", "USDC", "USD", 6, admin, admin, admin, admin);
        vm.startPrank(admin);
        usdc.configureMinter(admin, 10_000);
        usdc.mint(from, 10_000);
        vm.stopPrank();
        vm.warp(1740672089 + 1);
        vm.chainId(8453); // Base mainnet: another domain, another signer
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        usdc.transferWithAuthorization(from, to, 10_000, 1740672089, 1740672154, nonce, signature);
        vm.chainId(84532);
        assertEq(usdc.DOMAIN_SEPARATOR(), 0x71f17a3b2ff373b803d70a5a07c046c1a2bc8e89c09ef722fcb047abe94c9818, "domain");
        usdc.transferWithAuthorization(from, to, 10_000, 1740672089, 1740672154, nonce, signature);
        assertEq(usdc.balanceOf(to), 10_000, "settled");
    }

    // ------------------------------------------------------------ gas
    /// Gas of a settlement through the `bytes` overload (what the facilitator sends). With `--isolate` (and in
    /// `--gas-report`) every call is its own transaction, so the numbers are whole-transaction gas (21k base and
    /// calldata included, storage cold): `forge test -vv --isolate --match-test testGas`. Without it, slots
    /// touched earlier in the test are warm and only execution gas is counted.
    function testGasTransferWithAuthorizationBytes() public {
        bytes32 nonce = keccak256("gas");
        bytes memory sig = authorize(10_000, 0, validBefore, nonce);
        vm.prank(relayer);
        token.transferWithAuthorization(buyer, seller, 10_000, 0, validBefore, nonce, sig);
        uint256 used = vm.lastCallGas().gasTotalUsed;
        emit log_named_uint("transferWithAuthorization(bytes) gas, payee had no balance", used);
        assertTrue(used < 100_000, "settlement gas regressed");

        bytes32 nonce2 = keccak256("gas2");
        bytes memory sig2 = authorize(10_000, 0, validBefore, nonce2);
        vm.prank(relayer);
        token.transferWithAuthorization(buyer, seller, 10_000, 0, validBefore, nonce2, sig2);
        emit log_named_uint(
            "transferWithAuthorization(bytes) gas, payee already held USDC", vm.lastCallGas().gasTotalUsed
        );
    }

    // ------------------------------------------------------------ fuzz
    function testFuzzAmounts(uint256 value, bytes32 nonce) public {
        value = bound(value, 0, FUNDS);
        token.transferWithAuthorization(
            buyer, seller, value, 0, validBefore, nonce, authorize(value, 0, validBefore, nonce)
        );
        assertEq(token.balanceOf(seller), value, "seller credited");
        assertEq(token.balanceOf(buyer), FUNDS - value, "buyer debited");
        assertEq(token.totalSupply(), FUNDS, "supply unchanged");
        assertTrue(token.authorizationState(buyer, nonce), "nonce used");
    }

    function testFuzzAmountsBeyondBalanceRevert(uint256 value) public {
        value = bound(value, FUNDS + 1, type(uint256).max);
        bytes memory sig = authorize(value, 0, validBefore, bytes32(value));
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        token.transferWithAuthorization(buyer, seller, value, 0, validBefore, bytes32(value), sig);
    }

    function testFuzzReceiveAmounts(uint256 value, bytes32 nonce) public {
        value = bound(value, 0, FUNDS);
        bytes memory sig = authorizeReceive(value, 0, validBefore, nonce);
        vm.prank(seller);
        token.receiveWithAuthorization(buyer, seller, value, 0, validBefore, nonce, sig);
        assertEq(token.balanceOf(seller), value, "received");
    }

    /// Anywhere in time: pays iff validAfter < now < validBefore.
    function testFuzzTimeWindow(uint256 validAfter, uint256 before_, uint256 timestamp) public {
        validAfter = bound(validAfter, 0, 4_000_000_000);
        before_ = bound(before_, 0, 4_000_000_000);
        timestamp = bound(timestamp, 1, 4_000_000_000);
        checkWindow(validAfter, before_, timestamp);
    }

    /// Around the edges: the window's ends within a few seconds of now, so the boundaries are hit often.
    function testFuzzTimeWindowBoundaries(int8 afterOffset, int8 beforeOffset) public {
        uint256 validAfter = uint256(int256(START) + int256(afterOffset % 4));
        uint256 before_ = uint256(int256(START) + int256(beforeOffset % 4));
        checkWindow(validAfter, before_, START);
    }

    function checkWindow(uint256 validAfter, uint256 before_, uint256 timestamp) internal {
        vm.warp(timestamp);
        bytes32 nonce = keccak256(abi.encode(validAfter, before_, timestamp));
        bytes memory sig = authorize(1, validAfter, before_, nonce);
        bool valid = timestamp > validAfter && timestamp < before_;
        if (timestamp <= validAfter) {
            vm.expectRevert(bytes("FiatTokenV2: authorization is not yet valid"));
        } else if (timestamp >= before_) {
            vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        }
        token.transferWithAuthorization(buyer, seller, 1, validAfter, before_, nonce, sig);
        assertEq(token.balanceOf(seller), valid ? 1 : 0, "paid exactly inside the window");
        assertTrue(token.authorizationState(buyer, nonce) == valid, "nonce used exactly when paid");
    }

    function testFuzzDistinctNoncesAllPayOnce(bytes32 a, bytes32 b) public {
        vm.assume(a != b);
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, a, authorize(1, 0, validBefore, a));
        token.transferWithAuthorization(buyer, seller, 2, 0, validBefore, b, authorize(2, 0, validBefore, b));
        bytes memory again = authorize(1, 0, validBefore, a);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.transferWithAuthorization(buyer, seller, 1, 0, validBefore, a, again);
        assertEq(token.balanceOf(seller), 3, "each nonce paid once");
    }
}
