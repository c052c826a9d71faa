// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC721URIStorage} from "@openzeppelin/contracts/token/ERC721/extensions/ERC721URIStorage.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IIdentityRegistry} from "./interfaces/IIdentityRegistry.sol";

/// @title IdentityRegistry — ERC-8004 Identity Registry (devnet implementation)
/// @notice Every agent is an ERC-721 token ("AgentIdentity"/"AGENT"); its tokenURI is the agentURI, which resolves to
/// the agent's registration file. agentIds are assigned incrementally from 1. The owner, an address approved for
/// the token, or an operator of the owner manages the agent: its URI, its on-chain metadata and its agentWallet.
/// @dev Reserved key "agentWallet": where the agent is paid. register sets it to the registrant; only
/// setAgentWallet (with the new wallet's EIP-712 / ERC-1271 proof) changes it, unsetAgentWallet clears it, and a
/// transfer clears it. Its metadata value is the 20 address bytes (abi.encodePacked), empty when unset.
/// The proof is an EIP-712 signature by the new wallet, domain {name: "ERC8004IdentityRegistry", version: "1",
/// chainId, verifyingContract: this}, over
/// AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 nonce,uint256 deadline)
/// where owner is the agent's current owner and nonce is walletNonce(agentId), which moves on every change of the
/// wallet (set, unset, cleared by a transfer), so a proof works once and never after a transfer.
contract IdentityRegistry is ERC721URIStorage, EIP712, IIdentityRegistry {
    string public constant AGENT_WALLET_KEY = "agentWallet";
    bytes32 public constant AGENT_WALLET_TYPEHASH =
        keccak256("AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 nonce,uint256 deadline)");
    bytes32 private constant AGENT_WALLET_KEY_HASH = keccak256("agentWallet");

    uint256 private _lastId;
    mapping(uint256 => mapping(string => bytes)) private _metadata;
    mapping(uint256 => address) private _wallet;
    mapping(uint256 => uint256) private _walletNonce;

    constructor() ERC721("AgentIdentity", "AGENT") EIP712("ERC8004IdentityRegistry", "1") {}

    // ---------------------------------------------------------------- registration

    /// @notice Mint a new agent to the caller with no agentURI yet (set it later with setAgentURI).
    function register() external returns (uint256 agentId) {
        agentId = _register();
        emit Registered(agentId, "", msg.sender);
    }

    /// @notice Mint a new agent to the caller with its agentURI.
    function register(string calldata agentURI) external returns (uint256 agentId) {
        agentId = _register();
        _setTokenURI(agentId, agentURI);
        emit Registered(agentId, agentURI, msg.sender);
    }

    /// @notice Mint a new agent to the caller with its agentURI and extra metadata ("agentWallet" is refused).
    function register(string calldata agentURI, MetadataEntry[] calldata metadata) external returns (uint256 agentId) {
        agentId = _register();
        _setTokenURI(agentId, agentURI);
        uint256 n = metadata.length;
        for (uint256 i = 0; i < n; ++i) {
            _setMetadata(agentId, metadata[i].metadataKey, metadata[i].metadataValue);
        }
        emit Registered(agentId, agentURI, msg.sender);
    }

    // ---------------------------------------------------------------- management

    /// @notice Point the agent at a new registration file.
    function setAgentURI(uint256 agentId, string calldata newURI) external {
        _authorize(agentId);
        _setTokenURI(agentId, newURI);
        emit URIUpdated(agentId, newURI, msg.sender);
    }

    /// @notice Set an on-chain metadata entry (any key but "agentWallet").
    function setMetadata(uint256 agentId, string memory metadataKey, bytes memory metadataValue) external {
        _authorize(agentId);
        _setMetadata(agentId, metadataKey, metadataValue);
    }

    /// @notice Make `newWallet` the agent's payment wallet; `signature` is newWallet's proof (see the contract
    /// notes), valid until `deadline` (inclusive).
    function setAgentWallet(uint256 agentId, address newWallet, uint256 deadline, bytes calldata signature) external {
        address owner = _authorize(agentId);
        if (newWallet == address(0)) revert ZeroAgentWallet();
        if (block.timestamp > deadline) revert WalletProofExpired(deadline, block.timestamp);
        bytes32 digest = walletProofDigest(agentId, newWallet, owner, _walletNonce[agentId], deadline);
        if (!SignatureChecker.isValidSignatureNow(newWallet, digest, signature)) revert InvalidWalletProof(newWallet);
        _putWallet(agentId, newWallet);
    }

    /// @notice Clear the agent's payment wallet.
    function unsetAgentWallet(uint256 agentId) external {
        _authorize(agentId);
        _putWallet(agentId, address(0));
    }

    // ---------------------------------------------------------------- views

    /// @notice The metadata value under `metadataKey` (empty when unset or the agent does not exist).
    function getMetadata(uint256 agentId, string memory metadataKey) external view returns (bytes memory) {
        if (keccak256(bytes(metadataKey)) == AGENT_WALLET_KEY_HASH) {
            address wallet = _wallet[agentId];
            return wallet == address(0) ? bytes("") : abi.encodePacked(wallet);
        }
        return _metadata[agentId][metadataKey];
    }

    /// @notice The agent's payment wallet (zero when unset, after a transfer, or for an unknown agent).
    function getAgentWallet(uint256 agentId) external view returns (address) {
        return _wallet[agentId];
    }

    /// @notice The nonce the next wallet proof for this agent must carry.
    function walletNonce(uint256 agentId) external view returns (uint256) {
        return _walletNonce[agentId];
    }

    /// @notice The EIP-712 digest a new wallet signs to accept becoming the agent's wallet.
    function walletProofDigest(uint256 agentId, address newWallet, address owner, uint256 nonce, uint256 deadline)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(AGENT_WALLET_TYPEHASH, agentId, newWallet, owner, nonce, deadline)));
    }

    /// @notice True when `spender` owns the agent, is approved for it, or is an operator of its owner.
    function isAuthorizedOrOwner(address spender, uint256 agentId) external view returns (bool) {
        return _isAuthorized(_requireOwned(agentId), spender, agentId);
    }

    /// @notice How many agents were registered (agentIds run 1..totalAgents()).
    function totalAgents() external view returns (uint256) {
        return _lastId;
    }

    // ---------------------------------------------------------------- internals

    function _register() private returns (uint256 agentId) {
        agentId = ++_lastId;
        _mint(msg.sender, agentId);
        _putWallet(agentId, msg.sender);
    }

    /// The agent's owner, after checking the caller may manage the agent (reverts for an unknown agent).
    function _authorize(uint256 agentId) private view returns (address owner) {
        owner = _requireOwned(agentId);
        if (!_isAuthorized(owner, msg.sender, agentId)) revert NotAgentOwnerOrOperator(agentId, msg.sender);
    }

    function _setMetadata(uint256 agentId, string memory key, bytes memory value) private {
        if (bytes(key).length == 0) revert EmptyMetadataKey();
        if (keccak256(bytes(key)) == AGENT_WALLET_KEY_HASH) revert ReservedMetadataKey(key);
        _metadata[agentId][key] = value;
        emit MetadataSet(agentId, key, key, value);
    }

    function _putWallet(uint256 agentId, address wallet) private {
        _wallet[agentId] = wallet;
        _walletNonce[agentId] += 1;
        bytes memory value = wallet == address(0) ? bytes("") : abi.encodePacked(wallet);
        emit MetadataSet(agentId, AGENT_WALLET_KEY, AGENT_WALLET_KEY, value);
    }

    /// A transfer (not the mint) clears agentWallet; the new owner proves a wallet again.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address from) {
        from = super._update(to, tokenId, auth);
        if (from != address(0)) _putWallet(tokenId, address(0));
    }
}
