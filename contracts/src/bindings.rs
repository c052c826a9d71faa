//! Contract bindings. `USDC`, `Multicall3` and `SmartWallet` come from the committed artifacts (with
//! `deploy()` and their runtime code); `IEip3009` declares just the FiatToken functions a payment touches, so
//! the names stay stable whatever the overload order of the full ABI.

// Generated contract methods mirror Solidity signatures, which take many arguments.
#![allow(clippy::too_many_arguments)]

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    USDC,
    "artifacts/USDC.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    Multicall3,
    "artifacts/Multicall3.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    SmartWallet,
    "artifacts/SmartWallet.json"
);

alloy::sol! {
    /// The EIP-3009 surface of FiatToken v2.2 that settlement uses.
    #[sol(rpc)]
    #[derive(Debug)]
    interface IEip3009 {
        function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes signature) external;
        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
        function balanceOf(address account) external view returns (uint256);
        event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    }
}

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    Escrow,
    "artifacts/Escrow.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    Subscription,
    "artifacts/Subscription.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    Marketplace,
    "artifacts/Marketplace.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    IdentityRegistry,
    "artifacts/IdentityRegistry.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    ReputationRegistry,
    "artifacts/ReputationRegistry.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    Treasury,
    "artifacts/Treasury.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    TreasuryFactory,
    "artifacts/TreasuryFactory.json"
);
