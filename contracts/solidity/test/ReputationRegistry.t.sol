// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Base} from "./Base.sol";
import {IdentityRegistry} from "../src/IdentityRegistry.sol";
import {ReputationRegistry} from "../src/ReputationRegistry.sol";
import {IReputationRegistry} from "../src/interfaces/IReputationRegistry.sol";

/// ERC-8004 Reputation: selectors and topics, feedback, revocation, responses, the reads and every refusal, and
/// getSummary's arithmetic against a reference computed here (fuzzed over values, decimals and revocations).
contract ReputationRegistryTest is Base {
    IdentityRegistry internal ids;
    ReputationRegistry internal rep;
    address internal agentOwner = address(0xA6E7);
    address internal operator = address(0x0BE2);
    address internal client = address(0xC1);
    address internal client2 = address(0xC2);
    uint256 internal agent;

    function setUp() public {
        ids = new IdentityRegistry();
        rep = new ReputationRegistry(address(ids));
        vm.prank(agentOwner);
        agent = ids.register("ipfs://agent");
    }

    function give(address who, int128 value, uint8 decimals, string memory tag1, string memory tag2) internal {
        vm.prank(who);
        rep.giveFeedback(agent, value, decimals, tag1, tag2, "https://agent.example/api", "ipfs://fb", keccak256("fb"));
    }

    function one(address a) internal pure returns (address[] memory l) {
        l = new address[](1);
        l[0] = a;
    }

    function two(address a, address b) internal pure returns (address[] memory l) {
        l = new address[](2);
        l[0] = a;
        l[1] = b;
    }

    function testSelectorsAndTopics() public pure {
        assertEq(bytes32(ReputationRegistry.giveFeedback.selector), bytes32(bytes4(0x3c036a7e)), "giveFeedback");
        assertEq(bytes32(ReputationRegistry.getSummary.selector), bytes32(bytes4(0x81bbba58)), "getSummary");
        bytes32 topic = IReputationRegistry.NewFeedback.selector;
        assertEq(
            topic,
            keccak256("NewFeedback(uint256,address,uint64,int128,uint8,string,string,string,string,string,bytes32)"),
            "NewFeedback signature"
        );
        assertEq(bytes32(bytes4(topic)), bytes32(bytes4(0x6a4a6174)), "NewFeedback topic prefix");
        assertEq(
            IReputationRegistry.FeedbackRevoked.selector, keccak256("FeedbackRevoked(uint256,address,uint64)"), "revoked"
        );
        assertEq(
            IReputationRegistry.ResponseAppended.selector,
            keccak256("ResponseAppended(uint256,address,uint64,address,string,bytes32)"),
            "response"
        );
    }

    function testConstructor() public {
        assertEq(rep.getIdentityRegistry(), address(ids), "identity registry");
        assertEq(uint256(rep.MAX_DECIMALS()), 18, "max decimals");
        vm.expectRevert(abi.encodeWithSelector(IReputationRegistry.ZeroIdentityRegistry.selector));
        new ReputationRegistry(address(0));
    }

    function testGiveFeedbackStoresAndEmits() public {
        vm.expectEmit(address(rep));
        emit IReputationRegistry.NewFeedback(
            agent, client, 1, 87, 0, "starred", "starred", "", "https://agent.example/api", "ipfs://fb", keccak256("fb")
        );
        give(client, 87, 0, "starred", "");
        give(client, -5, 2, "uptime", "day");
        give(client2, 1, 0, "starred", "");
        assertEq(uint256(rep.getLastIndex(agent, client)), 2, "client last index");
        assertEq(uint256(rep.getLastIndex(agent, client2)), 1, "client2 last index");
        assertEq(uint256(rep.getLastIndex(agent, address(0xDEAD))), 0, "none");
        address[] memory cl = rep.getClients(agent);
        assertEq(cl.length, 2, "two clients, once each");
        assertEq(cl[0], client, "first client");
        assertEq(cl[1], client2, "second client");
        (int128 v, uint8 d, string memory t1, string memory t2, bool revoked) = rep.readFeedback(agent, client, 2);
        assertEq(int256(v), -5, "value");
        assertEq(uint256(d), 2, "decimals");
        assertEq(t1, "uptime", "tag1");
        assertEq(t2, "day", "tag2");
        assertFalse(revoked, "not revoked");
    }

    function testGiveFeedbackRefusals() public {
        vm.expectRevert(abi.encodeWithSelector(IReputationRegistry.SelfFeedback.selector, agent, agentOwner));
        give(agentOwner, 100, 0, "", "");
        vm.prank(agentOwner);
        ids.setApprovalForAll(operator, true);
        vm.expectRevert(abi.encodeWithSelector(IReputationRegistry.SelfFeedback.selector, agent, operator));
        give(operator, 100, 0, "", "");
        vm.prank(agentOwner);
        ids.approve(client2, agent);
        vm.expectRevert(abi.encodeWithSelector(IReputationRegistry.SelfFeedback.selector, agent, client2));
        give(client2, 100, 0, "", "");
        vm.expectRevert(abi.encodeWithSelector(IReputationRegistry.ValueDecimalsTooLarge.selector, 19));
        give(client, 1, 19, "", "");
        vm.expectRevert(abi.encodeWithSelector(IReputationRegistry.UnknownAgent.selector, 42));
        vm.prank(client);
        rep.giveFeedback(42, 1, 0, "", "", "", "", bytes32(0));
        assertEq(rep.getClients(agent).length, 0, "nothing stored");
        give(client, 1, 18, "", ""); // 18 is allowed
        assertEq(uint256(rep.getLastIndex(agent, client)), 1, "accepted");
    }

    function testRevokeFeedback() public {
        give(client, 80, 0, "", "");
        vm.expectRevert(abi.encodeWithSelector(IReputationRegistry.FeedbackNotFound.selector, agent, client2, 1));
        vm.prank(client2);
        rep.revokeFeedback(agent, 1); // someone else's feedback: client2 has none
        vm.expectRevert(abi.encodeWithSelector(IReputationRegistry.FeedbackNotFound.selector, agent, client, 0));
        vm.prank(client);
        rep.revokeFeedback(agent, 0);
        vm.expectRevert(abi.encodeWithSelector(IReputationRegistry.FeedbackNotFound.selector, agent, client, 2));
        vm.prank(client);
        rep.revokeFeedback(agent, 2);
        vm.expectEmit(address(rep));
        emit IReputationRegistry.FeedbackRevoked(agent, client, 1);
        vm.prank(client);
        rep.revokeFeedback(agent, 1);
        (,,,, bool revoked) = rep.readFeedback(agent, client, 1);
        assertTrue(revoked, "revoked");
        vm.expectRevert(abi.encodeWithSelector(IReputationRegistry.FeedbackAlreadyRevoked.selector, agent, client, 1));
        vm.prank(client);
        rep.revokeFeedback(agent, 1);
        (uint64 count,,) = rep.getSummary(agent, one(client), "", "");
        assertEq(uint256(count), 0, "revoked excluded from the summary");
    }

    function testAppendResponseAndCounts() public {
        give(client, 80, 0, "", "");
        give(client, 90, 0, "", "");
        give(client2, 70, 0, "", "");
        vm.expectEmit(address(rep));
        emit IReputationRegistry.ResponseAppended(agent, client, 1, agentOwner, "ipfs://refund", keccak256("r"));
        vm.prank(agentOwner);
        rep.appendResponse(agent, client, 1, "ipfs://refund", keccak256("r"));
        vm.prank(operator);
        rep.appendResponse(agent, client, 1, "ipfs://spam", bytes32(0));
        vm.prank(agentOwner);
        rep.appendResponse(agent, client, 2, "ipfs://r2", bytes32(0));
        vm.prank(agentOwner);
        rep.appendResponse(agent, client2, 1, "ipfs://r3", bytes32(0));
        address[] memory anyone = new address[](0);
        assertEq(uint256(rep.getResponseCount(agent, client, 1, anyone)), 2, "one feedback");
        assertEq(uint256(rep.getResponseCount(agent, client, 1, one(operator))), 1, "by operator");
        assertEq(uint256(rep.getResponseCount(agent, client, 0, anyone)), 3, "all of client's");
        assertEq(uint256(rep.getResponseCount(agent, address(0), 0, anyone)), 4, "all clients");
        assertEq(uint256(rep.getResponseCount(agent, address(0), 0, one(agentOwner))), 3, "all by owner");
        vm.expectRevert(abi.encodeWithSelector(IReputationRegistry.FeedbackNotFound.selector, agent, client, 3));
        rep.appendResponse(agent, client, 3, "ipfs://x", bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(IReputationRegistry.EmptyResponseURI.selector));
        rep.appendResponse(agent, client, 1, "", bytes32(0));
    }

    function testReadFeedbackUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IReputationRegistry.FeedbackNotFound.selector, agent, client, 1));
        rep.readFeedback(agent, client, 1);
    }

    function testReadAllFeedbackFilters() public {
        give(client, 10, 0, "a", "x");
        give(client, 20, 1, "b", "x");
        give(client2, 30, 0, "a", "y");
        vm.prank(client);
        rep.revokeFeedback(agent, 1);
        address[] memory all = new address[](0);
        (address[] memory cs, uint64[] memory idx, int128[] memory vs,,,, bool[] memory rv) =
            rep.readAllFeedback(agent, all, "", "", false);
        assertEq(cs.length, 2, "unrevoked only");
        assertEq(cs[0], client, "client order");
        assertEq(uint256(idx[0]), 2, "index");
        assertEq(int256(vs[1]), 30, "value");
        assertFalse(rv[0], "flag");
        (cs,,,,,, rv) = rep.readAllFeedback(agent, all, "", "", true);
        assertEq(cs.length, 3, "with revoked");
        assertTrue(rv[0], "revoked flag");
        string[] memory t1s;
        (cs,,,, t1s,,) = rep.readAllFeedback(agent, all, "a", "", true);
        assertEq(cs.length, 2, "tag1 filter");
        assertEq(t1s[1], "a", "tag1");
        string[] memory t2s;
        (cs,,,,, t2s,) = rep.readAllFeedback(agent, one(client), "", "x", true);
        assertEq(cs.length, 2, "tag2 filter, one client");
        assertEq(t2s[0], "x", "tag2");
    }

    function testSummaryArithmetic() public {
        vm.expectRevert(abi.encodeWithSelector(IReputationRegistry.ClientsRequired.selector));
        rep.getSummary(agent, new address[](0), "", "");
        (uint64 c, int128 v, uint8 d) = rep.getSummary(agent, one(client), "", "");
        assertEq(uint256(c) + uint256(int256(v)) + d, 0, "no feedback: zeros");
        give(client, 9977, 2, "uptime", ""); // 99.77
        give(client2, 99, 0, "uptime", ""); // 99
        give(client2, 5, 0, "starred", "");
        (c, v, d) = rep.getSummary(agent, two(client, client2), "uptime", "");
        assertEq(uint256(c), 2, "count");
        assertEq(uint256(d), 2, "largest decimals");
        assertEq(int256(v), 9938, "(99.77 + 99) / 2 = 99.385 -> 99.38 truncated");
        (c, v, d) = rep.getSummary(agent, one(client2), "", "");
        assertEq(uint256(c), 2, "no filter");
        assertEq(int256(v), 52, "(99 + 5) / 2");
        (c, v,) = rep.getSummary(agent, two(client2, client2), "starred", "");
        assertEq(uint256(c), 2, "a client listed twice counts twice");
        assertEq(int256(v), 5, "mean");
        give(client, -3, 0, "neg", "");
        give(client2, -4, 0, "neg", "");
        (, v,) = rep.getSummary(agent, two(client, client2), "neg", "");
        assertEq(int256(v), -3, "-3.5 truncates toward zero");
        // a mean that overflows int128 at 18 decimals drops decimals until it fits
        give(client, type(int128).max, 0, "big", "");
        give(client, 1, 18, "big", "");
        (c, v, d) = rep.getSummary(agent, one(client), "big", "");
        assertEq(uint256(c), 2, "count big");
        assertTrue(d < 18, "decimals dropped");
        assertTrue(int256(v) > 0, "positive");
    }

    /// Random values/decimals over two clients, some revoked: getSummary equals the documented reference.
    function testFuzzSummary(uint256 seed, uint8 nRaw) public {
        uint256 n = bound(nRaw, 1, 8);
        int256 sum;
        uint64 count;
        uint8 maxDec;
        for (uint256 i = 0; i < n; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            address who = r & 1 == 0 ? client : client2;
            int128 value = int128(int256(bound(r >> 8, 0, 2e12)) - 1e12);
            uint8 dec = uint8(bound(r >> 64, 0, 18));
            give(who, value, dec, "t", "");
            if ((r >> 128) % 3 == 0) {
                uint64 idx = rep.getLastIndex(agent, who);
                vm.prank(who);
                rep.revokeFeedback(agent, idx);
            } else {
                count += 1;
                sum += int256(value) * int256(10 ** (18 - dec));
                if (dec > maxDec) maxDec = dec;
            }
        }
        (uint64 c, int128 v, uint8 d) = rep.getSummary(agent, two(client, client2), "t", "");
        assertEq(uint256(c), uint256(count), "count");
        if (count == 0) {
            assertEq(int256(v), 0, "zero value");
            assertEq(uint256(d), 0, "zero decimals");
            return;
        }
        assertEq(uint256(d), uint256(maxDec), "decimals = largest counted");
        int256 want = (sum / int256(uint256(count))) / int256(10 ** (18 - maxDec));
        assertEq(int256(v), want, "mean");
    }
}
