// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {UsdcFixture} from "./UsdcFixture.sol";
import {SmartWallet} from "../src/SmartWallet.sol";

/// EIP-2612 permit, both the (v, r, s) and the v2.2 `bytes signature` overloads.
contract PermitTest is UsdcFixture {
    function testPermitVrs() public {
        uint256 deadline = block.timestamp + 60;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(BUYER_KEY, permitDigest(buyer, relayer, 77, 0, deadline));
        vm.expectEmit(true, true, false, true, address(token));
        emit Approval(buyer, relayer, 77);
        vm.prank(seller); // anyone may submit it
        token.permit(buyer, relayer, 77, deadline, v, r, s);
        assertEq(token.allowance(buyer, relayer), 77, "permit approves");
        assertEq(token.nonces(buyer), 1, "nonce advances");
        vm.expectRevert(bytes("EIP2612: invalid signature"));
        token.permit(buyer, relayer, 77, deadline, v, r, s); // replay: the nonce moved on
        vm.prank(relayer);
        token.transferFrom(buyer, seller, 77);
        assertEq(token.balanceOf(seller), 77, "spent the permit");
    }

    function testPermitBytes() public {
        uint256 deadline = block.timestamp + 60;
        bytes memory sig = signed(BUYER_KEY, permitDigest(buyer, relayer, 5, 0, deadline));
        vm.expectEmit(true, true, false, true, address(token));
        emit Approval(buyer, relayer, 5);
        token.permit(buyer, relayer, 5, deadline, sig);
        assertEq(token.allowance(buyer, relayer), 5, "bytes permit");
        assertEq(token.nonces(buyer), 1, "nonce advances");
        vm.expectRevert(bytes("EIP2612: invalid signature"));
        token.permit(buyer, relayer, 5, deadline, sig);
    }

    function testPermitDeadline() public {
        uint256 deadline = block.timestamp;
        bytes memory sig = signed(BUYER_KEY, permitDigest(buyer, relayer, 1, 0, deadline));
        vm.warp(deadline + 1);
        vm.expectRevert(bytes("FiatTokenV2: permit is expired"));
        token.permit(buyer, relayer, 1, deadline, sig);
        vm.warp(deadline); // deadline == now is still valid
        token.permit(buyer, relayer, 1, deadline, sig);
        // type(uint256).max never expires
        bytes memory forever = signed(BUYER_KEY, permitDigest(buyer, relayer, 2, 1, type(uint256).max));
        vm.warp(type(uint64).max);
        token.permit(buyer, relayer, 2, type(uint256).max, forever);
        assertEq(token.allowance(buyer, relayer), 2, "no-expiry permit");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(BUYER_KEY, permitDigest(buyer, relayer, 3, 2, START));
        vm.expectRevert(bytes("FiatTokenV2: permit is expired"));
        token.permit(buyer, relayer, 3, START, v, r, s);
    }

    function testPermitWrongSignerOrTerms() public {
        uint256 deadline = block.timestamp + 60;
        bytes32 hash = permitDigest(buyer, relayer, 9, 0, deadline);
        bytes memory good = signed(BUYER_KEY, hash);
        vm.expectRevert(bytes("EIP2612: invalid signature"));
        token.permit(buyer, relayer, 9, deadline, signed(STRANGER_KEY, hash));
        vm.expectRevert(bytes("EIP2612: invalid signature"));
        token.permit(buyer, relayer, 10, deadline, good);
        vm.expectRevert(bytes("EIP2612: invalid signature"));
        token.permit(buyer, seller, 9, deadline, good);
        vm.expectRevert(bytes("ECRecover: invalid signature length"));
        token.permit(buyer, relayer, 9, deadline, hex"00");
        vm.expectRevert(bytes("ECRecover: invalid signature 's' value"));
        token.permit(buyer, relayer, 9, deadline, highS(good));
        assertEq(token.nonces(buyer), 0, "refused permits do not consume the nonce");
        bytes memory toZero = signed(BUYER_KEY, permitDigest(buyer, address(0), 9, 0, deadline));
        vm.expectRevert(bytes("ERC20: approve to the zero address"));
        token.permit(buyer, address(0), 9, deadline, toZero);
        token.permit(buyer, relayer, 9, deadline, good);
    }

    function testPermitPausedAndBlacklisted() public {
        uint256 deadline = block.timestamp + 60;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(BUYER_KEY, permitDigest(buyer, relayer, 1, 0, deadline));
        bytes memory sig = abi.encodePacked(r, s, v);
        vm.prank(admin);
        token.pause();
        vm.expectRevert(bytes("Pausable: paused"));
        token.permit(buyer, relayer, 1, deadline, v, r, s);
        vm.expectRevert(bytes("Pausable: paused"));
        token.permit(buyer, relayer, 1, deadline, sig);
        vm.startPrank(admin);
        token.unpause();
        token.blacklist(buyer);
        token.blacklist(relayer);
        vm.stopPrank();
        // v2.2 checks permits for pause only; the blacklist bites when the allowance is spent
        token.permit(buyer, relayer, 1, deadline, sig);
        assertEq(token.allowance(buyer, relayer), 1, "permit by a blacklisted owner");
        vm.prank(relayer);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.transferFrom(buyer, seller, 1);
    }

    function testPermitByContractWallet() public {
        SmartWallet wallet = new SmartWallet(buyer);
        uint256 deadline = block.timestamp + 60;
        bytes32 hash = permitDigest(address(wallet), relayer, 50, 0, deadline);
        vm.expectRevert(bytes("EIP2612: invalid signature"));
        token.permit(address(wallet), relayer, 50, deadline, signed(STRANGER_KEY, hash));
        token.permit(address(wallet), relayer, 50, deadline, signed(BUYER_KEY, hash));
        assertEq(token.allowance(address(wallet), relayer), 50, "EIP-1271 permit");
        assertEq(token.nonces(address(wallet)), 1, "wallet nonce advances");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(BUYER_KEY, permitDigest(address(wallet), relayer, 60, 1, deadline));
        token.permit(address(wallet), relayer, 60, deadline, v, r, s);
        assertEq(token.allowance(address(wallet), relayer), 60, "EIP-1271 permit through v,r,s");
    }

    function testFuzzPermit(uint256 value, uint256 deadline) public {
        deadline = bound(deadline, block.timestamp, type(uint256).max);
        bytes memory sig = signed(BUYER_KEY, permitDigest(buyer, relayer, value, 0, deadline));
        token.permit(buyer, relayer, value, deadline, sig);
        assertEq(token.allowance(buyer, relayer), value, "allowance set to the permitted value");
        assertEq(token.nonces(buyer), 1, "nonce advances");
    }
}
