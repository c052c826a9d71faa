// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Base} from "./Base.sol";
import {Multicall3} from "../src/Multicall3.sol";
import {USDC} from "../src/USDC.sol";
import {SmartWallet} from "../src/SmartWallet.sol";

contract Multicall3Test is Base {
    Multicall3 internal multicall;
    USDC internal token;

    function setUp() public {
        multicall = new Multicall3();
        token = new USDC();
        token.initialize("USDC", "USDC", "USD", 6, address(this), address(this), address(this), address(this));
        token.configureMinter(address(this), type(uint256).max);
        token.mint(address(0xB0B), 42);
    }

    function testAggregate3AllowFailure() public {
        Multicall3.Call3[] memory calls = new Multicall3.Call3[](2);
        calls[0] = Multicall3.Call3(address(token), true, abi.encodeCall(USDC.balanceOf, (address(0xB0B))));
        calls[1] = Multicall3.Call3(address(token), true, abi.encodeCall(USDC.transfer, (address(0), 1)));
        Multicall3.Result[] memory results = multicall.aggregate3(calls);
        assertTrue(results[0].success, "read succeeds");
        assertEq(abi.decode(results[0].returnData, (uint256)), 42, "balance read");
        assertTrue(!results[1].success, "failing call reported, not reverted");
        calls[1].allowFailure = false;
        vm.expectRevert(bytes("Multicall3: call failed"));
        multicall.aggregate3(calls);
    }

    function testAggregateAndHelpers() public {
        Multicall3.Call[] memory calls = new Multicall3.Call[](1);
        calls[0] = Multicall3.Call(address(token), abi.encodeCall(USDC.totalSupply, ()));
        (uint256 blockNumber, bytes[] memory data) = multicall.aggregate(calls);
        assertEq(blockNumber, block.number, "block number");
        assertEq(abi.decode(data[0], (uint256)), 42, "supply");
        Multicall3.Result[] memory tried = multicall.tryAggregate(false, calls);
        assertTrue(tried[0].success, "tryAggregate");
        (uint256 bn,, Multicall3.Result[] memory r2) = multicall.blockAndAggregate(calls);
        assertEq(bn, block.number, "blockAndAggregate");
        assertTrue(r2[0].success, "blockAndAggregate result");
        assertEq(multicall.getChainId(), block.chainid, "chain id");
        assertEq(multicall.getBlockNumber(), block.number, "block");
        assertEq(multicall.getCurrentBlockTimestamp(), block.timestamp, "timestamp");
        assertEq(multicall.getEthBalance(address(this)), address(this).balance, "eth balance");
        assertEq(multicall.getBasefee(), block.basefee, "basefee");
        assertEq(multicall.getCurrentBlockGasLimit(), block.gaslimit, "gas limit");
        assertEq(multicall.getCurrentBlockCoinbase(), block.coinbase, "coinbase");
        assertEq(multicall.getBlockHash(block.number), blockhash(block.number), "block hash");
        assertEq(multicall.getLastBlockHash(), blockhash(block.number - 1), "last block hash");
        Multicall3.Call3Value[] memory valued = new Multicall3.Call3Value[](0);
        multicall.aggregate3Value(valued);
        vm.expectRevert(bytes("Multicall3: value mismatch"));
        multicall.aggregate3Value{value: 1}(valued);
    }

    function testSmartWalletOwnerOnlyExecuteAndSignatureChecks() public {
        SmartWallet wallet = new SmartWallet(vm.addr(0xB0B));
        bytes32 hash = keccak256("message");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(0xB0B, hash);
        assertTrue(wallet.isValidSignature(hash, abi.encodePacked(r, s, v)) == bytes4(0x1626ba7e), "owner accepted");
        (v, r, s) = vm.sign(0xBAD, hash);
        assertTrue(wallet.isValidSignature(hash, abi.encodePacked(r, s, v)) == bytes4(0xffffffff), "stranger refused");
        assertTrue(wallet.isValidSignature(hash, hex"00") == bytes4(0xffffffff), "short refused");
        vm.expectRevert(bytes("SmartWallet: caller is not the owner"));
        wallet.execute(address(token), 0, abi.encodeCall(USDC.transfer, (address(1), 1)));
        token.mint(address(wallet), 5);
        vm.prank(vm.addr(0xB0B));
        wallet.execute(address(token), 0, abi.encodeCall(USDC.transfer, (address(1), 5)));
        assertEq(token.balanceOf(address(1)), 5, "owner executes");
    }
}
