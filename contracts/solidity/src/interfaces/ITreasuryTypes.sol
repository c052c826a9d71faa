// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// The spending policy a Treasury enforces on every payment and authorization.
/// - perTxLimit: the most one payment or authorization may move (≤ dailyLimit).
/// - dailyLimit: the most that may leave (payments executed + authorizations approved) in one UTC day.
/// - approvalThreshold: amounts below it execute at once; amounts at or above it need M owner approvals.
/// - proposalTtl: seconds a proposal stays executable after it is made (non-zero).
/// - allowListEnabled: when set, only allow-listed recipients may be paid.
struct Policy {
    uint256 perTxLimit;
    uint256 dailyLimit;
    uint256 approvalThreshold;
    uint64 proposalTtl;
    bool allowListEnabled;
}

/// What a proposal does when executed.
enum ProposalKind {
    Payment,
    TransferAuthorization,
    ReceiveAuthorization,
    Governance
}

/// Which EIP-3009 authorization the Treasury approves as an EIP-1271 signer.
enum AuthKind {
    Transfer,
    Receive
}

/// A proposal's state; Expired is derived (pending past expiresAt).
enum ProposalState {
    Pending,
    Executed,
    Cancelled,
    Expired
}

/// One proposal as the `proposal(id)` view returns it; `approvals` counts current owners only.
struct ProposalView {
    ProposalKind kind;
    address proposer;
    address to;
    uint256 amount;
    bytes32 memoHash;
    uint64 createdAt;
    uint64 expiresAt;
    ProposalState state;
    uint256 approvals;
    bool needsApproval;
    bytes32 digest;
    uint256 validAfter;
    uint256 validBefore;
    bytes32 nonce;
    bytes data;
}
