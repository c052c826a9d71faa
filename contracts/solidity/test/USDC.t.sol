// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {UsdcFixture} from "./UsdcFixture.sol";
import {USDC} from "../src/USDC.sol";

/// Initialisation, the EIP-712 domain, ERC-20, minting, pause, blacklist and ownership.
contract USDCTest is UsdcFixture {
    // ------------------------------------------------------------ initialisation and metadata
    function testMetadataAndRoles() public view {
        assertEq(token.name(), "USDC", "name");
        assertEq(token.symbol(), "USDC", "symbol");
        assertEq(token.currency(), "USD", "currency");
        assertEq(token.version(), "2", "version");
        assertEq(token.decimals(), 6, "decimals");
        assertEq(token.owner(), admin, "owner");
        assertEq(token.masterMinter(), admin, "masterMinter");
        assertEq(token.pauser(), admin, "pauser");
        assertEq(token.blacklister(), admin, "blacklister");
        assertTrue(!token.paused(), "not paused");
        assertTrue(token.isMinter(admin), "admin mints");
        assertEq(token.totalSupply(), FUNDS, "supply");
        assertEq(token.balanceOf(buyer), FUNDS, "buyer funded");
        assertEq(block.timestamp, START, "setUp's warp holds in tests");
    }

    function testTypehashesAreFiatTokens() public view {
        assertEq(
            token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(),
            0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267,
            "TransferWithAuthorization"
        );
        assertEq(
            token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(),
            0xd099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8,
            "ReceiveWithAuthorization"
        );
        assertEq(
            token.CANCEL_AUTHORIZATION_TYPEHASH(),
            0x158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429,
            "CancelAuthorization"
        );
        assertEq(token.PERMIT_TYPEHASH(), 0x6e71edae12b1b97f4d1f60370fef10105fa2faae0126114a169c64845d6126c9, "Permit");
    }

    function testInitializeOnlyOnceAndNoZeroRoles() public {
        vm.expectRevert(bytes("FiatToken: contract is already initialized"));
        token.initialize("USDC", "USDC", "USD", 6, admin, admin, admin, admin);
        USDC fresh = new USDC();
        vm.expectRevert(bytes("FiatToken: new masterMinter is the zero address"));
        fresh.initialize("USDC", "USDC", "USD", 6, address(0), admin, admin, admin);
        vm.expectRevert(bytes("FiatToken: new pauser is the zero address"));
        fresh.initialize("USDC", "USDC", "USD", 6, admin, address(0), admin, admin);
        vm.expectRevert(bytes("FiatToken: new blacklister is the zero address"));
        fresh.initialize("USDC", "USDC", "USD", 6, admin, admin, address(0), admin);
        vm.expectRevert(bytes("FiatToken: new owner is the zero address"));
        fresh.initialize("USDC", "USDC", "USD", 6, admin, admin, admin, address(0));
        // anyone may initialise an uninitialised token, once
        vm.prank(relayer);
        fresh.initialize("EURC", "EURC", "EUR", 6, relayer, relayer, relayer, relayer);
        assertEq(fresh.name(), "EURC", "initialised by the first caller's arguments");
        vm.expectRevert(bytes("FiatToken: contract is already initialized"));
        fresh.initialize("USDC", "USDC", "USD", 6, admin, admin, admin, admin);
    }

    function testTokenBlacklistsItsOwnAddress() public {
        assertTrue(token.isBlacklisted(address(token)), "self-blacklisted, as v2.2's initialiser leaves it");
        vm.prank(buyer);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.transfer(address(token), 1);
    }

    // ------------------------------------------------------------ EIP-712 domain
    function testArcTestnetDomainSeparatorAtArcAddress() public {
        address arc = 0x3600000000000000000000000000000000000000;
        vm.etch(arc, address(token).code);
        vm.chainId(5042002);
        USDC(arc).initialize("USDC", "USDC", "USD", 6, admin, admin, admin, admin);
        assertEq(
            USDC(arc).DOMAIN_SEPARATOR(),
            0x361191522483d32a83e70ae7183b4b9629442c13a78bc9921d6f707911c8c6b0,
            "Arc testnet USDC domain separator"
        );
    }

    function testDomainSeparatorFollowsChainAndAddress() public {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("USDC"),
                keccak256("2"),
                block.chainid,
                address(token)
            )
        );
        assertEq(token.DOMAIN_SEPARATOR(), expected, "EIP-712 domain of name, \"2\", chain id, address");
        vm.chainId(5042);
        assertTrue(token.DOMAIN_SEPARATOR() != expected, "computed at call time from block.chainid");
        vm.etch(address(0xC0FFEE), address(token).code);
        USDC(address(0xC0FFEE)).initialize("USDC", "USDC", "USD", 6, admin, admin, admin, admin);
        assertTrue(USDC(address(0xC0FFEE)).DOMAIN_SEPARATOR() != token.DOMAIN_SEPARATOR(), "bound to address(this)");
    }

    // ------------------------------------------------------------ ERC-20
    function testTransfer() public {
        vm.expectEmit(true, true, false, true, address(token));
        emit Transfer(buyer, seller, 100);
        vm.prank(buyer);
        assertTrue(token.transfer(seller, 100), "returns true");
        assertEq(token.balanceOf(seller), 100, "credited");
        assertEq(token.balanceOf(buyer), FUNDS - 100, "debited");
        vm.prank(buyer);
        token.transfer(buyer, 7);
        assertEq(token.balanceOf(buyer), FUNDS - 100, "self transfer keeps the balance");
        vm.prank(buyer);
        token.transfer(seller, 0);
        assertEq(token.balanceOf(seller), 100, "zero transfer allowed");
    }

    function testApproveAndTransferFrom() public {
        vm.expectEmit(true, true, false, true, address(token));
        emit Approval(buyer, relayer, 50);
        vm.prank(buyer);
        assertTrue(token.approve(relayer, 50), "approve returns true");
        assertEq(token.allowance(buyer, relayer), 50, "approved");
        vm.expectEmit(true, true, false, true, address(token));
        emit Transfer(buyer, seller, 30);
        vm.prank(relayer);
        assertTrue(token.transferFrom(buyer, seller, 30), "transferFrom returns true");
        assertEq(token.allowance(buyer, relayer), 20, "allowance spent");
        assertEq(token.balanceOf(seller), 30, "credited");
        // FiatToken has no "infinite" allowance: max is spent like any other
        vm.prank(buyer);
        token.approve(relayer, type(uint256).max);
        vm.prank(relayer);
        token.transferFrom(buyer, seller, 1);
        assertEq(token.allowance(buyer, relayer), type(uint256).max - 1, "max allowance decreases");
    }

    function testIncreaseAndDecreaseAllowance() public {
        vm.startPrank(buyer);
        vm.expectEmit(true, true, false, true, address(token));
        emit Approval(buyer, relayer, 5);
        assertTrue(token.increaseAllowance(relayer, 5), "increase returns true");
        token.increaseAllowance(relayer, 10);
        assertEq(token.allowance(buyer, relayer), 15, "increased");
        vm.expectEmit(true, true, false, true, address(token));
        emit Approval(buyer, relayer, 11);
        assertTrue(token.decreaseAllowance(relayer, 4), "decrease returns true");
        assertEq(token.allowance(buyer, relayer), 11, "decreased");
        vm.expectRevert(bytes("ERC20: decreased allowance below zero"));
        token.decreaseAllowance(relayer, 12);
        vm.expectRevert(bytes("SafeMath: addition overflow"));
        token.increaseAllowance(relayer, type(uint256).max);
        vm.expectRevert(bytes("ERC20: approve to the zero address"));
        token.increaseAllowance(address(0), 1);
        vm.stopPrank();
    }

    function testErc20Reverts() public {
        vm.prank(seller);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        token.transfer(buyer, 1);
        vm.prank(buyer);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        token.transfer(seller, FUNDS + 1);
        vm.prank(buyer);
        vm.expectRevert(bytes("ERC20: transfer to the zero address"));
        token.transfer(address(0), 1);
        vm.prank(address(0));
        vm.expectRevert(bytes("ERC20: transfer from the zero address"));
        token.transfer(seller, 0);
        vm.prank(relayer);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds allowance"));
        token.transferFrom(buyer, seller, 1);
        vm.prank(buyer);
        token.approve(relayer, FUNDS + 1);
        vm.prank(relayer);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        token.transferFrom(buyer, seller, FUNDS + 1);
        vm.prank(relayer);
        vm.expectRevert(bytes("ERC20: transfer to the zero address"));
        token.transferFrom(buyer, address(0), 1);
        vm.prank(buyer);
        vm.expectRevert(bytes("ERC20: approve to the zero address"));
        token.approve(address(0), 1);
        vm.prank(address(0));
        vm.expectRevert(bytes("ERC20: approve from the zero address"));
        token.approve(relayer, 1);
        vm.prank(buyer);
        vm.expectRevert(bytes("ERC20: decreased allowance below zero"));
        token.decreaseAllowance(relayer, FUNDS + 2);
    }

    // ------------------------------------------------------------ minting
    function testConfigureMintAndRemoveMinter() public {
        vm.expectEmit(true, false, false, true, address(token));
        emit MinterConfigured(relayer, 10);
        vm.prank(admin);
        assertTrue(token.configureMinter(relayer, 10), "configureMinter returns true");
        assertTrue(token.isMinter(relayer), "minter configured");
        assertEq(token.minterAllowance(relayer), 10, "minter allowance");

        vm.expectEmit(true, true, false, true, address(token));
        emit Mint(relayer, seller, 4);
        vm.expectEmit(true, true, false, true, address(token));
        emit Transfer(address(0), seller, 4);
        vm.prank(relayer);
        assertTrue(token.mint(seller, 4), "mint returns true");
        assertEq(token.minterAllowance(relayer), 6, "allowance decreases");
        assertEq(token.balanceOf(seller), 4, "minted");
        assertEq(token.totalSupply(), FUNDS + 4, "supply grows");

        vm.startPrank(relayer);
        vm.expectRevert(bytes("FiatToken: mint amount exceeds minterAllowance"));
        token.mint(seller, 7);
        vm.expectRevert(bytes("FiatToken: mint to the zero address"));
        token.mint(address(0), 1);
        vm.expectRevert(bytes("FiatToken: mint amount not greater than 0"));
        token.mint(seller, 0);
        vm.expectRevert(bytes("FiatToken: caller is not the masterMinter"));
        token.configureMinter(relayer, 100);
        vm.expectRevert(bytes("FiatToken: caller is not the masterMinter"));
        token.removeMinter(relayer);
        vm.stopPrank();

        vm.expectEmit(true, false, false, true, address(token));
        emit MinterRemoved(relayer);
        vm.prank(admin);
        assertTrue(token.removeMinter(relayer), "removeMinter returns true");
        assertTrue(!token.isMinter(relayer), "minter removed");
        assertEq(token.minterAllowance(relayer), 0, "allowance cleared");
        vm.prank(relayer);
        vm.expectRevert(bytes("FiatToken: caller is not a minter"));
        token.mint(seller, 1);
    }

    function testBurn() public {
        vm.prank(admin);
        token.mint(admin, 10);
        vm.expectEmit(true, false, false, true, address(token));
        emit Burn(admin, 4);
        vm.expectEmit(true, true, false, true, address(token));
        emit Transfer(admin, address(0), 4);
        vm.prank(admin);
        token.burn(4);
        assertEq(token.balanceOf(admin), 6, "burned");
        assertEq(token.totalSupply(), FUNDS + 6, "supply shrinks");
        vm.startPrank(admin);
        vm.expectRevert(bytes("FiatToken: burn amount exceeds balance"));
        token.burn(7);
        vm.expectRevert(bytes("FiatToken: burn amount not greater than 0"));
        token.burn(0);
        vm.stopPrank();
        vm.prank(buyer);
        vm.expectRevert(bytes("FiatToken: caller is not a minter"));
        token.burn(1);
    }

    function testBalanceAndSupplyLimits() public {
        vm.startPrank(admin);
        vm.expectRevert(bytes("FiatTokenV2_2: Balance exceeds (2^255 - 1)"));
        token.mint(seller, 1 << 255);
        token.mint(seller, (1 << 255) - 1);
        assertEq(token.balanceOf(seller), (1 << 255) - 1, "largest balance");
        assertTrue(!token.isBlacklisted(seller), "a full balance does not touch the blacklist bit");
        vm.expectRevert(bytes("FiatTokenV2_2: Balance exceeds (2^255 - 1)"));
        token.mint(seller, 1);
        token.mint(relayer, (1 << 255) - 1 - FUNDS);
        assertEq(token.totalSupply(), type(uint256).max - 1, "supply at its limit");
        token.configureMinter(admin, type(uint256).max);
        vm.expectRevert(bytes("SafeMath: addition overflow"));
        token.mint(admin, 2);
        token.mint(admin, 1);
        vm.stopPrank();
        vm.prank(buyer);
        vm.expectRevert(bytes("FiatTokenV2_2: Balance exceeds (2^255 - 1)"));
        token.transfer(seller, 1);
    }

    function testUpdateMasterMinter() public {
        vm.prank(relayer);
        vm.expectRevert(bytes("Ownable: caller is not the owner"));
        token.updateMasterMinter(relayer);
        vm.prank(admin);
        vm.expectRevert(bytes("FiatToken: new masterMinter is the zero address"));
        token.updateMasterMinter(address(0));
        vm.expectEmit(true, false, false, true, address(token));
        emit MasterMinterChanged(relayer);
        vm.prank(admin);
        token.updateMasterMinter(relayer);
        assertEq(token.masterMinter(), relayer, "masterMinter updated");
        vm.prank(relayer);
        token.configureMinter(seller, 1);
        vm.prank(admin);
        vm.expectRevert(bytes("FiatToken: caller is not the masterMinter"));
        token.configureMinter(seller, 2);
    }

    // ------------------------------------------------------------ pause
    function testPauseAndUnpause() public {
        vm.prank(relayer);
        vm.expectRevert(bytes("Pausable: caller is not the pauser"));
        token.pause();
        vm.expectEmit(false, false, false, true, address(token));
        emit Pause();
        vm.prank(admin);
        token.pause();
        assertTrue(token.paused(), "paused");
        vm.prank(relayer);
        vm.expectRevert(bytes("Pausable: caller is not the pauser"));
        token.unpause();
        vm.expectEmit(false, false, false, true, address(token));
        emit Unpause();
        vm.prank(admin);
        token.unpause();
        assertTrue(!token.paused(), "unpaused");
        vm.prank(buyer);
        token.transfer(seller, 1);
    }

    function testPauseBlocksErc20AndMinting() public {
        vm.prank(buyer);
        token.approve(relayer, 10);
        vm.prank(admin);
        token.pause();
        vm.startPrank(buyer);
        vm.expectRevert(bytes("Pausable: paused"));
        token.transfer(seller, 1);
        vm.expectRevert(bytes("Pausable: paused"));
        token.approve(relayer, 1);
        vm.expectRevert(bytes("Pausable: paused"));
        token.increaseAllowance(relayer, 1);
        vm.expectRevert(bytes("Pausable: paused"));
        token.decreaseAllowance(relayer, 1);
        vm.stopPrank();
        vm.prank(relayer);
        vm.expectRevert(bytes("Pausable: paused"));
        token.transferFrom(buyer, seller, 1);
        vm.startPrank(admin);
        vm.expectRevert(bytes("Pausable: paused"));
        token.mint(seller, 1);
        vm.expectRevert(bytes("Pausable: paused"));
        token.burn(1);
        vm.expectRevert(bytes("Pausable: paused"));
        token.configureMinter(relayer, 1);
        // removing a minter, blacklisting and role changes still work while paused
        token.removeMinter(relayer);
        token.blacklist(seller);
        token.unBlacklist(seller);
        token.updatePauser(admin);
        vm.stopPrank();
    }

    function testUpdatePauser() public {
        vm.prank(relayer);
        vm.expectRevert(bytes("Ownable: caller is not the owner"));
        token.updatePauser(relayer);
        vm.prank(admin);
        vm.expectRevert(bytes("Pausable: new pauser is the zero address"));
        token.updatePauser(address(0));
        vm.expectEmit(true, false, false, true, address(token));
        emit PauserChanged(relayer);
        vm.prank(admin);
        token.updatePauser(relayer);
        assertEq(token.pauser(), relayer, "pauser updated");
        vm.prank(relayer);
        token.pause();
        vm.prank(admin);
        vm.expectRevert(bytes("Pausable: caller is not the pauser"));
        token.unpause();
    }

    // ------------------------------------------------------------ blacklist
    function testBlacklistAndUnBlacklist() public {
        vm.prank(relayer);
        vm.expectRevert(bytes("Blacklistable: caller is not the blacklister"));
        token.blacklist(buyer);
        vm.expectEmit(true, false, false, true, address(token));
        emit Blacklisted(buyer);
        vm.prank(admin);
        token.blacklist(buyer);
        assertTrue(token.isBlacklisted(buyer), "blacklisted");
        assertEq(token.balanceOf(buyer), FUNDS, "balance kept while blacklisted");
        vm.prank(relayer);
        vm.expectRevert(bytes("Blacklistable: caller is not the blacklister"));
        token.unBlacklist(buyer);
        vm.expectEmit(true, false, false, true, address(token));
        emit UnBlacklisted(buyer);
        vm.prank(admin);
        token.unBlacklist(buyer);
        assertTrue(!token.isBlacklisted(buyer), "unblacklisted");
        assertEq(token.balanceOf(buyer), FUNDS, "balance intact after unblacklisting");
        vm.prank(admin);
        token.blacklist(address(0xDEAD));
        assertTrue(token.isBlacklisted(address(0xDEAD)), "an empty account can be blacklisted");
    }

    function testBlacklistRefusesSendersRecipientsAndSpenders() public {
        vm.prank(buyer);
        token.approve(relayer, 100);
        vm.prank(admin);
        token.blacklist(seller);
        vm.startPrank(buyer);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.transfer(seller, 1);
        vm.stopPrank();
        vm.prank(relayer);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.transferFrom(buyer, seller, 1);
        vm.prank(admin);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.mint(seller, 1);

        vm.prank(admin);
        token.blacklist(relayer);
        vm.prank(relayer);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.transferFrom(buyer, address(0x0C), 1); // blacklisted spender

        vm.prank(admin);
        token.blacklist(buyer);
        vm.prank(buyer);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.transfer(address(0x0C), 1); // blacklisted sender
        vm.prank(admin);
        token.unBlacklist(relayer);
        vm.prank(relayer);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.transferFrom(buyer, address(0x0C), 1); // blacklisted owner of the funds

        // v2.2: approvals are not blacklist-checked (the balance cannot move anyway)
        vm.prank(buyer);
        token.approve(seller, 1);
        vm.prank(address(0x0C));
        token.approve(seller, 1);
        assertEq(token.allowance(address(0x0C), seller), 1, "approving a blacklisted spender is allowed");
    }

    function testBlacklistedMinterCannotMintOrBurn() public {
        vm.prank(admin);
        token.mint(admin, 5);
        vm.prank(admin);
        token.blacklist(admin);
        vm.startPrank(admin);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.mint(seller, 1);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        token.burn(1);
        vm.stopPrank();
    }

    function testUpdateBlacklister() public {
        vm.prank(relayer);
        vm.expectRevert(bytes("Ownable: caller is not the owner"));
        token.updateBlacklister(relayer);
        vm.prank(admin);
        vm.expectRevert(bytes("Blacklistable: new blacklister is the zero address"));
        token.updateBlacklister(address(0));
        vm.expectEmit(true, false, false, true, address(token));
        emit BlacklisterChanged(relayer);
        vm.prank(admin);
        token.updateBlacklister(relayer);
        assertEq(token.blacklister(), relayer, "blacklister updated");
        vm.prank(relayer);
        token.blacklist(seller);
        vm.prank(admin);
        vm.expectRevert(bytes("Blacklistable: caller is not the blacklister"));
        token.unBlacklist(seller);
    }

    // ------------------------------------------------------------ ownership
    function testTransferOwnership() public {
        vm.prank(relayer);
        vm.expectRevert(bytes("Ownable: caller is not the owner"));
        token.transferOwnership(relayer);
        vm.prank(admin);
        vm.expectRevert(bytes("Ownable: new owner is the zero address"));
        token.transferOwnership(address(0));
        vm.expectEmit(false, false, false, true, address(token));
        emit OwnershipTransferred(admin, relayer);
        vm.prank(admin);
        token.transferOwnership(relayer);
        assertEq(token.owner(), relayer, "owner");
        vm.prank(admin);
        vm.expectRevert(bytes("Ownable: caller is not the owner"));
        token.updatePauser(admin);
        vm.prank(relayer);
        token.updatePauser(relayer);
    }

    // ------------------------------------------------------------ fuzz
    function testFuzzTransferConservesSupply(uint256 amount, address to) public {
        vm.assume(to != address(0) && to != buyer && to != address(token));
        amount = bound(amount, 0, FUNDS);
        vm.prank(buyer);
        token.transfer(to, amount);
        assertEq(token.balanceOf(to), amount, "credited");
        assertEq(token.balanceOf(buyer), FUNDS - amount, "debited");
        assertEq(token.totalSupply(), FUNDS, "supply unchanged");
    }

    function testFuzzMintWithinMinterAllowance(uint256 allowed, uint256 amount) public {
        allowed = bound(allowed, 0, type(uint128).max);
        amount = bound(amount, 1, type(uint128).max);
        vm.prank(admin);
        token.configureMinter(relayer, allowed);
        vm.prank(relayer);
        if (amount > allowed) vm.expectRevert(bytes("FiatToken: mint amount exceeds minterAllowance"));
        token.mint(seller, amount);
        if (amount <= allowed) {
            assertEq(token.minterAllowance(relayer), allowed - amount, "allowance spent");
            assertEq(token.balanceOf(seller), amount, "minted");
        }
    }
}
