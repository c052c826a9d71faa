// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IEip3009Token} from "./interfaces/IEip3009Token.sol";

/// @title Buyer-protected purchases: USDC held until delivery is accepted, disputed or refunded
/// @notice One contract holds many agreements. A buyer funds an agreement (with an allowance, or in one step
/// with an EIP-3009 `ReceiveWithAuthorization`); the seller marks it delivered before the delivery deadline;
/// the buyer then releases the funds, or disputes within the review window (the named arbiter splits the
/// funds), or stays silent and anyone may `claim` for the seller once the window closes. An agreement never
/// delivered by its deadline may be refunded to the buyer by anyone.
///
/// States: Funded → Delivered → Released | Disputed → Resolved; Funded → Released (early release by the buyer);
/// Funded → Refunded. Released, Resolved and Refunded are final: an agreement pays out exactly once.
contract Escrow is ReentrancyGuard {
    using SafeERC20 for IERC20;

    enum State {
        None,
        Funded,
        Delivered,
        Released,
        Disputed,
        Resolved,
        Refunded
    }

    /// @notice What a buyer agrees to. `salt` lets a buyer sign the same terms twice (distinct EIP-3009 nonces).
    struct Terms {
        address seller;
        address arbiter;
        uint256 amount;
        uint64 deliveryDeadline;
        uint64 reviewSeconds;
        bytes32 termsHash;
        bytes32 salt;
    }

    struct Agreement {
        address buyer;
        address seller;
        address arbiter;
        uint256 amount;
        uint64 deliveryDeadline;
        uint64 reviewSeconds;
        uint64 deliveredAt;
        bytes32 termsHash;
        bytes32 deliveryHash;
        State state;
    }

    /// @notice The type hash the EIP-3009 nonce of `createWithAuthorization` commits to (see `termsNonce`).
    bytes32 public constant TERMS_TYPEHASH = keccak256(
        "EscrowTerms(address seller,address arbiter,uint256 amount,uint64 deliveryDeadline,uint64 reviewSeconds,bytes32 termsHash,bytes32 salt)"
    );

    IERC20 public immutable token;

    mapping(uint256 => Agreement) private _agreements;
    uint256 private _count;
    uint256 private _open;

    event AgreementCreated(
        uint256 indexed id,
        address indexed buyer,
        address indexed seller,
        address arbiter,
        uint256 amount,
        uint64 deliveryDeadline,
        uint64 reviewSeconds,
        bytes32 termsHash
    );
    event Delivered(uint256 indexed id, bytes32 deliveryHash, uint64 deliveredAt);
    event Released(uint256 indexed id, address by, uint256 amount);
    event Disputed(uint256 indexed id, bytes32 reasonHash);
    event Resolved(uint256 indexed id, uint256 buyerAmount, uint256 sellerAmount);
    event Refunded(uint256 indexed id, uint256 amount);

    error ZeroSeller();
    error ZeroArbiter();
    error ZeroAmount();
    error ZeroReviewWindow();
    error SellerIsBuyer();
    error ArbiterIsBuyer();
    error ArbiterIsSeller();
    error DeadlineInPast(uint64 deliveryDeadline, uint256 now_);
    error NonceDoesNotCommitToTerms(bytes32 nonce, bytes32 expected);
    error UnknownAgreement(uint256 id);
    error NotBuyer(uint256 id, address caller);
    error NotSeller(uint256 id, address caller);
    error NotArbiter(uint256 id, address caller);
    error WrongState(uint256 id, State current, State expected);
    error NotReleasable(uint256 id, State current);
    error DeliveryDeadlinePassed(uint256 id, uint64 deliveryDeadline);
    error ReviewWindowOpen(uint256 id, uint256 endsAt);
    error ReviewWindowClosed(uint256 id, uint256 endedAt);
    error DeadlineNotReached(uint256 id, uint64 deliveryDeadline);
    error SplitTooLarge(uint256 buyerAmount, uint256 amount);
    error LengthMismatch(uint256 ids, uint256 hashes);

    constructor(IERC20 token_) {
        token = token_;
    }

    // ------------------------------------------------------------ funding

    /// @notice Creates an agreement funded by `msg.sender` (the buyer) through an allowance to this contract.
    function create(Terms calldata terms) external nonReentrant returns (uint256 id) {
        id = _openAgreement(terms, msg.sender);
        token.safeTransferFrom(msg.sender, address(this), terms.amount);
    }

    /// @notice Creates an agreement funded in one step by the buyer's EIP-3009 `ReceiveWithAuthorization` (to this
    /// contract, for `terms.amount`); anyone (a relayer) may submit it.
    /// @dev Front-running guard: the authorization's `nonce` MUST equal `termsNonce(terms)`. The signature alone
    /// only binds the buyer, this contract, the amount and the validity window — not the seller, arbiter or
    /// deadlines. Without the commitment, anyone who saw the signature (in the mempool, or at a relayer) could
    /// submit it first with terms naming a different seller or arbiter and divert the buyer's money. With it,
    /// the only agreement the signature can fund is the one the buyer signed for; the token's single-use nonce
    /// then also makes the signature fund it at most once.
    function createWithAuthorization(
        Terms calldata terms,
        address buyer,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external nonReentrant returns (uint256 id) {
        bytes32 expected = termsNonce(terms);
        if (nonce != expected) revert NonceDoesNotCommitToTerms(nonce, expected);
        id = _openAgreement(terms, buyer);
        IEip3009Token(address(token)).receiveWithAuthorization(
            buyer, address(this), terms.amount, validAfter, validBefore, nonce, signature
        );
    }

    /// @notice The EIP-3009 nonce a buyer signs to fund exactly these terms through `createWithAuthorization`:
    /// keccak256(abi.encode(TERMS_TYPEHASH, seller, arbiter, amount, deliveryDeadline, reviewSeconds, termsHash, salt)).
    function termsNonce(Terms calldata terms) public pure returns (bytes32) {
        return keccak256(
            abi.encode(
                TERMS_TYPEHASH,
                terms.seller,
                terms.arbiter,
                terms.amount,
                terms.deliveryDeadline,
                terms.reviewSeconds,
                terms.termsHash,
                terms.salt
            )
        );
    }

    // ------------------------------------------------------------ transitions

    /// @notice The seller records delivery (with a hash of what was delivered) before the delivery deadline;
    /// the buyer's review window starts now.
    function markDelivered(uint256 id, bytes32 deliveryHash) external nonReentrant {
        _markDelivered(id, deliveryHash);
    }

    /// @notice `markDelivered` for many agreements; reverts as a whole if any entry is refused.
    function markDeliveredBatch(uint256[] calldata ids, bytes32[] calldata hashes) external nonReentrant {
        if (ids.length != hashes.length) revert LengthMismatch(ids.length, hashes.length);
        for (uint256 i = 0; i < ids.length; ++i) {
            _markDelivered(ids[i], hashes[i]);
        }
    }

    /// @notice The buyer accepts (before or after delivery): the seller is paid.
    function release(uint256 id) external nonReentrant {
        Agreement storage a = _agreement(id);
        if (msg.sender != a.buyer) revert NotBuyer(id, msg.sender);
        if (a.state != State.Funded && a.state != State.Delivered) revert NotReleasable(id, a.state);
        _payOut(a, State.Released, 0);
        emit Released(id, msg.sender, a.amount);
    }

    /// @notice After an undisputed review window anyone may settle a delivered agreement to its seller.
    function claim(uint256 id) external nonReentrant {
        Agreement storage a = _agreement(id);
        _expect(id, a, State.Delivered);
        uint256 endsAt = uint256(a.deliveredAt) + a.reviewSeconds;
        if (block.timestamp < endsAt) revert ReviewWindowOpen(id, endsAt);
        _payOut(a, State.Released, 0);
        emit Released(id, msg.sender, a.amount);
    }

    /// @notice The buyer contests a delivery inside the review window; the arbiter decides the split.
    function dispute(uint256 id, bytes32 reasonHash) external nonReentrant {
        Agreement storage a = _agreement(id);
        if (msg.sender != a.buyer) revert NotBuyer(id, msg.sender);
        _expect(id, a, State.Delivered);
        uint256 endsAt = uint256(a.deliveredAt) + a.reviewSeconds;
        if (block.timestamp >= endsAt) revert ReviewWindowClosed(id, endsAt);
        a.state = State.Disputed;
        emit Disputed(id, reasonHash);
    }

    /// @notice The arbiter settles a dispute: `buyerAmount` back to the buyer, the rest to the seller.
    function resolve(uint256 id, uint256 buyerAmount) external nonReentrant {
        Agreement storage a = _agreement(id);
        if (msg.sender != a.arbiter) revert NotArbiter(id, msg.sender);
        _expect(id, a, State.Disputed);
        if (buyerAmount > a.amount) revert SplitTooLarge(buyerAmount, a.amount);
        _payOut(a, State.Resolved, buyerAmount);
        emit Resolved(id, buyerAmount, a.amount - buyerAmount);
    }

    /// @notice An agreement never delivered by its deadline: anyone may return the funds to the buyer.
    function refund(uint256 id) external nonReentrant {
        Agreement storage a = _agreement(id);
        _expect(id, a, State.Funded);
        if (block.timestamp < a.deliveryDeadline) revert DeadlineNotReached(id, a.deliveryDeadline);
        _payOut(a, State.Refunded, a.amount);
        emit Refunded(id, a.amount);
    }

    // ------------------------------------------------------------ views

    function agreement(uint256 id) external view returns (Agreement memory) {
        return _agreement(id);
    }

    /// @notice How many agreements exist; ids run from 1 to this number.
    function agreementCount() external view returns (uint256) {
        return _count;
    }

    /// @notice The sum of the amounts of agreements still Funded, Delivered or Disputed: what the contract owes.
    function openBalance() external view returns (uint256) {
        return _open;
    }

    /// @notice When the buyer's review window closes (deliveredAt + reviewSeconds), or 0 if not delivered yet.
    function reviewEndsAt(uint256 id) external view returns (uint256) {
        Agreement storage a = _agreement(id);
        if (a.deliveredAt == 0) return 0;
        return uint256(a.deliveredAt) + a.reviewSeconds;
    }

    // ------------------------------------------------------------ internals

    function _openAgreement(Terms calldata terms, address buyer) private returns (uint256 id) {
        if (terms.seller == address(0)) revert ZeroSeller();
        if (terms.arbiter == address(0)) revert ZeroArbiter();
        if (terms.amount == 0) revert ZeroAmount();
        if (terms.reviewSeconds == 0) revert ZeroReviewWindow();
        if (terms.seller == buyer) revert SellerIsBuyer();
        if (terms.arbiter == buyer) revert ArbiterIsBuyer();
        if (terms.arbiter == terms.seller) revert ArbiterIsSeller();
        if (terms.deliveryDeadline <= block.timestamp) revert DeadlineInPast(terms.deliveryDeadline, block.timestamp);
        id = ++_count;
        _agreements[id] = Agreement({
            buyer: buyer,
            seller: terms.seller,
            arbiter: terms.arbiter,
            amount: terms.amount,
            deliveryDeadline: terms.deliveryDeadline,
            reviewSeconds: terms.reviewSeconds,
            deliveredAt: 0,
            termsHash: terms.termsHash,
            deliveryHash: bytes32(0),
            state: State.Funded
        });
        _open += terms.amount;
        emit AgreementCreated(
            id,
            buyer,
            terms.seller,
            terms.arbiter,
            terms.amount,
            terms.deliveryDeadline,
            terms.reviewSeconds,
            terms.termsHash
        );
    }

    function _markDelivered(uint256 id, bytes32 deliveryHash) private {
        Agreement storage a = _agreement(id);
        if (msg.sender != a.seller) revert NotSeller(id, msg.sender);
        _expect(id, a, State.Funded);
        if (block.timestamp >= a.deliveryDeadline) revert DeliveryDeadlinePassed(id, a.deliveryDeadline);
        a.state = State.Delivered;
        a.deliveredAt = uint64(block.timestamp);
        a.deliveryHash = deliveryHash;
        emit Delivered(id, deliveryHash, uint64(block.timestamp));
    }

    /// Moves `a` to its final state before paying (checks-effects-interactions): `toBuyer` to the buyer, the
    /// rest of the amount to the seller.
    function _payOut(Agreement storage a, State finalState, uint256 toBuyer) private {
        a.state = finalState;
        uint256 amount = a.amount;
        _open -= amount;
        if (toBuyer > 0) token.safeTransfer(a.buyer, toBuyer);
        if (amount > toBuyer) token.safeTransfer(a.seller, amount - toBuyer);
    }

    function _agreement(uint256 id) private view returns (Agreement storage a) {
        a = _agreements[id];
        if (a.state == State.None) revert UnknownAgreement(id);
    }

    function _expect(uint256 id, Agreement storage a, State expected) private view {
        if (a.state != expected) revert WrongState(id, a.state, expected);
    }
}
