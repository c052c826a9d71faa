// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The EIP-3009 entry point an escrow pulls funds with
/// @notice FiatToken v2.2's `receiveWithAuthorization` (bytes-signature overload, which also accepts EIP-1271
/// signers). The token requires `msg.sender == to`, so only the payee named in the signature can submit it.
interface IERC3009Receive {
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
