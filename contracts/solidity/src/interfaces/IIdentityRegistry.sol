// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IIdentityRegistry — the ERC-8004 "Trustless Agents" Identity Registry surface
/// @notice Function signatures, the MetadataEntry struct and the events are the ones ERC-8004 declares; the errors
/// are this implementation's.
interface IIdentityRegistry {
    struct MetadataEntry {
        string metadataKey;
        bytes metadataValue;
    }

    event Registered(uint256 indexed agentId, string agentURI, address indexed owner);
    event URIUpdated(uint256 indexed agentId, string newURI, address indexed updatedBy);
    event MetadataSet(uint256 indexed agentId, string indexed indexedMetadataKey, string metadataKey, bytes metadataValue);

    /// The caller is neither the agent's owner nor an approved operator.
    error NotAgentOwnerOrOperator(uint256 agentId, address caller);
    /// "agentWallet" is set only through setAgentWallet (and by register itself).
    error ReservedMetadataKey(string metadataKey);
    /// Metadata keys must not be empty.
    error EmptyMetadataKey();
    /// The new agent wallet is the zero address (use unsetAgentWallet).
    error ZeroAgentWallet();
    /// The wallet proof's deadline has passed.
    error WalletProofExpired(uint256 deadline, uint256 nowTimestamp);
    /// The signature is not the new wallet's (ECDSA for an EOA, ERC-1271 for a contract).
    error InvalidWalletProof(address newWallet);

    function register() external returns (uint256 agentId);
    function register(string calldata agentURI) external returns (uint256 agentId);
    function register(string calldata agentURI, MetadataEntry[] calldata metadata) external returns (uint256 agentId);
    function setAgentURI(uint256 agentId, string calldata newURI) external;
    function getMetadata(uint256 agentId, string memory metadataKey) external view returns (bytes memory);
    function setMetadata(uint256 agentId, string memory metadataKey, bytes memory metadataValue) external;
    function setAgentWallet(uint256 agentId, address newWallet, uint256 deadline, bytes calldata signature) external;
    function getAgentWallet(uint256 agentId) external view returns (address);
    function unsetAgentWallet(uint256 agentId) external;
    /// True when `spender` is the owner of `agentId`, approved for it, or an operator of its owner; reverts for an
    /// agent that does not exist.
    function isAuthorizedOrOwner(address spender, uint256 agentId) external view returns (bool);
}
