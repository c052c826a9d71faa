// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Base} from "./Base.sol";
import {USDC} from "../src/USDC.sol";

/// A USDC initialised as the devnet does it (one admin holding every role), a funded buyer with a known key,
/// and the EIP-712 helpers the tests sign with.
abstract contract UsdcFixture is Base {
    USDC internal token;
    /// owner, masterMinter, pauser and blacklister, and a minter with an unlimited allowance
    address internal admin = address(0xA11CE);
    uint256 internal constant BUYER_KEY = 0xB0B;
    uint256 internal constant STRANGER_KEY = 0xBAD;
    address internal buyer;
    address internal seller = address(0x5E11E4);
    address internal relayer = address(0x4E1A7);
    uint256 internal constant FUNDS = 1_000_000_000; // 1000 USDC
    uint256 internal constant START = 1_800_000_000;

    // USDC's events, to expect them.
    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event Mint(address indexed minter, address indexed to, uint256 amount);
    event Burn(address indexed burner, uint256 amount);
    event MinterConfigured(address indexed minter, uint256 minterAllowedAmount);
    event MinterRemoved(address indexed oldMinter);
    event MasterMinterChanged(address indexed newMasterMinter);
    event Blacklisted(address indexed _account);
    event UnBlacklisted(address indexed _account);
    event BlacklisterChanged(address indexed newBlacklister);
    event Pause();
    event Unpause();
    event PauserChanged(address indexed newAddress);
    event OwnershipTransferred(address previousOwner, address newOwner);
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

    function setUp() public virtual {
        buyer = vm.addr(BUYER_KEY);
        token = new USDC();
        token.initialize("USDC", "USDC", "USD", 6, admin, admin, admin, admin);
        vm.startPrank(admin);
        token.configureMinter(admin, type(uint256).max);
        token.mint(buyer, FUNDS);
        vm.stopPrank();
        vm.warp(START);
    }

    // ------------------------------------------------------------ EIP-712
    function digest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
    }

    function authorizationDigest(
        bytes32 typehash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal view returns (bytes32) {
        return digest(keccak256(abi.encode(typehash, from, to, value, validAfter, validBefore, nonce)));
    }

    function cancelDigest(address authorizer, bytes32 nonce) internal view returns (bytes32) {
        return digest(keccak256(abi.encode(token.CANCEL_AUTHORIZATION_TYPEHASH(), authorizer, nonce)));
    }

    function permitDigest(address tokenOwner, address spender, uint256 value, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        return digest(keccak256(abi.encode(token.PERMIT_TYPEHASH(), tokenOwner, spender, value, nonce, deadline)));
    }

    /// r || s || v, as x402 payloads and FiatToken's `bytes` overloads carry it.
    function signed(uint256 key, bytes32 hash) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, hash);
        return abi.encodePacked(r, s, v);
    }

    /// The buyer's TransferWithAuthorization to the seller.
    function authorize(uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce)
        internal
        view
        returns (bytes memory)
    {
        bytes32 typehash = token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH();
        return signed(BUYER_KEY, authorizationDigest(typehash, buyer, seller, value, validAfter, validBefore, nonce));
    }

    /// The buyer's ReceiveWithAuthorization to the seller.
    function authorizeReceive(uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce)
        internal
        view
        returns (bytes memory)
    {
        bytes32 typehash = token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH();
        return signed(BUYER_KEY, authorizationDigest(typehash, buyer, seller, value, validAfter, validBefore, nonce));
    }

    function split(bytes memory sig) internal pure returns (uint8 v, bytes32 r, bytes32 s) {
        assembly {
            r := mload(add(sig, 0x20))
            s := mload(add(sig, 0x40))
            v := byte(0, mload(add(sig, 0x60)))
        }
    }

    /// The same signature with s' = n - s and v flipped: valid ECDSA, but malleable, so FiatToken refuses it.
    function highS(bytes memory sig) internal pure returns (bytes memory) {
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        (uint8 v, bytes32 r, bytes32 s) = split(sig);
        return abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }
}
