// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The parts of FiatToken v2.2's EIP-3009 surface the commerce contracts call
/// @notice The token's EIP-712 domain separator and authorization state (a Treasury computes and checks the
/// digests it approves), and `receiveWithAuthorization` (bytes-signature overload, which also accepts EIP-1271
/// signers) that an escrow pulls funds with; the token requires `msg.sender == to`, so only the payee named in
/// the signature can submit it.
interface IEip3009Token {
    function DOMAIN_SEPARATOR() external view returns (bytes32);
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external;
}
