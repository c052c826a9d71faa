//! The contract surfaces the facilitator calls, declared inline so their names are stable: FiatToken v2.2's
//! EIP-3009 and compliance reads, EIP-1271 `isValidSignature`, and Multicall3 `aggregate3`.

// Generated contract methods mirror Solidity signatures, which take many arguments.
#![allow(clippy::too_many_arguments)]

alloy::sol! {
    #[sol(rpc)]
    #[derive(Debug)]
    interface IFiatToken {
        function name() external view returns (string);
        function version() external view returns (string);
        function balanceOf(address account) external view returns (uint256);
        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
        function isBlacklisted(address account) external view returns (bool);
        function paused() external view returns (bool);
        function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes signature) external;
        event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
        event Transfer(address indexed from, address indexed to, uint256 value);
        event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);
        event Blacklisted(address indexed _account);
        event UnBlacklisted(address indexed _account);
        event Pause();
        event Unpause();
    }

    #[sol(rpc)]
    interface IERC1271 {
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magicValue);
    }

    #[sol(rpc)]
    #[derive(Debug)]
    interface IMulticall3 {
        struct Call3 { address target; bool allowFailure; bytes callData; }
        struct Result { bool success; bytes returnData; }
        function aggregate3(Call3[] calldata calls) external payable returns (Result[] memory returnData);
    }
}

/// EIP-1271's "valid" answer.
pub const ERC1271_MAGIC: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];

/// `transferWithAuthorization(…, bytes signature)` calldata for an authorization: what a settlement sends
/// and what a verify simulates.
pub fn transfer_with_authorization_calldata(
    authorization: &protocol::ExactEvmAuthorization,
    signature: &alloy::primitives::Bytes,
) -> alloy::primitives::Bytes {
    use alloy::sol_types::SolCall;
    let a = authorization;
    IFiatToken::transferWithAuthorizationCall {
        from: a.from,
        to: a.to,
        value: a.value,
        validAfter: a.valid_after,
        validBefore: a.valid_before,
        nonce: a.nonce,
        signature: signature.clone(),
    }
    .abi_encode()
    .into()
}
