// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IReputationRegistry — the ERC-8004 "Trustless Agents" Reputation Registry surface
/// @notice Function signatures and events are the ones ERC-8004 declares; the errors are this implementation's.
interface IReputationRegistry {
    event NewFeedback(
        uint256 indexed agentId,
        address indexed clientAddress,
        uint64 feedbackIndex,
        int128 value,
        uint8 valueDecimals,
        string indexed indexedTag1,
        string tag1,
        string tag2,
        string endpoint,
        string feedbackURI,
        bytes32 feedbackHash
    );
    event FeedbackRevoked(uint256 indexed agentId, address indexed clientAddress, uint64 indexed feedbackIndex);
    event ResponseAppended(
        uint256 indexed agentId,
        address indexed clientAddress,
        uint64 feedbackIndex,
        address indexed responder,
        string responseURI,
        bytes32 responseHash
    );

    /// The identity registry address given to the constructor is zero.
    error ZeroIdentityRegistry();
    /// No agent has this id in the identity registry.
    error UnknownAgent(uint256 agentId);
    /// The caller owns the agent or may manage it: no feedback on oneself.
    error SelfFeedback(uint256 agentId, address caller);
    /// valueDecimals is above 18.
    error ValueDecimalsTooLarge(uint8 valueDecimals);
    /// The client gave no feedback with this index to this agent.
    error FeedbackNotFound(uint256 agentId, address clientAddress, uint64 feedbackIndex);
    /// The feedback is already revoked.
    error FeedbackAlreadyRevoked(uint256 agentId, address clientAddress, uint64 feedbackIndex);
    /// A response needs a responseURI.
    error EmptyResponseURI();
    /// getSummary needs a non-empty list of client addresses (the reader's anti-Sybil choice).
    error ClientsRequired();

    function getIdentityRegistry() external view returns (address identityRegistry);
    function giveFeedback(
        uint256 agentId,
        int128 value,
        uint8 valueDecimals,
        string memory tag1,
        string memory tag2,
        string memory endpoint,
        string memory feedbackURI,
        bytes32 feedbackHash
    ) external;
    function revokeFeedback(uint256 agentId, uint64 feedbackIndex) external;
    function appendResponse(
        uint256 agentId,
        address clientAddress,
        uint64 feedbackIndex,
        string calldata responseURI,
        bytes32 responseHash
    ) external;
    function getSummary(uint256 agentId, address[] calldata clientAddresses, string calldata tag1, string calldata tag2)
        external
        view
        returns (uint64 count, int128 summaryValue, uint8 summaryValueDecimals);
    function readFeedback(uint256 agentId, address clientAddress, uint64 feedbackIndex)
        external
        view
        returns (int128 value, uint8 valueDecimals, string memory tag1, string memory tag2, bool isRevoked);
    function readAllFeedback(
        uint256 agentId,
        address[] memory clientAddresses,
        string memory tag1,
        string memory tag2,
        bool includeRevoked
    )
        external
        view
        returns (
            address[] memory clients,
            uint64[] memory feedbackIndexes,
            int128[] memory values,
            uint8[] memory valueDecimals,
            string[] memory tag1s,
            string[] memory tag2s,
            bool[] memory revokedStatuses
        );
    function getResponseCount(uint256 agentId, address clientAddress, uint64 feedbackIndex, address[] calldata responders)
        external
        view
        returns (uint64 count);
    function getClients(uint256 agentId) external view returns (address[] memory);
    function getLastIndex(uint256 agentId, address clientAddress) external view returns (uint64);
}
