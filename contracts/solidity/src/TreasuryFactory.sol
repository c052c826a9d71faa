// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {Treasury} from "./Treasury.sol";
import {Policy} from "./interfaces/ITreasuryTypes.sol";

/// Deploys Treasury clones (EIP-1167, CREATE2) of one implementation for one token, initialised in the same
/// transaction. The salt is mixed with the creator, so nobody can take another creator's address.
contract TreasuryFactory {
    address public immutable implementation;
    IERC20 public immutable token;
    mapping(address => bool) private _isTreasury;

    event TreasuryCreated(address indexed treasury, address indexed creator, address[] owners, uint256 threshold);

    error ImplementationHasNoCode(address implementation);
    error InvalidToken();

    constructor(address implementation_, IERC20 token_) {
        if (implementation_.code.length == 0) revert ImplementationHasNoCode(implementation_);
        if (address(token_) == address(0)) revert InvalidToken();
        implementation = implementation_;
        token = token_;
    }

    /// Clones and initialises a Treasury at `predictTreasury(msg.sender, salt)`.
    function createTreasury(
        address[] calldata owners,
        uint256 threshold,
        address[] calldata spenders,
        Policy calldata policy,
        bytes32 salt
    ) external returns (address treasury) {
        treasury = Clones.cloneDeterministic(implementation, _salt(msg.sender, salt));
        _isTreasury[treasury] = true;
        Treasury(treasury).initialize(token, owners, threshold, spenders, policy);
        emit TreasuryCreated(treasury, msg.sender, owners, threshold);
    }

    /// The address `creator` gets from `createTreasury(…, salt)`.
    function predictTreasury(address creator, bytes32 salt) external view returns (address) {
        return Clones.predictDeterministicAddress(implementation, _salt(creator, salt));
    }

    /// Whether this factory created `account`.
    function isTreasury(address account) external view returns (bool) {
        return _isTreasury[account];
    }

    function _salt(address creator, bytes32 salt) internal pure returns (bytes32) {
        return keccak256(abi.encode(creator, salt));
    }
}
