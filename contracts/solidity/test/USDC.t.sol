// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Base} from "./Base.sol";
import {USDC} from "../src/USDC.sol";
import {SmartWallet} from "../src/SmartWallet.sol";

contract USDCTest is Base {
    USDC internal token;
    address internal admin = address(0xA11CE);
    uint256 internal constant BUYER_KEY = 0xB0B;
    address internal buyer;
    address internal seller = address(0x5E11E4);
    address internal relayer = address(0x4E1A7);

    event Transfer(address indexed from, address indexed to, uint256 value);
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

    function setUp() public {
        buyer = vm.addr(BUYER_KEY);
        token = new USDC();
        token.initialize("USDC", "USDC", "USD", 6, admin, admin, admin, admin);
        vm.prank(admin);
        token.configureMinter(admin, type(uint256).max);
        vm.prank(admin);
        token.mint(buyer, 1_000_000_000);
        vm.warp(1_800_000_000);
    }

    // ------------------------------------------------------------ helpers
    function digest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
    }

    function transferHash(bytes32 typehash, address from, address to, uint256 value, uint256 va, uint256 vb, bytes32 nonce)
        internal
        view
        returns (bytes32)
    {
        return digest(keccak256(abi.encode(typehash, from, to, value, va, vb, nonce)));
    }

    function signed(uint256 key, bytes32 hash) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, hash);
        return abi.encodePacked(r, s, v);
    }

    function authorize(uint256 value, uint256 va, uint256 vb, bytes32 nonce) internal view returns (bytes memory) {
        bytes32 typehash = token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH();
        return signed(BUYER_KEY, transferHash(typehash, buyer, seller, value, va, vb, nonce));
    }

    // ------------------------------------------------------------ initialisation and metadata
    function testMetadata() public view {
        assertTrue(keccak256(bytes(token.name())) == keccak256("USDC"), "name");
        assertTrue(keccak256(bytes(token.symbol())) == keccak256("USDC"), "symbol");
        assertTrue(keccak256(bytes(token.currency())) == keccak256("USD"), "currency");
        assertTrue(keccak256(bytes(token.version())) == keccak256("2"), "version");
        assertEq(token.decimals(), 6, "decimals");
        assertEq(token.owner(), admin, "owner");
        assertEq(token.masterMinter(), admin, "masterMinter");
        assertEq(token.pauser(), admin, "pauser");
        assertEq(token.blacklister(), admin, "blacklister");
        assertEq(token.totalSupply(), 1_000_000_000, "supply");
        assertEq(
            token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(),
            0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267,
            "typehash"
        );
    }

    function testInitializeOnlyOnceAndNoZeroRoles() public {
        vm.expectRevert(bytes("FiatToken: contract is already initialized"));
        token.initialize("USDC", "USDC", "USD", 6, admin, admin, admin, admin);
        USDC fresh = new USDC();
        vm.expectRevert(bytes("FiatToken: new masterMinter is the zero address"));
        fresh.initialize("USDC", "USDC", "USD", 6, address(0), admin, admin, admin);
        vm.expectRevert(bytes("FiatToken: new pauser is the zero address"));
        fresh.initialize("USDC", "USDC", "USD", 6, admin, address(0), admin, admin);
        vm.expectRevert(bytes("FiatToken: new blacklister is the zero address"));
        fresh.initialize("USDC", "USDC", "USD", 6, admin, admin, address(0), admin);
        vm.expectRevert(bytes("FiatToken: new owner is the zero address"));
        fresh.initialize("USDC", "USDC", "USD", 6, admin, admin, admin, address(0));
    }

    function testArcTestnetDomainSeparatorAtArcAddress() public {
        address arc = 0x3600000000000000000000000000000000000000;
        vm.etch(arc, address(token).code);
        vm.chainId(5042002);
        USDC(arc).initialize("USDC", "USDC", "USD", 6, admin, admin, admin, admin);
        assertEq(
            USDC(arc).DOMAIN_SEPARATOR(),
            0x361191522483d32a83e70ae7183b4b9629442c13a78bc9921d6f707911c8c6b0,
            "Arc testnet USDC domain separator"
        );
    }

    // ------------------------------------------------------------ ERC-20
    function testTransferApproveTransferFrom() public {
        vm.prank(buyer);
        token.transfer(seller, 100);
        assertEq(token.balanceOf(seller), 100, "transfer");
        vm.prank(buyer);
        token.approve(relayer, 50);
        assertEq(token.allowance(buyer, relayer), 50, "approve");
        vm.prank(relayer);
        token.transferFrom(buyer, seller, 30);
        assertEq(token.allowance(buyer, relayer), 20, "allowance spent");
        assertEq(token.balanceOf(seller), 130, "transferFrom");
        vm.prank(buyer);
        token.increaseAllowance(relayer, 5);
        vm.prank(buyer);
        token.decreaseAllowance(relayer, 10);
        assertEq(token.allowance(buyer, relayer), 15, "increase/decrease");
    }

    function testErc20Reverts() public {
        vm.prank(seller);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        token.transfer(buyer, 1);
        vm.prank(buyer);
        vm.expectRevert(bytes("ERC20: transfer to the zero address"));
        token.transfer(address(0), 1);
        vm.prank(relayer);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds allowance"));
        token.transferFrom(buyer, seller, 1);
        vm.prank(buyer);
        vm.expectRevert(bytes("ERC20: approve to the zero address"));
        token.approve(address(0), 1);
        vm.prank(buyer);
        vm.expectRevert(bytes("ERC20: decreased allowance below zero"));
        token.decreaseAllowance(relayer, 1);
    }

    // ------------------------------------------------------------ minting
    function testMintBurnAndMinterRoles() public {
        vm.prank(admin);
        token.configureMinter(relayer, 10);
        assertTrue(token.isMinter(relayer), "minter configured");
        vm.prank(relayer);
        token.mint(seller, 4);
        assertEq(token.minterAllowance(relayer), 6, "allowance decreases");
        vm.prank(relayer);
        vm.expectRevert(bytes("FiatToken: mint amount exceeds minterAllowance"));
        token.mint(seller, 7);
        vm.prank(relayer);
        vm.expectRevert(bytes("FiatToken: mint to the zero address"));
        token.mint(address(0), 1);
        vm.prank(relayer);
        vm.expectRevert(bytes("FiatToken: mint amount not greater than 0"));
        token.mint(seller, 0);
        vm.prank(admin);
        token.mint(admin, 10);
        vm.prank(admin);
        token.burn(4);
        assertEq(token.balanceOf(admin), 6, "burned");
        vm.prank(admin);
        vm.expectRevert(bytes("FiatToken: burn amount exceeds balance"));
        token.burn(7);
        vm.prank(admin);
        vm.expectRevert(bytes("FiatToken: burn amount not greater than 0"));
        token.burn(0);
        vm.prank(admin);
        token.removeMinter(relayer);
        assertTrue(!token.isMinter(relayer), "minter removed");
        vm.prank(relayer);
        vm.expectRevert(bytes("FiatToken: caller is not a minter"));
        token.mint(seller, 1);
        vm.prank(relayer);
        vm.expectRevert(bytes("FiatToken: caller is not the masterMinter"));
        token.configureMinter(relayer, 1);
        vm.prank(admin);
        vm.expectRevert(bytes("FiatToken: new masterMinter is the zero address"));
        token.updateMasterMinter(address(0));
        vm.prank(admin);
        token.updateMasterMinter(relayer);
        assertEq(token.masterMinter(), relayer, "masterMinter updated");
    }

    // ------------------------------------------------------------ pause, blacklist, ownership
    function testPauseBlocksMovement() public {
        vm.prank(relayer);
        vm.expectRevert(bytes("Pausable: caller is not the pauser"));
        token.pause();
        vm.prank(admin);
        token.pause();
        assertTrue(token.paused(), "paused");
        vm.prank(buyer);
        vm.expectRevert(bytes("Pausable: paused"));
        token.transfer(seller, 1);
        bytes memory sig = authorize(1, 0, block.timestamp + 60, bytes32(uint256(1)));
        vm.expectRevert(bytes("Pausable: paused"));
        token.transferWithAuthorization(buyer, seller, 1, 0, block.timestamp + 60, bytes32(uint256(1)), sig);
        vm.prank(admin);
        token.unpause();
        token.transferWithAuthorization(buyer, seller, 1, 0, block.timestamp + 60, bytes32(uint256(1)), sig);
        vm.prank(admin);
        vm.expectRevert(bytes("Pausable: new pauser is the zero address"));
        token.updatePauser(address(0));
        vm.prank(admin);
        token.updatePauser(relayer);
        assertEq(token.pauser(), relayer, "pauser updated");
    }

    function testBlacklistBlocksBothParties() public {
        vm.prank(relayer);
        vm.expectRevert(bytes("Blacklistable: caller is not the blacklister"));
        token.blacklist(buyer);
        vm.prank(admin);
        token.blacklist(seller);
        assertTrue(token.isBlacklisted(seller), "blacklisted");
        vm.prank(buyer);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.transfer(seller, 1);
        bytes memory sig = authorize(1, 0, block.timestamp + 60, bytes32(uint256(2)));
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.transferWithAuthorization(buyer, seller, 1, 0, block.timestamp + 60, bytes32(uint256(2)), sig);
        vm.prank(admin);
        token.unBlacklist(seller);
        vm.prank(admin);
        token.blacklist(buyer);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.transferWithAuthorization(buyer, seller, 1, 0, block.timestamp + 60, bytes32(uint256(2)), sig);
        vm.prank(admin);
        token.unBlacklist(buyer);
        token.transferWithAuthorization(buyer, seller, 1, 0, block.timestamp + 60, bytes32(uint256(2)), sig);
        vm.prank(admin);
        vm.expectRevert(bytes("Blacklistable: new blacklister is the zero address"));
        token.updateBlacklister(address(0));
        vm.prank(admin);
        token.updateBlacklister(relayer);
        assertEq(token.blacklister(), relayer, "blacklister updated");
    }

    function testOwnership() public {
        vm.prank(relayer);
        vm.expectRevert(bytes("Ownable: caller is not the owner"));
        token.transferOwnership(relayer);
        vm.prank(admin);
        vm.expectRevert(bytes("Ownable: new owner is the zero address"));
        token.transferOwnership(address(0));
        vm.prank(admin);
        token.transferOwnership(relayer);
        assertEq(token.owner(), relayer, "owner");
    }

    // ------------------------------------------------------------ EIP-3009
    function testTransferWithAuthorizationBytesAndReplay() public {
        bytes32 nonce = keccak256("n1");
        uint256 vb = block.timestamp + 60;
        bytes memory sig = authorize(10_000, 0, vb, nonce);
        vm.expectEmit(true, true, false, true);
        emit AuthorizationUsed(buyer, nonce);
        vm.prank(relayer);
        token.transferWithAuthorization(buyer, seller, 10_000, 0, vb, nonce, sig);
        assertEq(token.balanceOf(seller), 10_000, "paid");
        assertTrue(token.authorizationState(buyer, nonce), "nonce used");
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.transferWithAuthorization(buyer, seller, 10_000, 0, vb, nonce, sig);
    }

    function testTransferWithAuthorizationVrs() public {
        bytes32 nonce = keccak256("n2");
        uint256 vb = block.timestamp + 60;
        bytes32 typehash = token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH();
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(BUYER_KEY, transferHash(typehash, buyer, seller, 5, 0, vb, nonce));
        token.transferWithAuthorization(buyer, seller, 5, 0, vb, nonce, v, r, s);
        assertEq(token.balanceOf(seller), 5, "paid via v,r,s");
    }

    function testAuthorizationTimeWindowReverts() public {
        uint256 t = block.timestamp;
        bytes32 nonce = keccak256("n3");
        bytes memory early = authorize(1, t, t + 60, nonce);
        vm.expectRevert(bytes("FiatTokenV2: authorization is not yet valid"));
        token.transferWithAuthorization(buyer, seller, 1, t, t + 60, nonce, early);
        bytes memory late = authorize(1, 0, t, nonce);
        vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        token.transferWithAuthorization(buyer, seller, 1, 0, t, nonce, late);
    }

    function testAuthorizationWrongSignerOrTermsRevert() public {
        uint256 vb = block.timestamp + 60;
        bytes32 nonce = keccak256("n3");
        bytes memory good = authorize(1, 0, vb, nonce);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(buyer, seller, 2, 0, vb, nonce, good);
        bytes32 typehash = token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH();
        bytes memory other = signed(0xBAD, transferHash(typehash, buyer, seller, 1, 0, vb, nonce));
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(buyer, seller, 1, 0, vb, nonce, other);
        bytes memory tooMuch = signed(BUYER_KEY, transferHash(typehash, buyer, seller, 2_000_000_000, 0, vb, nonce));
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        token.transferWithAuthorization(buyer, seller, 2_000_000_000, 0, vb, nonce, tooMuch);
    }

    function testMalformedSignaturesRevertLikeECRecover() public {
        uint256 vb = block.timestamp + 60;
        bytes32 nonce = keccak256("n3");
        vm.expectRevert(bytes("ECRecover: invalid signature length"));
        token.transferWithAuthorization(buyer, seller, 1, 0, vb, nonce, hex"1234");
        bytes memory malleable = highS(authorize(1, 0, vb, nonce));
        vm.expectRevert(bytes("ECRecover: invalid signature 's' value"));
        token.transferWithAuthorization(buyer, seller, 1, 0, vb, nonce, malleable);
        bytes memory badV = authorize(1, 0, vb, nonce);
        badV[64] = bytes1(uint8(1));
        vm.expectRevert(bytes("ECRecover: invalid signature 'v' value"));
        token.transferWithAuthorization(buyer, seller, 1, 0, vb, nonce, badV);
    }

    /// The same signature with s' = n - s and v flipped: valid ECDSA, but malleable.
    function highS(bytes memory sig) internal pure returns (bytes memory out) {
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        bytes32 r;
        bytes32 s;
        assembly {
            r := mload(add(sig, 0x20))
            s := mload(add(sig, 0x40))
        }
        uint8 v = uint8(sig[64]) == 27 ? 28 : 27;
        out = abi.encodePacked(r, bytes32(n - uint256(s)), v);
    }

    function testReceiveWithAuthorization() public {
        bytes32 nonce = keccak256("n4");
        uint256 vb = block.timestamp + 60;
        bytes memory sig = signed(
            BUYER_KEY, transferHash(token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), buyer, seller, 7, 0, vb, nonce)
        );
        vm.prank(relayer);
        vm.expectRevert(bytes("FiatTokenV2: caller must be the payee"));
        token.receiveWithAuthorization(buyer, seller, 7, 0, vb, nonce, sig);
        vm.prank(seller);
        token.receiveWithAuthorization(buyer, seller, 7, 0, vb, nonce, sig);
        assertEq(token.balanceOf(seller), 7, "received");
        bytes32 nonce2 = keccak256("n5");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(
            BUYER_KEY, transferHash(token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), buyer, seller, 3, 0, vb, nonce2)
        );
        vm.prank(seller);
        token.receiveWithAuthorization(buyer, seller, 3, 0, vb, nonce2, v, r, s);
        assertEq(token.balanceOf(seller), 10, "received via v,r,s");
        // A transfer authorization cannot be used as a receive authorization (different typehash).
        bytes memory transferSig = authorize(1, 0, vb, keccak256("n6"));
        vm.prank(seller);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.receiveWithAuthorization(buyer, seller, 1, 0, vb, keccak256("n6"), transferSig);
    }

    function testCancelAuthorization() public {
        bytes32 nonce = keccak256("n7");
        bytes32 cancelHash = digest(keccak256(abi.encode(token.CANCEL_AUTHORIZATION_TYPEHASH(), buyer, nonce)));
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.cancelAuthorization(buyer, nonce, signed(0xBAD, cancelHash));
        vm.expectEmit(true, true, false, true);
        emit AuthorizationCanceled(buyer, nonce);
        token.cancelAuthorization(buyer, nonce, signed(BUYER_KEY, cancelHash));
        assertTrue(token.authorizationState(buyer, nonce), "canceled");
        bytes memory sig = authorize(1, 0, block.timestamp + 60, nonce);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.transferWithAuthorization(buyer, seller, 1, 0, block.timestamp + 60, nonce, sig);
        bytes32 nonce2 = keccak256("n8");
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(BUYER_KEY, digest(keccak256(abi.encode(token.CANCEL_AUTHORIZATION_TYPEHASH(), buyer, nonce2))));
        token.cancelAuthorization(buyer, nonce2, v, r, s);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        token.cancelAuthorization(buyer, nonce2, v, r, s);
    }

    function testContractWalletSignsWithEip1271() public {
        SmartWallet wallet = new SmartWallet(buyer);
        vm.prank(admin);
        token.mint(address(wallet), 100);
        bytes32 nonce = keccak256("w1");
        uint256 vb = block.timestamp + 60;
        bytes32 hash =
            transferHash(token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), address(wallet), seller, 40, 0, vb, nonce);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        token.transferWithAuthorization(address(wallet), seller, 40, 0, vb, nonce, signed(0xBAD, hash));
        token.transferWithAuthorization(address(wallet), seller, 40, 0, vb, nonce, signed(BUYER_KEY, hash));
        assertEq(token.balanceOf(seller), 40, "contract wallet paid");
        assertEq(token.balanceOf(address(wallet)), 60, "wallet debited");
    }

    // ------------------------------------------------------------ EIP-2612
    function testPermit() public {
        uint256 deadline = block.timestamp + 60;
        bytes32 hash = digest(keccak256(abi.encode(token.PERMIT_TYPEHASH(), buyer, relayer, 77, 0, deadline)));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(BUYER_KEY, hash);
        token.permit(buyer, relayer, 77, deadline, v, r, s);
        assertEq(token.allowance(buyer, relayer), 77, "permit approves");
        assertEq(token.nonces(buyer), 1, "nonce advances");
        vm.expectRevert(bytes("EIP2612: invalid signature"));
        token.permit(buyer, relayer, 77, deadline, v, r, s);
        bytes32 hash2 = digest(keccak256(abi.encode(token.PERMIT_TYPEHASH(), buyer, relayer, 5, 1, deadline)));
        token.permit(buyer, relayer, 5, deadline, signed(BUYER_KEY, hash2));
        assertEq(token.allowance(buyer, relayer), 5, "bytes permit");
        vm.expectRevert(bytes("FiatTokenV2: permit is expired"));
        token.permit(buyer, relayer, 5, block.timestamp - 1, signed(BUYER_KEY, hash2));
    }

    // ------------------------------------------------------------ fuzz
    function testFuzzAmounts(uint256 value, bytes32 nonce) public {
        value = bound(value, 1, 1_000_000_000);
        uint256 vb = block.timestamp + 60;
        token.transferWithAuthorization(buyer, seller, value, 0, vb, nonce, authorize(value, 0, vb, nonce));
        assertEq(token.balanceOf(seller), value, "seller credited");
        assertEq(token.balanceOf(buyer), 1_000_000_000 - value, "buyer debited");
        assertEq(token.totalSupply(), 1_000_000_000, "supply unchanged");
    }

    function testFuzzAmountsBeyondBalanceRevert(uint256 value) public {
        value = bound(value, 1_000_000_001, type(uint256).max);
        uint256 vb = block.timestamp + 60;
        bytes memory sig = authorize(value, 0, vb, bytes32(value));
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        token.transferWithAuthorization(buyer, seller, value, 0, vb, bytes32(value), sig);
    }

    function testFuzzTimeWindow(uint256 validAfter, uint256 validBefore, uint256 timestamp) public {
        validAfter = bound(validAfter, 0, 4_000_000_000);
        validBefore = bound(validBefore, 0, 4_000_000_000);
        timestamp = bound(timestamp, 1, 4_000_000_000);
        vm.warp(timestamp);
        bytes32 nonce = keccak256(abi.encode(validAfter, validBefore, timestamp));
        bytes memory sig = authorize(1, validAfter, validBefore, nonce);
        if (timestamp <= validAfter) {
            vm.expectRevert(bytes("FiatTokenV2: authorization is not yet valid"));
        } else if (timestamp >= validBefore) {
            vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        }
        token.transferWithAuthorization(buyer, seller, 1, validAfter, validBefore, nonce, sig);
        if (timestamp > validAfter && timestamp < validBefore) {
            assertEq(token.balanceOf(seller), 1, "paid inside the window");
        }
    }
}
