// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {UsdcFixture} from "./UsdcFixture.sol";
import {Multicall3} from "../src/Multicall3.sol";
import {USDC} from "../src/USDC.sol";

contract PayableTarget {
    function take() external payable returns (uint256) {
        return msg.value;
    }
}

contract Multicall3Test is UsdcFixture {
    address internal constant CANONICAL = 0xcA11bde05977b3631167028862bE2a173976CA11;
    Multicall3 internal multicall;

    function setUp() public override {
        super.setUp();
        // installed like the devnet does it: runtime code only, no constructor
        vm.etch(CANONICAL, address(new Multicall3()).code);
        multicall = Multicall3(CANONICAL);
    }

    function balanceCall(address who) internal view returns (Multicall3.Call memory) {
        return Multicall3.Call(address(token), abi.encodeCall(USDC.balanceOf, (who)));
    }

    function failingCall() internal view returns (Multicall3.Call memory) {
        return Multicall3.Call(address(token), abi.encodeCall(USDC.transfer, (address(0), 1)));
    }

    // ------------------------------------------------------------ aggregate3
    function testAggregate3AllowFailure() public {
        Multicall3.Call3[] memory calls = new Multicall3.Call3[](2);
        calls[0] = Multicall3.Call3(address(token), true, abi.encodeCall(USDC.balanceOf, (buyer)));
        calls[1] = Multicall3.Call3(address(token), true, abi.encodeCall(USDC.transfer, (address(0), 1)));
        Multicall3.Result[] memory results = multicall.aggregate3(calls);
        assertTrue(results[0].success, "read succeeds");
        assertEq(abi.decode(results[0].returnData, (uint256)), FUNDS, "balance read");
        assertTrue(!results[1].success, "failing call reported, not reverted");
        assertEq(results[1].returnData, revertData("ERC20: transfer to the zero address"), "revert data kept");
        calls[1].allowFailure = false;
        vm.expectRevert(bytes("Multicall3: call failed"));
        multicall.aggregate3(calls);
        calls[0].allowFailure = false;
        calls[1] = calls[0];
        results = multicall.aggregate3(calls);
        assertTrue(results[0].success && results[1].success, "all succeed without allowFailure");
    }

    /// How the facilitator settles a batch: each transferWithAuthorization may fail on its own.
    function testAggregate3BatchSettlement() public {
        uint256 vb = block.timestamp + 60;
        bytes memory sig1 = authorize(100, 0, vb, keccak256("b1"));
        bytes memory sig2 = authorize(200, 0, vb, keccak256("b2"));
        token.transferWithAuthorization(buyer, seller, 200, 0, vb, keccak256("b2"), sig2); // b2 settles elsewhere
        Multicall3.Call3[] memory calls = new Multicall3.Call3[](3);
        calls[0] = Multicall3.Call3(
            address(token),
            true,
            abi.encodeWithSignature(
                "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)",
                buyer,
                seller,
                100,
                0,
                vb,
                keccak256("b1"),
                sig1
            )
        );
        calls[1] = Multicall3.Call3(
            address(token),
            true,
            abi.encodeWithSignature(
                "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)",
                buyer,
                seller,
                200,
                0,
                vb,
                keccak256("b2"),
                sig2
            )
        );
        calls[2] = Multicall3.Call3(address(token), true, abi.encodeCall(USDC.balanceOf, (seller)));
        bytes4 selector = bytes4(calls[0].callData);
        assertTrue(selector == bytes4(0xcf092995), "bytes overload selector");

        // without allowFailure the whole batch reverts, settling nothing
        calls[1].allowFailure = false;
        vm.expectRevert(bytes("Multicall3: call failed"));
        multicall.aggregate3(calls);
        assertTrue(!token.authorizationState(buyer, keccak256("b1")), "nothing settled");

        calls[1].allowFailure = true;
        Multicall3.Result[] memory results = multicall.aggregate3(calls);
        assertTrue(results[0].success, "fresh authorization settles");
        assertTrue(!results[1].success, "replayed authorization fails alone");
        assertEq(results[1].returnData, revertData("FiatTokenV2: authorization is used or canceled"), "why");
        assertEq(abi.decode(results[2].returnData, (uint256)), 300, "reads see the batch's earlier writes");
    }

    // ------------------------------------------------------------ aggregate, tryAggregate, block variants
    function testAggregate() public {
        Multicall3.Call[] memory calls = new Multicall3.Call[](2);
        calls[0] = balanceCall(buyer);
        calls[1] = Multicall3.Call(address(token), abi.encodeCall(USDC.totalSupply, ()));
        (uint256 blockNumber, bytes[] memory data) = multicall.aggregate(calls);
        assertEq(blockNumber, block.number, "block number");
        assertEq(abi.decode(data[0], (uint256)), FUNDS, "balance");
        assertEq(abi.decode(data[1], (uint256)), FUNDS, "supply");
        calls[1] = failingCall();
        vm.expectRevert(bytes("Multicall3: call failed"));
        multicall.aggregate(calls);
    }

    function testTryAggregate() public {
        Multicall3.Call[] memory calls = new Multicall3.Call[](2);
        calls[0] = balanceCall(buyer);
        calls[1] = failingCall();
        Multicall3.Result[] memory results = multicall.tryAggregate(false, calls);
        assertTrue(results[0].success && !results[1].success, "failures reported");
        vm.expectRevert(bytes("Multicall3: call failed"));
        multicall.tryAggregate(true, calls);
    }

    function testBlockAndAggregate() public {
        vm.roll(100);
        Multicall3.Call[] memory calls = new Multicall3.Call[](1);
        calls[0] = balanceCall(buyer);
        (uint256 bn, bytes32 bh, Multicall3.Result[] memory results) = multicall.blockAndAggregate(calls);
        assertEq(bn, 100, "block number");
        assertEq(bh, blockhash(100), "hash of the current block (zero, as in Multicall3)");
        assertTrue(results[0].success, "result");
        Multicall3.Call[] memory failing = new Multicall3.Call[](1);
        failing[0] = failingCall();
        vm.expectRevert(bytes("Multicall3: call failed"));
        multicall.blockAndAggregate(failing);
        (bn,, results) = multicall.tryBlockAndAggregate(false, failing);
        assertEq(bn, 100, "tryBlockAndAggregate block");
        assertTrue(!results[0].success, "tryBlockAndAggregate reports");
        vm.expectRevert(bytes("Multicall3: call failed"));
        multicall.tryBlockAndAggregate(true, failing);
    }

    // ------------------------------------------------------------ aggregate3Value
    function testAggregate3Value() public {
        PayableTarget target = new PayableTarget();
        vm.deal(address(this), 10 ether);
        Multicall3.Call3Value[] memory calls = new Multicall3.Call3Value[](2);
        calls[0] = Multicall3.Call3Value(address(target), false, 1 ether, abi.encodeCall(PayableTarget.take, ()));
        calls[1] = Multicall3.Call3Value(address(token), true, 0, abi.encodeCall(USDC.transfer, (address(0), 1)));
        Multicall3.Result[] memory results = multicall.aggregate3Value{value: 1 ether}(calls);
        assertEq(abi.decode(results[0].returnData, (uint256)), 1 ether, "value forwarded");
        assertEq(address(target).balance, 1 ether, "target paid");
        assertTrue(!results[1].success, "allowed failure reported");
        vm.expectRevert(bytes("Multicall3: value mismatch"));
        multicall.aggregate3Value{value: 2 ether}(calls);
        calls[1].allowFailure = false;
        vm.expectRevert(bytes("Multicall3: call failed"));
        multicall.aggregate3Value{value: 1 ether}(calls);
        // value sent to a non-payable function fails that call
        calls[1] = Multicall3.Call3Value(address(token), false, 1, abi.encodeCall(USDC.totalSupply, ()));
        vm.expectRevert(bytes("Multicall3: call failed"));
        multicall.aggregate3Value{value: 1 ether + 1}(calls);
    }

    // ------------------------------------------------------------ helpers
    function testBlockAndChainHelpers() public {
        vm.roll(50);
        vm.chainId(5042002);
        assertEq(multicall.getChainId(), 5042002, "chain id");
        assertEq(multicall.getBlockNumber(), 50, "block");
        assertEq(multicall.getCurrentBlockTimestamp(), START, "timestamp");
        assertEq(multicall.getEthBalance(address(this)), address(this).balance, "eth balance");
        assertEq(multicall.getBasefee(), block.basefee, "basefee");
        assertEq(multicall.getCurrentBlockGasLimit(), block.gaslimit, "gas limit");
        assertEq(multicall.getCurrentBlockCoinbase(), block.coinbase, "coinbase");
        assertEq(multicall.getBlockHash(49), blockhash(49), "block hash");
        assertEq(multicall.getLastBlockHash(), blockhash(49), "last block hash");
    }
}
