// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";
import {IEip3009Token} from "./interfaces/IEip3009Token.sol";
import {
    Policy,
    ProposalKind,
    AuthKind,
    ProposalState,
    ProposalView
} from "./interfaces/ITreasuryTypes.sol";

/// An M-of-N USDC treasury with an on-chain spending policy, cloned by TreasuryFactory (EIP-1167).
///
/// Spenders propose payments; below the policy's approval threshold they execute at once, at or above it they
/// need M approvals from current owners. Every payment counts against a per-transaction and a UTC-day limit
/// when the money leaves, and both limits and the optional recipient allow-list are checked at proposal and
/// again at execution. The Treasury can also pay through x402 itself: a spender proposes an EIP-3009
/// authorization, the contract computes its digest, and once approved `isValidSignature` (EIP-1271) accepts
/// that digest until its validBefore, so USDC's `transferWithAuthorization` moves the Treasury's funds.
/// Owners, threshold, spenders, policy and allow-list change only through governance proposals that M owners
/// approve (the setters are callable only by the Treasury itself).
contract Treasury is Initializable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes4 internal constant ERC1271_MAGIC = 0x1626ba7e;
    bytes4 internal constant ERC1271_INVALID = 0xffffffff;
    /// FiatToken v2's EIP-3009 typehashes.
    bytes32 internal constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    struct Proposal {
        ProposalKind kind;
        ProposalState state; // Pending, Executed or Cancelled (Expired is derived)
        bool needsApproval;
        uint64 createdAt;
        uint64 expiresAt;
        address proposer;
        address to;
        uint256 amount;
        bytes32 memoHash;
        bytes32 digest;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
        bytes data;
    }

    IERC20 private _token;
    address[] private _owners;
    mapping(address => bool) private _isOwner;
    /// Bumped each time an address becomes an owner, so approvals from an earlier membership never count again.
    mapping(address => uint256) private _ownerGeneration;
    uint256 private _threshold;
    mapping(address => bool) private _isSpender;
    mapping(address => bool) private _recipientAllowed;
    Policy private _policy;
    /// UTC day (timestamp / 1 days) => amount that left (payments executed + authorizations approved).
    mapping(uint256 => uint256) private _spentOn;
    Proposal[] private _proposals;
    /// proposal id => owner => the owner's generation when approving (0 = not approved)
    mapping(uint256 => mapping(address => uint256)) private _approvedIn;
    /// approved EIP-3009 digest => its validBefore (0 = not approved)
    mapping(bytes32 => uint256) private _approvedDigest;

    // ------------------------------------------------------------------ events
    event PaymentProposed(
        uint256 indexed id, address indexed proposer, address indexed to, uint256 amount, bytes32 memoHash
    );
    event AuthorizationProposed(
        uint256 indexed id, address indexed proposer, address indexed to, uint256 amount, bytes32 digest
    );
    event GovernanceProposed(uint256 indexed id, address indexed proposer, bytes data);
    event Approved(uint256 indexed id, address indexed owner);
    event ApprovalRevoked(uint256 indexed id, address indexed owner);
    event PaymentExecuted(
        uint256 indexed id, address indexed executor, address indexed to, uint256 amount, bytes32 memoHash
    );
    event AuthorizationApproved(
        uint256 indexed id,
        bytes32 indexed digest,
        address indexed to,
        uint256 amount,
        uint256 validBefore,
        bytes32 nonce
    );
    event GovernanceExecuted(uint256 indexed id, address indexed executor, bytes data);
    event Cancelled(uint256 indexed id, address indexed by);
    event OwnerAdded(address indexed owner);
    event OwnerRemoved(address indexed owner);
    event ThresholdChanged(uint256 oldThreshold, uint256 newThreshold);
    event SpenderSet(address indexed spender, bool allowed);
    event PolicyChanged(Policy policy);
    event RecipientAllowed(address indexed recipient, bool allowed);

    // ------------------------------------------------------------------ errors
    error InvalidToken();
    error InvalidOwner(address owner);
    error DuplicateOwner(address owner);
    error OwnerNotFound(address owner);
    error ThresholdZero();
    error ThresholdAboveOwners(uint256 threshold, uint256 owners);
    error RemovalBreaksThreshold(uint256 ownersLeft, uint256 threshold);
    error InvalidSpender();
    error InvalidRecipient();
    error PerTxAboveDaily(uint256 perTxLimit, uint256 dailyLimit);
    error ProposalTtlZero();
    error CallerNotOwner(address caller);
    error CallerNotSpender(address caller);
    error CallerNotTreasury(address caller);
    error CallerCannotCancel(address caller);
    error ZeroAmount();
    error ExceedsPerTxLimit(uint256 amount, uint256 perTxLimit);
    error ExceedsDailyLimit(uint256 amount, uint256 remaining);
    error RecipientNotAllowed(address to);
    error ValidityWindowEmpty(uint256 validAfter, uint256 validBefore);
    error ValidBeforePassed(uint256 validBefore);
    error ValidityTooLong(uint256 validBefore, uint256 latest);
    error AuthorizationNonceUsed(bytes32 nonce);
    error DigestAlreadyApproved(bytes32 digest);
    error GovernanceCallTooShort();
    error UnknownProposal(uint256 id);
    error ProposalAlreadyExecuted(uint256 id);
    error ProposalAlreadyCancelled(uint256 id);
    error ProposalExpired(uint256 id);
    error AlreadyApproved(uint256 id, address owner);
    error NotApproved(uint256 id, address owner);
    error NotEnoughApprovals(uint256 id, uint256 approvals, uint256 threshold);
    error GovernanceCallFailed(bytes reason);

    // ------------------------------------------------------------------ modifiers
    modifier onlySelf() {
        if (msg.sender != address(this)) revert CallerNotTreasury(msg.sender);
        _;
    }

    modifier onlyOwner() {
        if (!_isOwner[msg.sender]) revert CallerNotOwner(msg.sender);
        _;
    }

    modifier onlySpender() {
        if (!_isSpender[msg.sender]) revert CallerNotSpender(msg.sender);
        _;
    }

    /// The implementation itself is never initialised; only its clones are.
    constructor() {
        _disableInitializers();
    }

    /// Sets up a clone: owners unique and non-zero, 1 ≤ threshold ≤ owners, a valid policy.
    function initialize(
        IERC20 token_,
        address[] calldata owners_,
        uint256 threshold_,
        address[] calldata spenders_,
        Policy calldata policy_
    ) external initializer {
        if (address(token_) == address(0)) revert InvalidToken();
        _token = token_;
        for (uint256 i = 0; i < owners_.length; i++) {
            _addOwner(owners_[i]);
        }
        _setThreshold(threshold_);
        for (uint256 i = 0; i < spenders_.length; i++) {
            _setSpender(spenders_[i], true);
        }
        _setPolicy(policy_);
    }

    // ------------------------------------------------------------------ proposals
    /// A spender's payment. Below the approval threshold it executes at once (the id is returned either way).
    function proposePayment(address to, uint256 amount, bytes32 memoHash)
        external
        nonReentrant
        onlySpender
        returns (uint256 id)
    {
        _checkSpend(to, amount);
        bool needsApproval = amount >= _policy.approvalThreshold;
        id = _store(ProposalKind.Payment, to, amount, memoHash, needsApproval, bytes32(0), 0, 0, bytes32(0), "");
        emit PaymentProposed(id, msg.sender, to, amount, memoHash);
        if (!needsApproval) _executePayment(id, _proposals[id]);
    }

    /// A spender's EIP-3009 authorization paid by the Treasury itself; returns the digest the Treasury will
    /// accept as an EIP-1271 signature once approved (at once below the approval threshold).
    function proposeAuthorization(
        AuthKind kind,
        address to,
        uint256 amount,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes32 memoHash
    ) external onlySpender returns (uint256 id, bytes32 digest) {
        _checkSpend(to, amount);
        if (validAfter >= validBefore) revert ValidityWindowEmpty(validAfter, validBefore);
        if (validBefore <= block.timestamp) revert ValidBeforePassed(validBefore);
        uint256 latest = block.timestamp + _policy.proposalTtl;
        if (validBefore > latest) revert ValidityTooLong(validBefore, latest);
        if (IEip3009Token(address(_token)).authorizationState(address(this), nonce)) {
            revert AuthorizationNonceUsed(nonce);
        }
        digest = _authorizationDigest(kind, to, amount, validAfter, validBefore, nonce);
        if (_approvedDigest[digest] != 0) revert DigestAlreadyApproved(digest);
        bool needsApproval = amount >= _policy.approvalThreshold;
        ProposalKind pk =
            kind == AuthKind.Transfer ? ProposalKind.TransferAuthorization : ProposalKind.ReceiveAuthorization;
        id = _store(pk, to, amount, memoHash, needsApproval, digest, validAfter, validBefore, nonce, "");
        emit AuthorizationProposed(id, msg.sender, to, amount, digest);
        if (!needsApproval) _approveAuthorization(id, _proposals[id]);
    }

    /// An owner's proposal to call this contract with `data` (one of the onlySelf setters, or `cancel`);
    /// the proposer's approval counts.
    function proposeGovernance(bytes calldata data) external onlyOwner returns (uint256 id) {
        if (data.length < 4) revert GovernanceCallTooShort();
        id = _store(ProposalKind.Governance, address(this), 0, bytes32(0), true, bytes32(0), 0, 0, bytes32(0), data);
        emit GovernanceProposed(id, msg.sender, data);
        _approvedIn[id][msg.sender] = _ownerGeneration[msg.sender];
        emit Approved(id, msg.sender);
    }

    /// An owner approves a pending, unexpired proposal.
    function approve(uint256 id) external onlyOwner {
        _requireOpen(id);
        if (_approvedIn[id][msg.sender] == _ownerGeneration[msg.sender]) revert AlreadyApproved(id, msg.sender);
        _approvedIn[id][msg.sender] = _ownerGeneration[msg.sender];
        emit Approved(id, msg.sender);
    }

    /// An owner withdraws an approval before execution.
    function revokeApproval(uint256 id) external onlyOwner {
        _requireOpen(id);
        if (_approvedIn[id][msg.sender] != _ownerGeneration[msg.sender]) revert NotApproved(id, msg.sender);
        delete _approvedIn[id][msg.sender];
        emit ApprovalRevoked(id, msg.sender);
    }

    /// Anyone executes a proposal that has M approvals from current owners and still fits the policy.
    function execute(uint256 id) external nonReentrant {
        Proposal storage p = _requireOpen(id);
        uint256 have = _approvalCount(id);
        if (have < _threshold) revert NotEnoughApprovals(id, have, _threshold);
        if (p.kind == ProposalKind.Payment) {
            _checkSpend(p.to, p.amount);
            _executePayment(id, p);
        } else if (p.kind == ProposalKind.Governance) {
            p.state = ProposalState.Executed;
            (bool ok, bytes memory reason) = address(this).call(p.data);
            if (!ok) revert GovernanceCallFailed(reason);
            emit GovernanceExecuted(id, msg.sender, p.data);
        } else {
            _checkSpend(p.to, p.amount);
            if (p.validBefore <= block.timestamp) revert ValidBeforePassed(p.validBefore);
            if (_approvedDigest[p.digest] != 0) revert DigestAlreadyApproved(p.digest);
            _approveAuthorization(id, p);
        }
    }

    /// The proposer, or the Treasury itself through a governance proposal, cancels a proposal not yet executed.
    function cancel(uint256 id) external {
        if (id >= _proposals.length) revert UnknownProposal(id);
        Proposal storage p = _proposals[id];
        if (msg.sender != p.proposer && msg.sender != address(this)) revert CallerCannotCancel(msg.sender);
        if (p.state == ProposalState.Executed) revert ProposalAlreadyExecuted(id);
        if (p.state == ProposalState.Cancelled) revert ProposalAlreadyCancelled(id);
        p.state = ProposalState.Cancelled;
        emit Cancelled(id, msg.sender);
    }

    // ------------------------------------------------------------------ EIP-1271
    /// 0x1626ba7e for an approved authorization digest whose validBefore has not passed; 0xffffffff otherwise.
    /// The signature bytes are ignored: the approval on chain is the signature.
    function isValidSignature(bytes32 hash, bytes calldata) external view returns (bytes4) {
        return _approvedDigest[hash] > block.timestamp ? ERC1271_MAGIC : ERC1271_INVALID;
    }

    // ------------------------------------------------------------------ governance (self-calls only)
    function addOwner(address owner) external onlySelf {
        _addOwner(owner);
    }

    /// Refuses to leave fewer owners than the threshold.
    function removeOwner(address owner) external onlySelf {
        if (!_isOwner[owner]) revert OwnerNotFound(owner);
        uint256 n = _owners.length;
        if (n - 1 < _threshold) revert RemovalBreaksThreshold(n - 1, _threshold);
        for (uint256 i = 0; i < n; i++) {
            if (_owners[i] == owner) {
                _owners[i] = _owners[n - 1];
                _owners.pop();
                break;
            }
        }
        _isOwner[owner] = false;
        emit OwnerRemoved(owner);
    }

    function setThreshold(uint256 threshold_) external onlySelf {
        _setThreshold(threshold_);
    }

    function setSpender(address spender, bool allowed) external onlySelf {
        _setSpender(spender, allowed);
    }

    function setPolicy(Policy calldata policy_) external onlySelf {
        _setPolicy(policy_);
    }

    function setRecipientAllowed(address recipient, bool allowed) external onlySelf {
        if (recipient == address(0)) revert InvalidRecipient();
        _recipientAllowed[recipient] = allowed;
        emit RecipientAllowed(recipient, allowed);
    }

    // ------------------------------------------------------------------ views
    function token() external view returns (IERC20) {
        return _token;
    }

    function policy() external view returns (Policy memory) {
        return _policy;
    }

    function spentToday() public view returns (uint256) {
        return _spentOn[block.timestamp / 1 days];
    }

    /// What left on UTC day `day` (timestamp / 86400).
    function spentOn(uint256 day) external view returns (uint256) {
        return _spentOn[day];
    }

    function remainingDailyAllowance() public view returns (uint256) {
        uint256 spent = spentToday();
        return spent >= _policy.dailyLimit ? 0 : _policy.dailyLimit - spent;
    }

    function owners() external view returns (address[] memory) {
        return _owners;
    }

    function threshold() external view returns (uint256) {
        return _threshold;
    }

    function isOwner(address account) external view returns (bool) {
        return _isOwner[account];
    }

    function isSpender(address account) external view returns (bool) {
        return _isSpender[account];
    }

    function isRecipientAllowed(address account) external view returns (bool) {
        return _recipientAllowed[account];
    }

    function proposalCount() external view returns (uint256) {
        return _proposals.length;
    }

    function proposal(uint256 id) external view returns (ProposalView memory v) {
        if (id >= _proposals.length) revert UnknownProposal(id);
        Proposal storage p = _proposals[id];
        v = ProposalView({
            kind: p.kind,
            proposer: p.proposer,
            to: p.to,
            amount: p.amount,
            memoHash: p.memoHash,
            createdAt: p.createdAt,
            expiresAt: p.expiresAt,
            state: _stateOf(p),
            approvals: _approvalCount(id),
            needsApproval: p.needsApproval,
            digest: p.digest,
            validAfter: p.validAfter,
            validBefore: p.validBefore,
            nonce: p.nonce,
            data: p.data
        });
    }

    /// The current owners who approved proposal `id`.
    function approvers(uint256 id) external view returns (address[] memory list) {
        if (id >= _proposals.length) revert UnknownProposal(id);
        list = new address[](_approvalCount(id));
        uint256 k = 0;
        for (uint256 i = 0; i < _owners.length; i++) {
            address o = _owners[i];
            if (_approvedIn[id][o] == _ownerGeneration[o]) list[k++] = o;
        }
    }

    // ------------------------------------------------------------------ internals
    function _addOwner(address owner) internal {
        if (owner == address(0) || owner == address(this)) revert InvalidOwner(owner);
        if (_isOwner[owner]) revert DuplicateOwner(owner);
        _isOwner[owner] = true;
        _ownerGeneration[owner] += 1;
        _owners.push(owner);
        emit OwnerAdded(owner);
    }

    function _setThreshold(uint256 threshold_) internal {
        if (threshold_ == 0) revert ThresholdZero();
        if (threshold_ > _owners.length) revert ThresholdAboveOwners(threshold_, _owners.length);
        emit ThresholdChanged(_threshold, threshold_);
        _threshold = threshold_;
    }

    function _setSpender(address spender, bool allowed) internal {
        if (spender == address(0)) revert InvalidSpender();
        _isSpender[spender] = allowed;
        emit SpenderSet(spender, allowed);
    }

    function _setPolicy(Policy calldata policy_) internal {
        if (policy_.perTxLimit > policy_.dailyLimit) revert PerTxAboveDaily(policy_.perTxLimit, policy_.dailyLimit);
        if (policy_.proposalTtl == 0) revert ProposalTtlZero();
        _policy = policy_;
        emit PolicyChanged(policy_);
    }

    /// The policy checks a payment or authorization must pass at proposal and at execution.
    function _checkSpend(address to, uint256 amount) internal view {
        if (to == address(0)) revert InvalidRecipient();
        if (amount == 0) revert ZeroAmount();
        if (amount > _policy.perTxLimit) revert ExceedsPerTxLimit(amount, _policy.perTxLimit);
        uint256 remaining = remainingDailyAllowance();
        if (amount > remaining) revert ExceedsDailyLimit(amount, remaining);
        if (_policy.allowListEnabled && !_recipientAllowed[to]) revert RecipientNotAllowed(to);
    }

    function _store(
        ProposalKind kind,
        address to,
        uint256 amount,
        bytes32 memoHash,
        bool needsApproval,
        bytes32 digest,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory data
    ) internal returns (uint256 id) {
        id = _proposals.length;
        _proposals.push(
            Proposal({
                kind: kind,
                state: ProposalState.Pending,
                needsApproval: needsApproval,
                createdAt: uint64(block.timestamp),
                expiresAt: uint64(block.timestamp) + _policy.proposalTtl,
                proposer: msg.sender,
                to: to,
                amount: amount,
                memoHash: memoHash,
                digest: digest,
                validAfter: validAfter,
                validBefore: validBefore,
                nonce: nonce,
                data: data
            })
        );
    }

    function _executePayment(uint256 id, Proposal storage p) internal {
        p.state = ProposalState.Executed;
        _spentOn[block.timestamp / 1 days] += p.amount;
        emit PaymentExecuted(id, msg.sender, p.to, p.amount, p.memoHash);
        _token.safeTransfer(p.to, p.amount);
    }

    function _approveAuthorization(uint256 id, Proposal storage p) internal {
        p.state = ProposalState.Executed;
        _spentOn[block.timestamp / 1 days] += p.amount;
        _approvedDigest[p.digest] = p.validBefore;
        emit AuthorizationApproved(id, p.digest, p.to, p.amount, p.validBefore, p.nonce);
    }

    function _authorizationDigest(
        AuthKind kind,
        address to,
        uint256 amount,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal view returns (bytes32) {
        bytes32 typehash = kind == AuthKind.Transfer
            ? TRANSFER_WITH_AUTHORIZATION_TYPEHASH
            : RECEIVE_WITH_AUTHORIZATION_TYPEHASH;
        bytes32 structHash = keccak256(abi.encode(typehash, address(this), to, amount, validAfter, validBefore, nonce));
        return keccak256(abi.encodePacked("\x19\x01", IEip3009Token(address(_token)).DOMAIN_SEPARATOR(), structHash));
    }

    /// A proposal that exists, is neither executed nor cancelled, and has not expired.
    function _requireOpen(uint256 id) internal view returns (Proposal storage p) {
        if (id >= _proposals.length) revert UnknownProposal(id);
        p = _proposals[id];
        if (p.state == ProposalState.Executed) revert ProposalAlreadyExecuted(id);
        if (p.state == ProposalState.Cancelled) revert ProposalAlreadyCancelled(id);
        if (block.timestamp > p.expiresAt) revert ProposalExpired(id);
    }

    function _stateOf(Proposal storage p) internal view returns (ProposalState) {
        if (p.state == ProposalState.Pending && block.timestamp > p.expiresAt) return ProposalState.Expired;
        return p.state;
    }

    /// Approvals from current owners in their current membership.
    function _approvalCount(uint256 id) internal view returns (uint256 n) {
        for (uint256 i = 0; i < _owners.length; i++) {
            address o = _owners[i];
            if (_approvedIn[id][o] == _ownerGeneration[o]) n++;
        }
    }
}
