// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Base} from "./Base.sol";
import {IdentityRegistry} from "../src/IdentityRegistry.sol";
import {IIdentityRegistry} from "../src/interfaces/IIdentityRegistry.sol";
import {SmartWallet} from "../src/SmartWallet.sol";
import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

/// ERC-8004 Identity: the published selectors and topics, the register overloads, URI / metadata management and
/// who may do it, the agentWallet proof (EOA via vm.sign and ERC-1271) with its refusals, and the wallet cleared
/// on transfer.
contract IdentityRegistryTest is Base {
    IdentityRegistry internal reg;
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal operator = address(0x0BE2);
    address internal stranger = address(0xBAD);
    uint256 internal constant WALLET_KEY = 0x3A11E7;
    uint256 internal constant OTHER_KEY = 0x07E2;
    address internal wallet;
    uint256 internal constant T0 = 1_800_000_000;

    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);

    function setUp() public {
        reg = new IdentityRegistry();
        wallet = vm.addr(WALLET_KEY);
        vm.warp(T0);
    }

    // ------------------------------------------------------------ helpers

    function registerAs(address who, string memory uri) internal returns (uint256 id) {
        vm.prank(who);
        id = reg.register(uri);
    }

    function sig(uint256 key, bytes32 hash) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, hash);
        return abi.encodePacked(r, s, v);
    }

    function domainSeparator() internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("ERC8004IdentityRegistry"),
                keccak256("1"),
                block.chainid,
                address(reg)
            )
        );
    }

    /// The proof digest built here from the documented type, not read from the contract.
    function proofDigest(uint256 agentId, address newWallet, address owner, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        bytes32 typehash =
            keccak256("AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 nonce,uint256 deadline)");
        bytes32 structHash = keccak256(abi.encode(typehash, agentId, newWallet, owner, nonce, deadline));
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    function proof(uint256 key, uint256 agentId, address newWallet, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        return sig(key, proofDigest(agentId, newWallet, reg.ownerOf(agentId), reg.walletNonce(agentId), deadline));
    }

    // ------------------------------------------------------------ selectors and topics

    function testSelectorsAndTopics() public pure {
        assertEq(bytes32(bytes4(keccak256("register()"))), bytes32(bytes4(0x1aa3a008)), "register()");
        assertEq(bytes32(bytes4(keccak256("register(string)"))), bytes32(bytes4(0xf2c298be)), "register(string)");
        assertEq(
            bytes32(IdentityRegistry.setAgentWallet.selector), bytes32(bytes4(0x2d1ef5ae)), "setAgentWallet selector"
        );
        assertEq(
            bytes32(IdentityRegistry.getAgentWallet.selector), bytes32(bytes4(0x00339509)), "getAgentWallet selector"
        );
        assertEq(
            bytes32(IIdentityRegistry.setAgentWallet.selector),
            bytes32(bytes4(keccak256("setAgentWallet(uint256,address,uint256,bytes)"))),
            "setAgentWallet signature"
        );
        assertEq(
            bytes32(IdentityRegistry.setAgentURI.selector),
            bytes32(bytes4(keccak256("setAgentURI(uint256,string)"))),
            "setAgentURI"
        );
        assertEq(
            bytes32(IdentityRegistry.getMetadata.selector),
            bytes32(bytes4(keccak256("getMetadata(uint256,string)"))),
            "getMetadata"
        );
        assertEq(
            bytes32(IdentityRegistry.setMetadata.selector),
            bytes32(bytes4(keccak256("setMetadata(uint256,string,bytes)"))),
            "setMetadata"
        );
        bytes32 registered = IIdentityRegistry.Registered.selector;
        assertEq(registered, keccak256("Registered(uint256,string,address)"), "Registered topic");
        assertEq(bytes32(bytes4(registered)), bytes32(bytes4(0xca52e62c)), "Registered topic prefix");
        assertEq(IIdentityRegistry.URIUpdated.selector, keccak256("URIUpdated(uint256,string,address)"), "URIUpdated");
        assertEq(
            IIdentityRegistry.MetadataSet.selector, keccak256("MetadataSet(uint256,string,string,bytes)"), "MetadataSet"
        );
    }

    function testRegisterOverloadsDispatchBySelector() public {
        vm.prank(alice);
        (bool ok, bytes memory ret) = address(reg).call(abi.encodeWithSelector(bytes4(0x1aa3a008)));
        assertTrue(ok, "register() by selector");
        assertEq(abi.decode(ret, (uint256)), 1, "id 1");
        vm.prank(bob);
        (ok, ret) = address(reg).call(abi.encodeWithSelector(bytes4(0xf2c298be), "ipfs://bob"));
        assertTrue(ok, "register(string) by selector");
        assertEq(abi.decode(ret, (uint256)), 2, "id 2");
        assertEq(reg.tokenURI(2), "ipfs://bob", "uri");
        assertEq(reg.ownerOf(1), alice, "owner 1");
        assertEq(reg.ownerOf(2), bob, "owner 2");
    }

    function testNameSymbolDomain() public view {
        assertEq(reg.name(), "AgentIdentity", "name");
        assertEq(reg.symbol(), "AGENT", "symbol");
        assertEq(reg.AGENT_WALLET_KEY(), "agentWallet", "reserved key");
        assertEq(
            reg.AGENT_WALLET_TYPEHASH(),
            keccak256("AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 nonce,uint256 deadline)"),
            "typehash"
        );
        assertEq(
            reg.walletProofDigest(1, wallet, alice, 1, T0 + 60),
            proofDigest(1, wallet, alice, 1, T0 + 60),
            "digest matches the documented EIP-712 type and domain"
        );
        assertEq(reg.totalAgents(), 0, "no agents");
    }

    // ------------------------------------------------------------ register

    function testRegisterWithoutURI() public {
        vm.expectEmit(address(reg));
        emit Transfer(address(0), alice, 1);
        vm.expectEmit(address(reg));
        emit IIdentityRegistry.MetadataSet(1, "agentWallet", "agentWallet", abi.encodePacked(alice));
        vm.expectEmit(address(reg));
        emit IIdentityRegistry.Registered(1, "", alice);
        vm.prank(alice);
        uint256 id = reg.register();
        assertEq(id, 1, "ids start at 1");
        assertEq(reg.ownerOf(1), alice, "minted to the caller");
        assertEq(reg.balanceOf(alice), 1, "balance");
        assertEq(reg.tokenURI(1), "", "no uri yet");
        assertEq(reg.getAgentWallet(1), alice, "wallet defaults to the registrant");
        assertEq(reg.getMetadata(1, "agentWallet"), abi.encodePacked(alice), "wallet as metadata");
        assertEq(reg.walletNonce(1), 1, "nonce moved");
        assertEq(reg.totalAgents(), 1, "total");
    }

    function testRegisterWithURI() public {
        vm.expectEmit(address(reg));
        emit IIdentityRegistry.Registered(1, "https://agent.example/card.json", bob);
        uint256 id = registerAs(bob, "https://agent.example/card.json");
        assertEq(id, 1, "id");
        assertEq(reg.tokenURI(1), "https://agent.example/card.json", "tokenURI is the agentURI");
        assertEq(registerAs(alice, "ipfs://x"), 2, "next id");
        assertEq(reg.totalAgents(), 2, "total");
    }

    function testRegisterWithMetadata() public {
        IIdentityRegistry.MetadataEntry[] memory md = new IIdentityRegistry.MetadataEntry[](2);
        md[0] = IIdentityRegistry.MetadataEntry("ens", bytes("agent.eth"));
        md[1] = IIdentityRegistry.MetadataEntry("skills", hex"0102");
        vm.expectEmit(address(reg));
        emit IIdentityRegistry.MetadataSet(1, "ens", "ens", bytes("agent.eth"));
        vm.expectEmit(address(reg));
        emit IIdentityRegistry.MetadataSet(1, "skills", "skills", hex"0102");
        vm.expectEmit(address(reg));
        emit IIdentityRegistry.Registered(1, "ipfs://card", alice);
        vm.prank(alice);
        uint256 id = reg.register("ipfs://card", md);
        assertEq(id, 1, "id");
        assertEq(reg.tokenURI(1), "ipfs://card", "uri");
        assertEq(reg.getMetadata(1, "ens"), bytes("agent.eth"), "ens");
        assertEq(reg.getMetadata(1, "skills"), hex"0102", "skills");
        assertEq(reg.getMetadata(1, "unset"), "", "unset key");
        assertEq(reg.getAgentWallet(1), alice, "wallet");
    }

    function testRegisterWithMetadataRefusals() public {
        IIdentityRegistry.MetadataEntry[] memory md = new IIdentityRegistry.MetadataEntry[](1);
        md[0] = IIdentityRegistry.MetadataEntry("agentWallet", abi.encodePacked(stranger));
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.ReservedMetadataKey.selector, "agentWallet"));
        vm.prank(alice);
        reg.register("ipfs://card", md);
        md[0] = IIdentityRegistry.MetadataEntry("", hex"01");
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.EmptyMetadataKey.selector));
        vm.prank(alice);
        reg.register("ipfs://card", md);
        assertEq(reg.totalAgents(), 0, "nothing minted");
    }

    // ------------------------------------------------------------ setAgentURI / setMetadata

    function testSetAgentURIByOwnerApprovedAndOperator() public {
        registerAs(alice, "ipfs://v1");
        vm.expectEmit(address(reg));
        emit IIdentityRegistry.URIUpdated(1, "ipfs://v2", alice);
        vm.prank(alice);
        reg.setAgentURI(1, "ipfs://v2");
        assertEq(reg.tokenURI(1), "ipfs://v2", "owner");

        vm.prank(alice);
        reg.approve(bob, 1);
        vm.expectEmit(address(reg));
        emit IIdentityRegistry.URIUpdated(1, "ipfs://v3", bob);
        vm.prank(bob);
        reg.setAgentURI(1, "ipfs://v3");
        assertEq(reg.tokenURI(1), "ipfs://v3", "approved");

        vm.prank(alice);
        reg.setApprovalForAll(operator, true);
        vm.prank(operator);
        reg.setAgentURI(1, "ipfs://v4");
        assertEq(reg.tokenURI(1), "ipfs://v4", "operator");
    }

    function testSetAgentURIRefusals() public {
        registerAs(alice, "ipfs://v1");
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.NotAgentOwnerOrOperator.selector, 1, stranger));
        vm.prank(stranger);
        reg.setAgentURI(1, "ipfs://evil");
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 2));
        vm.prank(alice);
        reg.setAgentURI(2, "ipfs://none");
        assertEq(reg.tokenURI(1), "ipfs://v1", "unchanged");
    }

    function testSetMetadata() public {
        registerAs(alice, "ipfs://v1");
        vm.expectEmit(address(reg));
        emit IIdentityRegistry.MetadataSet(1, "price", "price", hex"2a");
        vm.prank(alice);
        reg.setMetadata(1, "price", hex"2a");
        assertEq(reg.getMetadata(1, "price"), hex"2a", "set");
        vm.prank(alice);
        reg.setMetadata(1, "price", "");
        assertEq(reg.getMetadata(1, "price"), "", "cleared by empty value");
        vm.prank(alice);
        reg.setApprovalForAll(operator, true);
        vm.prank(operator);
        reg.setMetadata(1, "by", bytes("operator"));
        assertEq(reg.getMetadata(1, "by"), bytes("operator"), "operator may");
        vm.prank(alice);
        reg.approve(bob, 1);
        vm.prank(bob);
        reg.setMetadata(1, "by", bytes("approved"));
        assertEq(reg.getMetadata(1, "by"), bytes("approved"), "approved may");
        assertEq(reg.getMetadata(99, "by"), "", "unknown agent reads empty");
    }

    function testSetMetadataRefusals() public {
        registerAs(alice, "ipfs://v1");
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.NotAgentOwnerOrOperator.selector, 1, stranger));
        vm.prank(stranger);
        reg.setMetadata(1, "k", hex"01");
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.ReservedMetadataKey.selector, "agentWallet"));
        vm.prank(alice);
        reg.setMetadata(1, "agentWallet", abi.encodePacked(stranger));
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.EmptyMetadataKey.selector));
        vm.prank(alice);
        reg.setMetadata(1, "", hex"01");
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 5));
        vm.prank(alice);
        reg.setMetadata(5, "k", hex"01");
        assertEq(reg.getAgentWallet(1), alice, "wallet untouched");
        assertEq(reg.getMetadata(1, "k"), "", "nothing set");
    }

    function testIsAuthorizedOrOwner() public {
        registerAs(alice, "ipfs://v1");
        assertTrue(reg.isAuthorizedOrOwner(alice, 1), "owner");
        assertFalse(reg.isAuthorizedOrOwner(bob, 1), "stranger");
        vm.prank(alice);
        reg.approve(bob, 1);
        assertTrue(reg.isAuthorizedOrOwner(bob, 1), "approved");
        vm.prank(alice);
        reg.setApprovalForAll(operator, true);
        assertTrue(reg.isAuthorizedOrOwner(operator, 1), "operator");
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 2));
        reg.isAuthorizedOrOwner(alice, 2);
    }

    // ------------------------------------------------------------ agent wallet

    function testSetAgentWalletWithEoaProof() public {
        registerAs(alice, "ipfs://v1");
        uint256 deadline = T0 + 600;
        bytes memory signature = proof(WALLET_KEY, 1, wallet, deadline);
        vm.expectEmit(address(reg));
        emit IIdentityRegistry.MetadataSet(1, "agentWallet", "agentWallet", abi.encodePacked(wallet));
        vm.prank(alice);
        reg.setAgentWallet(1, wallet, deadline, signature);
        assertEq(reg.getAgentWallet(1), wallet, "wallet set");
        assertEq(reg.getMetadata(1, "agentWallet"), abi.encodePacked(wallet), "as metadata");
        assertEq(reg.walletNonce(1), 2, "nonce moved");

        // replay of the same proof: the nonce moved on
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.InvalidWalletProof.selector, wallet));
        vm.prank(alice);
        reg.setAgentWallet(1, wallet, deadline, signature);
    }

    function testSetAgentWalletAtDeadlineAndByOperator() public {
        registerAs(alice, "ipfs://v1");
        vm.prank(alice);
        reg.setApprovalForAll(operator, true);
        bytes memory signature = proof(WALLET_KEY, 1, wallet, T0); // owner in the proof is alice, not the operator
        vm.prank(operator);
        reg.setAgentWallet(1, wallet, T0, signature);
        assertEq(reg.getAgentWallet(1), wallet, "deadline is inclusive; an operator may submit");
    }

    function testSetAgentWalletWithContractWallet() public {
        registerAs(alice, "ipfs://v1");
        SmartWallet sw = new SmartWallet(vm.addr(OTHER_KEY));
        uint256 deadline = T0 + 60;
        bytes memory signature = proof(OTHER_KEY, 1, address(sw), deadline);
        vm.prank(alice);
        reg.setAgentWallet(1, address(sw), deadline, signature);
        assertEq(reg.getAgentWallet(1), address(sw), "ERC-1271 wallet accepted");
        // a signature by someone else is refused by the wallet
        signature = proof(WALLET_KEY, 1, address(sw), deadline);
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.InvalidWalletProof.selector, address(sw)));
        vm.prank(alice);
        reg.setAgentWallet(1, address(sw), deadline, signature);
    }

    function testSetAgentWalletRefusals() public {
        registerAs(alice, "ipfs://v1");
        registerAs(alice, "ipfs://v2");
        uint256 deadline = T0 + 60;
        bytes memory good = proof(WALLET_KEY, 1, wallet, deadline);

        // expired
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.WalletProofExpired.selector, deadline, deadline + 1));
        vm.prank(alice);
        reg.setAgentWallet(1, wallet, deadline, good);
        vm.warp(T0);

        // wrong signer
        bytes memory wrong = proof(OTHER_KEY, 1, wallet, deadline);
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.InvalidWalletProof.selector, wallet));
        vm.prank(alice);
        reg.setAgentWallet(1, wallet, deadline, wrong);

        // a proof for agent 1 does not work for agent 2; a longer deadline than signed fails too
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.InvalidWalletProof.selector, wallet));
        vm.prank(alice);
        reg.setAgentWallet(2, wallet, deadline, good);
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.InvalidWalletProof.selector, wallet));
        vm.prank(alice);
        reg.setAgentWallet(1, wallet, deadline + 1, good);

        // malformed signature
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.InvalidWalletProof.selector, wallet));
        vm.prank(alice);
        reg.setAgentWallet(1, wallet, deadline, hex"1234");

        // zero wallet
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.ZeroAgentWallet.selector));
        vm.prank(alice);
        reg.setAgentWallet(1, address(0), deadline, good);

        // stranger, unknown agent
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.NotAgentOwnerOrOperator.selector, 1, stranger));
        vm.prank(stranger);
        reg.setAgentWallet(1, wallet, deadline, good);
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 3));
        vm.prank(alice);
        reg.setAgentWallet(3, wallet, deadline, good);

        assertEq(reg.getAgentWallet(1), alice, "unchanged");
        assertEq(reg.walletNonce(1), 1, "nonce unchanged");
        // the good proof still works after all those refusals
        vm.prank(alice);
        reg.setAgentWallet(1, wallet, deadline, good);
        assertEq(reg.getAgentWallet(1), wallet, "then accepted");
    }

    function testUnsetAgentWallet() public {
        registerAs(alice, "ipfs://v1");
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.NotAgentOwnerOrOperator.selector, 1, stranger));
        vm.prank(stranger);
        reg.unsetAgentWallet(1);
        vm.expectEmit(address(reg));
        emit IIdentityRegistry.MetadataSet(1, "agentWallet", "agentWallet", "");
        vm.prank(alice);
        reg.unsetAgentWallet(1);
        assertEq(reg.getAgentWallet(1), address(0), "cleared");
        assertEq(reg.getMetadata(1, "agentWallet"), "", "metadata empty");
        assertEq(reg.walletNonce(1), 2, "nonce moved");
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 2));
        vm.prank(alice);
        reg.unsetAgentWallet(2);
    }

    function testWalletClearedOnTransfer() public {
        registerAs(alice, "ipfs://v1");
        uint256 deadline = T0 + 600;
        bytes memory first = proof(WALLET_KEY, 1, wallet, deadline);
        vm.prank(alice);
        reg.setAgentWallet(1, wallet, deadline, first);
        // a second proof alice got signed for later use, before the transfer
        bytes memory stale = proof(WALLET_KEY, 1, wallet, deadline);
        vm.prank(alice);
        reg.setMetadata(1, "kept", hex"01");

        vm.expectEmit(address(reg));
        emit Transfer(alice, bob, 1);
        vm.expectEmit(address(reg));
        emit IIdentityRegistry.MetadataSet(1, "agentWallet", "agentWallet", "");
        vm.prank(alice);
        reg.transferFrom(alice, bob, 1);
        assertEq(reg.ownerOf(1), bob, "bob owns it");
        assertEq(reg.getAgentWallet(1), address(0), "wallet cleared");
        assertEq(reg.getMetadata(1, "agentWallet"), "", "metadata cleared");
        assertEq(reg.getMetadata(1, "kept"), hex"01", "other metadata kept");
        assertEq(reg.tokenURI(1), "ipfs://v1", "uri kept");

        // alice no longer manages it; the stale proof (old owner, old nonce) is refused for bob too
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.NotAgentOwnerOrOperator.selector, 1, alice));
        vm.prank(alice);
        reg.setAgentWallet(1, wallet, deadline, stale);
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.InvalidWalletProof.selector, wallet));
        vm.prank(bob);
        reg.setAgentWallet(1, wallet, deadline, stale);

        // bob proves the same wallet afresh
        bytes memory fresh = proof(WALLET_KEY, 1, wallet, deadline);
        vm.prank(bob);
        reg.setAgentWallet(1, wallet, deadline, fresh);
        assertEq(reg.getAgentWallet(1), wallet, "new owner's proof");

        // safeTransferFrom clears it too
        vm.prank(bob);
        reg.safeTransferFrom(bob, alice, 1);
        assertEq(reg.getAgentWallet(1), address(0), "cleared again");
    }
}
