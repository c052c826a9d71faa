// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// The forge cheatcodes these tests use, declared by hand (no forge-std dependency).
interface Vm {
    struct Gas {
        uint64 gasLimit;
        uint64 gasTotalUsed;
        uint64 gasMemoryUsed;
        int64 gasRefunded;
        uint64 gasRemaining;
    }

    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function warp(uint256 timestamp) external;
    function roll(uint256 blockNumber) external;
    function chainId(uint256 id) external;
    function etch(address target, bytes calldata code) external;
    function deal(address account, uint256 newBalance) external;
    function addr(uint256 privateKey) external pure returns (address);
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function expectRevert(bytes calldata revertData) external;
    function expectRevert() external;
    function expectRevert(bytes4 revertData) external;
    function expectEmit() external;
    function expectEmit(address emitter) external;
    function load(address target, bytes32 slot) external view returns (bytes32);
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter) external;
    function assume(bool condition) external pure;
    function lastCallGas() external view returns (Gas memory gas);
}

/// Assertions, a fuzz-input bound and a log forge prints with -vv, written out.
abstract contract Base {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    /// DSTest's log event; forge decodes it in traces and with -vv.
    event log_named_uint(string key, uint256 val);

    function assertEq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": values differ"));
    }

    function assertEq(bytes32 a, bytes32 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": hashes differ"));
    }

    function assertEq(address a, address b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": addresses differ"));
    }

    function assertEq(bytes memory a, bytes memory b, string memory what) internal pure {
        if (keccak256(a) != keccak256(b)) revert(string.concat(what, ": bytes differ"));
    }

    function assertEq(string memory a, string memory b, string memory what) internal pure {
        if (keccak256(bytes(a)) != keccak256(bytes(b))) revert(string.concat(what, ": strings differ"));
    }

    function assertEq(int256 a, int256 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": values differ"));
    }

    function assertEq(bool a, bool b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": booleans differ"));
    }

    function assertLe(uint256 a, uint256 b, string memory what) internal pure {
        if (a > b) revert(string.concat(what, ": above the bound"));
    }

    function assertGe(uint256 a, uint256 b, string memory what) internal pure {
        if (a < b) revert(string.concat(what, ": below the bound"));
    }

    function assertTrue(bool condition, string memory what) internal pure {
        if (!condition) revert(what);
    }

    function assertFalse(bool condition, string memory what) internal pure {
        if (condition) revert(what);
    }

    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (max <= min) return min;
        if (min == 0 && max == type(uint256).max) return x;
        return min + (x % (max - min + 1));
    }

    /// The revert data `require(false, reason)` produces: Error(string).
    function revertData(string memory reason) internal pure returns (bytes memory) {
        return abi.encodeWithSignature("Error(string)", reason);
    }
}

/// What forge reads from an invariant test to know which contracts (and which of their functions) to call at
/// random: a handler is registered with `targetContract`, optionally narrowed with `targetSelector`.
abstract contract InvariantBase is Base {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    address[] private targets;
    FuzzSelector[] private selectors;

    function targetContract(address target) internal {
        targets.push(target);
    }

    function targetSelector(address target, bytes4[] memory chosen) internal {
        selectors.push(FuzzSelector(target, chosen));
    }

    function targetContracts() public view returns (address[] memory) {
        return targets;
    }

    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return selectors;
    }
}
