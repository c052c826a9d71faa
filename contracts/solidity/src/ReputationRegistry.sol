// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IIdentityRegistry} from "./interfaces/IIdentityRegistry.sol";
import {IReputationRegistry} from "./interfaces/IReputationRegistry.sol";

/// @title ReputationRegistry — ERC-8004 Reputation Registry (devnet implementation)
/// @notice Clients (anyone but the agent's owner and its approved operators) post signed fixed-point feedback
/// values about agents of one IdentityRegistry; a client revokes its own feedback; anyone appends responses.
/// Stored per (agent, client, 1-based feedbackIndex): value, valueDecimals, tag1, tag2, isRevoked; endpoint,
/// feedbackURI and feedbackHash are only emitted.
/// @dev x402 link: a paying client's `feedbackHash` is keccak256 of its off-chain feedback file (at `feedbackURI`),
/// whose `proofOfPayment {fromAddress, toAddress, chainId, txHash}` names the x402 settlement transaction — the
/// EIP-3009 transfer that paid the agent — so a reader can check the feedback came from a real, paid call.
contract ReputationRegistry is IReputationRegistry {
    struct Feedback {
        int128 value;
        uint8 valueDecimals;
        bool isRevoked;
        string tag1;
        string tag2;
    }

    /// The 18-decimal scale every value is brought to before averaging.
    uint8 public constant MAX_DECIMALS = 18;

    IIdentityRegistry private immutable _identity;

    mapping(uint256 => mapping(address => mapping(uint64 => Feedback))) private _feedback;
    mapping(uint256 => mapping(address => uint64)) private _lastIndex;
    mapping(uint256 => address[]) private _clients;
    mapping(uint256 => mapping(address => bool)) private _isClient;
    /// agent => client => index => responses appended, in all and per responder
    mapping(uint256 => mapping(address => mapping(uint64 => uint64))) private _responses;
    mapping(uint256 => mapping(address => mapping(uint64 => mapping(address => uint64)))) private _responsesBy;

    constructor(address identityRegistry) {
        if (identityRegistry == address(0)) revert ZeroIdentityRegistry();
        _identity = IIdentityRegistry(identityRegistry);
    }

    /// @notice The IdentityRegistry whose agents this registry rates.
    function getIdentityRegistry() external view returns (address identityRegistry) {
        return address(_identity);
    }

    // ---------------------------------------------------------------- writes

    /// @notice Post feedback about `agentId`: `value` with `valueDecimals` (0..18) decimals, e.g. 87/0 for a
    /// "starred" 87, 9977/2 for a 99.77 % "uptime"; the other fields are optional.
    /// @dev For x402 purchases, `feedbackHash` commits to the off-chain feedback file at `feedbackURI`, and that
    /// file's `proofOfPayment.txHash` is the settlement transaction of the payment the feedback is about.
    function giveFeedback(
        uint256 agentId,
        int128 value,
        uint8 valueDecimals,
        string memory tag1,
        string memory tag2,
        string memory endpoint,
        string memory feedbackURI,
        bytes32 feedbackHash
    ) external {
        try _identity.isAuthorizedOrOwner(msg.sender, agentId) returns (bool manages) {
            if (manages) revert SelfFeedback(agentId, msg.sender);
        } catch {
            revert UnknownAgent(agentId);
        }
        if (valueDecimals > MAX_DECIMALS) revert ValueDecimalsTooLarge(valueDecimals);
        uint64 index = ++_lastIndex[agentId][msg.sender];
        _feedback[agentId][msg.sender][index] = Feedback(value, valueDecimals, false, tag1, tag2);
        if (!_isClient[agentId][msg.sender]) {
            _isClient[agentId][msg.sender] = true;
            _clients[agentId].push(msg.sender);
        }
        emit NewFeedback(
            agentId, msg.sender, index, value, valueDecimals, tag1, tag1, tag2, endpoint, feedbackURI, feedbackHash
        );
    }

    /// @notice Revoke one of the caller's own feedbacks (it stays readable, flagged revoked).
    function revokeFeedback(uint256 agentId, uint64 feedbackIndex) external {
        Feedback storage f = _existing(agentId, msg.sender, feedbackIndex);
        if (f.isRevoked) revert FeedbackAlreadyRevoked(agentId, msg.sender, feedbackIndex);
        f.isRevoked = true;
        emit FeedbackRevoked(agentId, msg.sender, feedbackIndex);
    }

    /// @notice Attach a response to a feedback (anyone: the agent showing a refund, a spam tagger...).
    function appendResponse(
        uint256 agentId,
        address clientAddress,
        uint64 feedbackIndex,
        string calldata responseURI,
        bytes32 responseHash
    ) external {
        _existing(agentId, clientAddress, feedbackIndex);
        if (bytes(responseURI).length == 0) revert EmptyResponseURI();
        _responses[agentId][clientAddress][feedbackIndex] += 1;
        _responsesBy[agentId][clientAddress][feedbackIndex][msg.sender] += 1;
        emit ResponseAppended(agentId, clientAddress, feedbackIndex, msg.sender, responseURI, responseHash);
    }

    // ---------------------------------------------------------------- views

    /// @notice Count and mean of the unrevoked feedback the given clients gave `agentId`, filtered by tag1 / tag2
    /// when those are non-empty (exact match).
    /// @dev Averaging across decimals: every value is scaled to 18 decimals (value * 10^(18 - valueDecimals)), the
    /// scaled values are summed (int256, no overflow possible) and divided by the count, truncating toward zero.
    /// The mean is returned at the largest valueDecimals among the counted feedback (so no input loses precision),
    /// again truncated toward zero; only if that would not fit int128 are decimals dropped one at a time until it
    /// does. No feedback counted gives (0, 0, 0). A client listed twice is counted twice.
    function getSummary(uint256 agentId, address[] calldata clientAddresses, string calldata tag1, string calldata tag2)
        external
        view
        returns (uint64 count, int128 summaryValue, uint8 summaryValueDecimals)
    {
        if (clientAddresses.length == 0) revert ClientsRequired();
        Filter memory filter = _filter(tag1, tag2, false);
        Sum memory acc;
        for (uint256 c = 0; c < clientAddresses.length; ++c) {
            _accumulate(agentId, clientAddresses[c], filter, acc);
        }
        count = acc.count;
        int256 sum = acc.sum;
        uint8 decimals = acc.decimals;
        if (count == 0) return (0, 0, 0);
        int256 mean = sum / int256(uint256(count));
        int256 scaled = mean / int256(10 ** (MAX_DECIMALS - decimals));
        while (scaled > type(int128).max || scaled < type(int128).min) {
            decimals -= 1;
            scaled = mean / int256(10 ** (MAX_DECIMALS - decimals));
        }
        return (count, int128(scaled), decimals);
    }

    /// @notice One feedback as stored (reverts if it was never given).
    function readFeedback(uint256 agentId, address clientAddress, uint64 feedbackIndex)
        external
        view
        returns (int128 value, uint8 valueDecimals, string memory tag1, string memory tag2, bool isRevoked)
    {
        Feedback storage f = _existing(agentId, clientAddress, feedbackIndex);
        return (f.value, f.valueDecimals, f.tag1, f.tag2, f.isRevoked);
    }

    /// @notice Every feedback `agentId` received from `clientAddresses` (all its clients when empty), filtered by
    /// tag1 / tag2 when non-empty, revoked ones only with `includeRevoked`; client order, then index order.
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
        )
    {
        All memory all = _readAll(agentId, clientAddresses, tag1, tag2, includeRevoked);
        return (all.clients, all.feedbackIndexes, all.values, all.valueDecimals, all.tag1s, all.tag2s, all.revoked);
    }

    /// @notice How many responses were appended: to one feedback, or (clientAddress zero) across all clients,
    /// (feedbackIndex zero) across all of a client's feedback, counting only `responders` when non-empty.
    function getResponseCount(uint256 agentId, address clientAddress, uint64 feedbackIndex, address[] calldata responders)
        external
        view
        returns (uint64 count)
    {
        address[] memory clients = _clientsOr(agentId, clientAddress);
        for (uint256 c = 0; c < clients.length; ++c) {
            address client = clients[c];
            uint64 first = feedbackIndex == 0 ? 1 : feedbackIndex;
            uint64 last = feedbackIndex == 0 ? _lastIndex[agentId][client] : feedbackIndex;
            for (uint64 i = first; i <= last; ++i) {
                if (responders.length == 0) {
                    count += _responses[agentId][client][i];
                } else {
                    for (uint256 r = 0; r < responders.length; ++r) {
                        count += _responsesBy[agentId][client][i][responders[r]];
                    }
                }
            }
        }
    }

    /// @notice Every address that ever gave `agentId` feedback, in order of their first feedback.
    function getClients(uint256 agentId) external view returns (address[] memory) {
        return _clients[agentId];
    }

    /// @notice The index of the client's latest feedback to the agent (0 when none).
    function getLastIndex(uint256 agentId, address clientAddress) external view returns (uint64) {
        return _lastIndex[agentId][clientAddress];
    }

    // ---------------------------------------------------------------- internals

    struct Filter {
        bytes32 tag1Hash;
        bytes32 tag2Hash;
        bool byTag1;
        bool byTag2;
        bool includeRevoked;
    }

    struct Sum {
        uint64 count;
        int256 sum;
        uint8 decimals;
    }

    struct All {
        address[] clients;
        uint64[] feedbackIndexes;
        int128[] values;
        uint8[] valueDecimals;
        string[] tag1s;
        string[] tag2s;
        bool[] revoked;
    }

    function _existing(uint256 agentId, address client, uint64 index) private view returns (Feedback storage) {
        if (index == 0 || index > _lastIndex[agentId][client]) revert FeedbackNotFound(agentId, client, index);
        return _feedback[agentId][client][index];
    }

    function _clientsOr(uint256 agentId, address client) private view returns (address[] memory clients) {
        if (client != address(0)) {
            clients = new address[](1);
            clients[0] = client;
        } else {
            clients = _clients[agentId];
        }
    }

    function _filter(string memory tag1, string memory tag2, bool includeRevoked)
        private
        pure
        returns (Filter memory)
    {
        return Filter(
            keccak256(bytes(tag1)), keccak256(bytes(tag2)), bytes(tag1).length != 0, bytes(tag2).length != 0, includeRevoked
        );
    }

    function _matches(Feedback storage f, Filter memory filter) private view returns (bool) {
        if (f.isRevoked && !filter.includeRevoked) return false;
        if (filter.byTag1 && keccak256(bytes(f.tag1)) != filter.tag1Hash) return false;
        if (filter.byTag2 && keccak256(bytes(f.tag2)) != filter.tag2Hash) return false;
        return true;
    }

    /// Add one client's matching feedback to the running count, 18-decimal sum and largest decimals.
    function _accumulate(uint256 agentId, address client, Filter memory filter, Sum memory acc) private view {
        uint64 last = _lastIndex[agentId][client];
        for (uint64 i = 1; i <= last; ++i) {
            Feedback storage f = _feedback[agentId][client][i];
            if (!_matches(f, filter)) continue;
            acc.count += 1;
            acc.sum += int256(f.value) * int256(10 ** (MAX_DECIMALS - f.valueDecimals));
            if (f.valueDecimals > acc.decimals) acc.decimals = f.valueDecimals;
        }
    }

    function _readAll(
        uint256 agentId,
        address[] memory clientAddresses,
        string memory tag1,
        string memory tag2,
        bool includeRevoked
    ) private view returns (All memory all) {
        address[] memory clients = clientAddresses.length == 0 ? _clients[agentId] : clientAddresses;
        Filter memory filter = _filter(tag1, tag2, includeRevoked);
        uint256 n;
        for (uint256 pass = 0; pass < 2; ++pass) {
            if (pass == 1) all = _allocate(n);
            n = 0;
            for (uint256 c = 0; c < clients.length; ++c) {
                uint64 last = _lastIndex[agentId][clients[c]];
                for (uint64 i = 1; i <= last; ++i) {
                    Feedback storage f = _feedback[agentId][clients[c]][i];
                    if (!_matches(f, filter)) continue;
                    if (pass == 1) {
                        all.clients[n] = clients[c];
                        all.feedbackIndexes[n] = i;
                        all.values[n] = f.value;
                        all.valueDecimals[n] = f.valueDecimals;
                        all.tag1s[n] = f.tag1;
                        all.tag2s[n] = f.tag2;
                        all.revoked[n] = f.isRevoked;
                    }
                    n += 1;
                }
            }
        }
    }

    function _allocate(uint256 n) private pure returns (All memory all) {
        all.clients = new address[](n);
        all.feedbackIndexes = new uint64[](n);
        all.values = new int128[](n);
        all.valueDecimals = new uint8[](n);
        all.tag1s = new string[](n);
        all.tag2s = new string[](n);
        all.revoked = new bool[](n);
    }
}
