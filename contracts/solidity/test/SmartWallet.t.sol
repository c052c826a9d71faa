// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Base} from "./Base.sol";
import {SmartWallet} from "../src/SmartWallet.sol";

contract Echo {
    function echo(uint256 x) external payable returns (uint256) {
        return x;
    }

    function fail() external pure {
        revert("Echo: no");
    }
}

/// The minimal EIP-1271 wallet: raw-hash ECDSA of its owner, and owner-only execute.
contract SmartWalletTest is Base {
    uint256 internal constant OWNER_KEY = 0xA11CE;
    address internal owner;
    SmartWallet internal wallet;
    bytes32 internal constant HASH = keccak256("message");

    function setUp() public {
        owner = vm.addr(OWNER_KEY);
        wallet = new SmartWallet(owner);
    }

    function sig(uint256 key, bytes32 hash) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, hash);
        return abi.encodePacked(r, s, v);
    }

    function testOwner() public view {
        assertEq(wallet.owner(), owner, "owner");
    }

    function testIsValidSignature() public view {
        assertTrue(wallet.isValidSignature(HASH, sig(OWNER_KEY, HASH)) == bytes4(0x1626ba7e), "owner accepted");
        assertTrue(wallet.isValidSignature(HASH, sig(0xBAD, HASH)) == bytes4(0xffffffff), "stranger refused");
        assertTrue(
            wallet.isValidSignature(keccak256("other"), sig(OWNER_KEY, HASH)) == bytes4(0xffffffff), "other hash"
        );
        // the raw hash is signed: an eth_sign (prefixed) signature of the same hash is refused
        bytes32 prefixed = keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", HASH));
        assertTrue(wallet.isValidSignature(HASH, sig(OWNER_KEY, prefixed)) == bytes4(0xffffffff), "prefixed");
    }

    function testIsValidSignatureRefusesMalformed() public {
        bytes memory good = sig(OWNER_KEY, HASH);
        assertTrue(wallet.isValidSignature(HASH, hex"") == bytes4(0xffffffff), "empty");
        assertTrue(wallet.isValidSignature(HASH, bytes.concat(good, hex"00")) == bytes4(0xffffffff), "66 bytes");
        bytes memory badV = bytes.concat(good);
        badV[64] = bytes1(uint8(1));
        assertTrue(wallet.isValidSignature(HASH, badV) == bytes4(0xffffffff), "v not 27/28");
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        bytes32 r;
        bytes32 s;
        assembly {
            r := mload(add(good, 0x20))
            s := mload(add(good, 0x40))
        }
        uint8 flipped = uint8(good[64]) == 27 ? 28 : 27;
        bytes memory malleable = abi.encodePacked(r, bytes32(n - uint256(s)), flipped);
        assertTrue(wallet.isValidSignature(HASH, malleable) == bytes4(0xffffffff), "high s");
        bytes memory zero = abi.encodePacked(bytes32(0), bytes32(uint256(1)), uint8(27));
        assertTrue(wallet.isValidSignature(HASH, zero) == bytes4(0xffffffff), "unrecoverable");
        SmartWallet ownerless = new SmartWallet(address(0));
        assertTrue(ownerless.isValidSignature(HASH, zero) == bytes4(0xffffffff), "zero signer never matches");
    }

    function testExecute() public {
        Echo echo = new Echo();
        vm.deal(address(wallet), 1 ether);
        vm.prank(owner);
        bytes memory out = wallet.execute(address(echo), 0.5 ether, abi.encodeCall(Echo.echo, (42)));
        assertEq(abi.decode(out, (uint256)), 42, "returns the call's data");
        assertEq(address(echo).balance, 0.5 ether, "forwards value");
        vm.expectRevert(bytes("SmartWallet: caller is not the owner"));
        wallet.execute(address(echo), 0, abi.encodeCall(Echo.echo, (1)));
        vm.prank(owner);
        vm.expectRevert(bytes("SmartWallet: call failed"));
        wallet.execute(address(echo), 0, abi.encodeCall(Echo.fail, ()));
    }

    function testReceivesEther() public {
        (bool ok,) = address(wallet).call{value: 1 wei}("");
        assertTrue(ok, "accepts plain transfers");
        assertEq(address(wallet).balance, 1, "balance");
    }
}
