// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Base} from "./Base.sol";
import {Marketplace} from "../src/Marketplace.sol";
import {IMarketplace} from "../src/interfaces/IMarketplace.sol";

/// The provider registry: every write and its refusals, the views, paging checked against a reference list the
/// test keeps itself, and tags moving between tag lists on update.
contract MarketplaceTest is Base {
    Marketplace internal market;
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal payTo = address(0x9A70);
    uint256 internal constant T0 = 1_800_000_000;

    function setUp() public {
        market = new Marketplace();
        vm.warp(T0);
    }

    // ------------------------------------------------------------ helpers

    function tags1(string memory a) internal pure returns (string[] memory t) {
        t = new string[](1);
        t[0] = a;
    }

    function tags2(string memory a, string memory b) internal pure returns (string[] memory t) {
        t = new string[](2);
        t[0] = a;
        t[1] = b;
    }

    function input(string[] memory tags) internal view returns (IMarketplace.ServiceInput memory) {
        return IMarketplace.ServiceInput("weather", "https://api.example/weather", tags, 1_000, payTo, "ipfs://meta");
    }

    function good() internal view returns (IMarketplace.ServiceInput memory) {
        return input(tags2("weather", "data"));
    }

    function registerAs(address who, IMarketplace.ServiceInput memory s) internal returns (uint256 id) {
        vm.prank(who);
        id = market.register(s);
    }

    function repeat(bytes1 b, uint256 n) internal pure returns (string memory) {
        bytes memory out = new bytes(n);
        for (uint256 i = 0; i < n; ++i) {
            out[i] = b;
        }
        return string(out);
    }

    function ids(IMarketplace.Service[] memory page) internal pure returns (uint256[] memory out) {
        out = new uint256[](page.length);
        for (uint256 i = 0; i < page.length; ++i) {
            out[i] = page[i].id;
        }
    }

    function tagPage(string memory tag) internal view returns (uint256[] memory, uint256) {
        (IMarketplace.Service[] memory page, uint256 total) = market.servicesByTag(tag, 0, 100);
        return (ids(page), total);
    }

    function assertIds(uint256[] memory got, uint256[] memory want, string memory what) internal pure {
        assertEq(got.length, want.length, string.concat(what, " length"));
        for (uint256 i = 0; i < got.length; ++i) {
            assertEq(got[i], want[i], what);
        }
    }

    function list(uint256 a) internal pure returns (uint256[] memory l) {
        l = new uint256[](1);
        l[0] = a;
    }

    function list(uint256 a, uint256 b) internal pure returns (uint256[] memory l) {
        l = new uint256[](2);
        l[0] = a;
        l[1] = b;
    }

    function none() internal pure returns (uint256[] memory) {
        return new uint256[](0);
    }

    // ------------------------------------------------------------ register

    function testConstants() public view {
        assertEq(market.MAX_TAGS(), 8, "max tags");
        assertEq(market.MAX_TAG_BYTES(), 32, "max tag bytes");
        assertEq(market.MAX_NAME_BYTES(), 64, "max name");
        assertEq(market.MAX_ENDPOINT_BYTES(), 2048, "max endpoint");
        assertEq(market.MAX_PAGE(), 100, "max page");
        assertEq(market.serviceCount(), 0, "empty");
        assertEq(market.activeCount(), 0, "none active");
    }

    function testRegisterStoresAndEmits() public {
        IMarketplace.ServiceInput memory s = good();
        vm.expectEmit(address(market));
        emit IMarketplace.ServiceRegistered(1, alice, payTo, s.name, s.endpoint, s.tags, s.price, s.metadataURI);
        uint256 id = registerAs(alice, s);
        assertEq(id, 1, "first id is 1");
        IMarketplace.Service memory svc = market.service(1);
        assertEq(svc.id, 1, "id");
        assertEq(svc.owner, alice, "owner");
        assertEq(svc.name, "weather", "name");
        assertEq(svc.endpoint, "https://api.example/weather", "endpoint");
        assertEq(svc.tags.length, 2, "tags");
        assertEq(svc.tags[0], "weather", "tag 0");
        assertEq(svc.tags[1], "data", "tag 1");
        assertEq(svc.price, 1_000, "price");
        assertEq(svc.payTo, payTo, "payTo");
        assertEq(svc.metadataURI, "ipfs://meta", "metadata");
        assertTrue(svc.active, "starts active");
        assertEq(uint256(svc.createdAt), T0, "createdAt");
        assertEq(uint256(svc.updatedAt), T0, "updatedAt");
        assertEq(market.serviceCount(), 1, "count");
        assertEq(market.activeCount(), 1, "active");
        assertIds(market.servicesOf(alice), list(1), "servicesOf");
        assertEq(registerAs(bob, good()), 2, "second id is 2");
        assertIds(market.servicesOf(bob), list(2), "servicesOf bob");
    }

    function testRegisterAcceptsBoundaries() public {
        IMarketplace.ServiceInput memory s = good();
        s.endpoint = "http://x";
        s.name = repeat("n", 64);
        s.metadataURI = "";
        string[] memory t = new string[](8);
        for (uint256 i = 0; i < 8; ++i) {
            t[i] = string.concat(repeat("t", 31), string(abi.encodePacked(bytes1(uint8(0x41 + i)))));
        }
        s.tags = t;
        registerAs(alice, s);
        s.endpoint = string.concat("https://", repeat("e", 2040)); // 2048 bytes exactly
        s.tags = tags2("Upper", "upper"); // case-sensitive: not duplicates
        registerAs(alice, s);
        assertEq(market.serviceCount(), 2, "both accepted");
        (uint256[] memory got,) = tagPage("Upper");
        assertIds(got, list(2), "tags are matched byte for byte");
    }

    function expectRefused(IMarketplace.ServiceInput memory s, bytes memory err) internal {
        vm.expectRevert(err);
        vm.prank(alice);
        market.register(s);
        // the same check guards update
        vm.expectRevert(err);
        vm.prank(alice);
        market.update(1, s);
    }

    function testRegisterAndUpdateRefusals() public {
        registerAs(alice, good());
        IMarketplace.ServiceInput memory s;

        s = good();
        s.name = "";
        expectRefused(s, abi.encodeWithSelector(IMarketplace.EmptyName.selector));
        s.name = repeat("n", 65);
        expectRefused(s, abi.encodeWithSelector(IMarketplace.NameTooLong.selector, 65, 64));

        s = good();
        s.endpoint = "";
        expectRefused(s, abi.encodeWithSelector(IMarketplace.EmptyEndpoint.selector));
        s.endpoint = "ftp://files.example";
        expectRefused(s, abi.encodeWithSelector(IMarketplace.EndpointNotHttp.selector));
        s.endpoint = "https://";
        expectRefused(s, abi.encodeWithSelector(IMarketplace.EndpointNotHttp.selector));
        s.endpoint = "http://";
        expectRefused(s, abi.encodeWithSelector(IMarketplace.EndpointNotHttp.selector));
        s.endpoint = "HTTPS://api.example";
        expectRefused(s, abi.encodeWithSelector(IMarketplace.EndpointNotHttp.selector));
        s.endpoint = string.concat("https://", repeat("e", 2041));
        expectRefused(s, abi.encodeWithSelector(IMarketplace.EndpointTooLong.selector, 2049, 2048));

        s = good();
        s.tags = new string[](0);
        expectRefused(s, abi.encodeWithSelector(IMarketplace.NoTags.selector));
        s.tags = new string[](9);
        for (uint256 i = 0; i < 9; ++i) {
            s.tags[i] = string(abi.encodePacked(bytes1(uint8(0x61 + i))));
        }
        expectRefused(s, abi.encodeWithSelector(IMarketplace.TooManyTags.selector, 9, 8));
        s.tags = tags2("ok", "");
        expectRefused(s, abi.encodeWithSelector(IMarketplace.InvalidTagLength.selector, 1));
        s.tags = tags1(repeat("t", 33));
        expectRefused(s, abi.encodeWithSelector(IMarketplace.InvalidTagLength.selector, 0));
        s.tags = tags2("same", "same");
        expectRefused(s, abi.encodeWithSelector(IMarketplace.DuplicateTag.selector, 1));

        s = good();
        s.price = 0;
        expectRefused(s, abi.encodeWithSelector(IMarketplace.ZeroPrice.selector));
        s = good();
        s.payTo = address(0);
        expectRefused(s, abi.encodeWithSelector(IMarketplace.ZeroPayTo.selector));

        assertEq(market.serviceCount(), 1, "nothing more registered");
        assertEq(market.service(1).name, "weather", "nothing updated");
    }

    // ------------------------------------------------------------ update

    function testUpdateReplacesFieldsAndEmits() public {
        registerAs(alice, good());
        vm.warp(T0 + 100);
        IMarketplace.ServiceInput memory s = IMarketplace.ServiceInput(
            "weather v2", "http://v2.example", tags1("forecast"), 2_500, address(0xFEE), "https://meta.example"
        );
        vm.expectEmit(address(market));
        emit IMarketplace.ServiceUpdated(1, alice, address(0xFEE), s.name, s.endpoint, s.tags, s.price, s.metadataURI);
        vm.prank(alice);
        market.update(1, s);
        IMarketplace.Service memory svc = market.service(1);
        assertEq(svc.name, "weather v2", "name");
        assertEq(svc.endpoint, "http://v2.example", "endpoint");
        assertEq(svc.tags.length, 1, "one tag");
        assertEq(svc.tags[0], "forecast", "tag");
        assertEq(svc.price, 2_500, "price");
        assertEq(svc.payTo, address(0xFEE), "payTo");
        assertEq(svc.metadataURI, "https://meta.example", "metadata");
        assertEq(svc.owner, alice, "owner unchanged");
        assertTrue(svc.active, "still active");
        assertEq(uint256(svc.createdAt), T0, "createdAt kept");
        assertEq(uint256(svc.updatedAt), T0 + 100, "updatedAt moved");
    }

    function testUpdateMovesTagsBetweenLists() public {
        registerAs(alice, input(tags2("a", "b"))); // 1
        registerAs(alice, input(tags1("b"))); // 2
        registerAs(alice, input(tags2("c", "a"))); // 3
        uint256[] memory got;
        uint256 total;
        (got, total) = tagPage("a");
        assertIds(got, list(1, 3), "a before");
        assertEq(total, 2, "a total");

        // 1 drops "a", keeps "b", gains "c"
        vm.prank(alice);
        market.update(1, input(tags2("b", "c")));
        (got, total) = tagPage("a");
        assertIds(got, list(3), "a lost 1");
        assertEq(total, 1, "a total after");
        (got,) = tagPage("b");
        assertIds(got, list(1, 2), "b kept 1");
        (got,) = tagPage("c");
        assertIds(got, list(1, 3), "c gained 1, in id order");

        // 3 drops everything for "z"; 1 gets "a" back (re-added: listed once, in id order)
        vm.startPrank(alice);
        market.update(3, input(tags1("z")));
        market.update(1, input(tags2("a", "a2")));
        market.update(1, input(tags1("a")));
        vm.stopPrank();
        (got,) = tagPage("a");
        assertIds(got, list(1), "a: only 1");
        (got,) = tagPage("c");
        assertIds(got, none(), "c empty");
        (got,) = tagPage("a2");
        assertIds(got, none(), "a2 dropped again");
        (got,) = tagPage("z");
        assertIds(got, list(3), "z");
        // a later id gaining a tag an earlier id already has, and an earlier id re-gaining it: order holds
        vm.startPrank(alice);
        market.update(2, input(tags2("b", "z")));
        vm.stopPrank();
        (got,) = tagPage("z");
        assertIds(got, list(2, 3), "z sorted");
        (got,) = tagPage("missing");
        assertIds(got, none(), "unknown tag");
    }

    function testUpdateRefusesStrangersAndUnknownIds() public {
        registerAs(alice, good());
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotServiceOwner.selector, 1, bob));
        vm.prank(bob);
        market.update(1, good());
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.UnknownService.selector, 0));
        vm.prank(alice);
        market.update(0, good());
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.UnknownService.selector, 2));
        vm.prank(alice);
        market.update(2, good());
    }

    // ------------------------------------------------------------ setActive / deactivate

    function testSetActiveAndDeactivate() public {
        registerAs(alice, good()); // 1
        registerAs(alice, good()); // 2
        vm.warp(T0 + 5);
        vm.expectEmit(address(market));
        emit IMarketplace.ServiceActiveSet(1, false);
        vm.prank(alice);
        market.setActive(1, false);
        assertFalse(market.service(1).active, "off");
        assertEq(uint256(market.service(1).updatedAt), T0 + 5, "updatedAt");
        assertEq(market.activeCount(), 1, "one active");
        (uint256[] memory got, uint256 total) = tagPage("weather");
        assertIds(got, list(2), "hidden from tag view");
        assertEq(total, 1, "tag total");
        (IMarketplace.Service[] memory page, uint256 all) = market.activeServices(0, 10);
        assertIds(ids(page), list(2), "hidden from active view");
        assertEq(all, 1, "active total");
        assertEq(market.service(1).name, "weather", "still readable");

        // same value again: emits, count unchanged
        vm.expectEmit(address(market));
        emit IMarketplace.ServiceActiveSet(1, false);
        vm.prank(alice);
        market.setActive(1, false);
        assertEq(market.activeCount(), 1, "idempotent off");

        vm.prank(alice);
        market.setActive(1, true);
        assertEq(market.activeCount(), 2, "back on");
        vm.prank(alice);
        market.setActive(1, true);
        assertEq(market.activeCount(), 2, "idempotent on");
        (got,) = tagPage("weather");
        assertIds(got, list(1, 2), "back in the tag view");

        vm.expectEmit(address(market));
        emit IMarketplace.ServiceActiveSet(2, false);
        vm.prank(alice);
        market.deactivate(2);
        assertFalse(market.service(2).active, "deactivated");
        assertEq(market.activeCount(), 1, "one left");
    }

    function testSetActiveRefusals() public {
        registerAs(alice, good());
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotServiceOwner.selector, 1, bob));
        vm.prank(bob);
        market.setActive(1, false);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotServiceOwner.selector, 1, bob));
        vm.prank(bob);
        market.deactivate(1);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.UnknownService.selector, 7));
        vm.prank(alice);
        market.setActive(7, true);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.UnknownService.selector, 0));
        vm.prank(alice);
        market.deactivate(0);
        assertTrue(market.service(1).active, "untouched");
    }

    // ------------------------------------------------------------ ownership

    function testTransferServiceOwnership() public {
        registerAs(alice, good()); // 1
        registerAs(alice, good()); // 2
        registerAs(alice, good()); // 3
        vm.warp(T0 + 9);
        vm.expectEmit(address(market));
        emit IMarketplace.ServiceOwnershipTransferred(1, alice, bob);
        vm.prank(alice);
        market.transferServiceOwnership(1, bob);
        assertEq(market.service(1).owner, bob, "new owner");
        assertEq(uint256(market.service(1).updatedAt), T0 + 9, "updatedAt");
        assertIds(market.servicesOf(alice), list(3, 2), "last id moved into the freed place");
        assertIds(market.servicesOf(bob), list(1), "bob owns 1");

        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotServiceOwner.selector, 1, alice));
        vm.prank(alice);
        market.update(1, good());
        vm.prank(bob);
        market.update(1, input(tags1("bob")));
        assertEq(market.service(1).tags[0], "bob", "new owner updates");
        vm.prank(bob);
        market.deactivate(1);

        // the last entry of the list goes out without a swap; to oneself keeps one entry
        vm.prank(alice);
        market.transferServiceOwnership(2, bob);
        assertIds(market.servicesOf(alice), list(3), "alice keeps 3");
        assertIds(market.servicesOf(bob), list(1, 2), "bob owns 1, 2");
        vm.prank(alice);
        market.transferServiceOwnership(3, alice);
        assertIds(market.servicesOf(alice), list(3), "to oneself");
        vm.prank(alice);
        market.transferServiceOwnership(3, bob);
        assertIds(market.servicesOf(alice), none(), "alice owns none");
        assertEq(market.servicesOf(bob).length, 3, "bob owns three");
    }

    function testTransferRefusals() public {
        registerAs(alice, good());
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.ZeroOwner.selector));
        vm.prank(alice);
        market.transferServiceOwnership(1, address(0));
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotServiceOwner.selector, 1, bob));
        vm.prank(bob);
        market.transferServiceOwnership(1, bob);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.UnknownService.selector, 2));
        vm.prank(alice);
        market.transferServiceOwnership(2, bob);
        assertEq(market.service(1).owner, alice, "untouched");
    }

    // ------------------------------------------------------------ views

    function testServiceRefusesUnknownIds() public {
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.UnknownService.selector, 0));
        market.service(0);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.UnknownService.selector, 1));
        market.service(1);
        registerAs(alice, good());
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.UnknownService.selector, 2));
        market.service(2);
    }

    function testPageLimitIsCappedAt100() public {
        IMarketplace.ServiceInput memory s = input(tags1("bulk"));
        for (uint256 i = 0; i < 101; ++i) {
            registerAs(alice, s);
        }
        (IMarketplace.Service[] memory page, uint256 total) = market.servicesByTag("bulk", 0, 1_000);
        assertEq(page.length, 100, "tag page capped");
        assertEq(total, 101, "tag total");
        assertEq(page[99].id, 100, "tag page ends at 100");
        (page, total) = market.activeServices(0, type(uint256).max);
        assertEq(page.length, 100, "active page capped");
        assertEq(total, 101, "active total");
        (page,) = market.servicesByTag("bulk", 100, 100);
        assertIds(ids(page), list(101), "second tag page");
        (page,) = market.activeServices(100, 100);
        assertIds(ids(page), list(101), "second active page");
        (page, total) = market.servicesByTag("bulk", 500, 10);
        assertEq(page.length, 0, "offset past the end");
        assertEq(total, 101, "total still counted");
        (page,) = market.activeServices(0, 0);
        assertEq(page.length, 0, "limit 0");
    }

    /// Random services over three tags, some deactivated, some updated to other tags; every page of every view
    /// equals the matching slice of a reference list computed here.
    function testFuzzPaging(uint256 seed, uint8 countRaw, uint8 offsetRaw, uint8 limitRaw) public {
        uint256 n = bound(countRaw, 0, 14);
        uint256 offset = bound(offsetRaw, 0, 16);
        uint256 limit = bound(limitRaw, 0, 16);
        string[3] memory names = ["red", "green", "blue"];
        // tagMask[id]: bit k = carries names[k]; activeRef[id]
        uint256[] memory tagMask = new uint256[](n + 1);
        bool[] memory activeRef = new bool[](n + 1);
        for (uint256 id = 1; id <= n; ++id) {
            uint256 mask = (uint256(keccak256(abi.encode(seed, id))) % 7) + 1; // 1..7: at least one tag
            tagMask[id] = mask;
            registerAs(id % 2 == 0 ? alice : bob, input(maskTags(names, mask)));
            activeRef[id] = true;
        }
        for (uint256 id = 1; id <= n; ++id) {
            uint256 r = uint256(keccak256(abi.encode(seed, id, "change")));
            address owner = id % 2 == 0 ? alice : bob;
            if (r % 3 == 0) {
                vm.prank(owner);
                market.deactivate(id);
                activeRef[id] = false;
            }
            if ((r >> 8) % 3 == 0) {
                uint256 mask = ((r >> 16) % 7) + 1;
                vm.prank(owner);
                market.update(id, input(maskTags(names, mask)));
                tagMask[id] = mask;
            }
        }
        for (uint256 k = 0; k < 3; ++k) {
            uint256[] memory want = new uint256[](n);
            uint256 matching;
            for (uint256 id = 1; id <= n; ++id) {
                if (activeRef[id] && (tagMask[id] >> k) & 1 == 1) want[matching++] = id;
            }
            (IMarketplace.Service[] memory page, uint256 total) = market.servicesByTag(names[k], offset, limit);
            assertEq(total, matching, "tag total");
            checkSlice(ids(page), want, matching, offset, limit, "tag page");
            for (uint256 i = 0; i < page.length; ++i) {
                assertTrue(page[i].active, "page holds active services only");
            }
        }
        uint256[] memory wantActive = new uint256[](n);
        uint256 active;
        for (uint256 id = 1; id <= n; ++id) {
            if (activeRef[id]) wantActive[active++] = id;
        }
        (IMarketplace.Service[] memory allPage, uint256 allTotal) = market.activeServices(offset, limit);
        assertEq(allTotal, active, "active total");
        assertEq(market.activeCount(), active, "activeCount");
        checkSlice(ids(allPage), wantActive, active, offset, limit, "active page");
    }

    function maskTags(string[3] memory names, uint256 mask) internal pure returns (string[] memory t) {
        uint256 k;
        t = new string[]((mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1));
        for (uint256 i = 0; i < 3; ++i) {
            if ((mask >> i) & 1 == 1) t[k++] = names[i];
        }
    }

    function checkSlice(
        uint256[] memory got,
        uint256[] memory want,
        uint256 wantLength,
        uint256 offset,
        uint256 limit,
        string memory what
    ) internal pure {
        uint256 expected = offset >= wantLength ? 0 : wantLength - offset;
        if (expected > limit) expected = limit;
        assertEq(got.length, expected, string.concat(what, " length"));
        for (uint256 i = 0; i < got.length; ++i) {
            assertEq(got[i], want[offset + i], what);
        }
    }
}
