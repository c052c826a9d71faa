//! The commerce contracts as the devnet deploys them, driven through their Rust bindings: each sits at its
//! fixed address (listed in the state file); Escrow holds a buyer's payment funded by one gasless
//! ReceiveWithAuthorization and releases it to the seller; Subscription charges exactly one price per period;
//! the Marketplace pages services by tag; the ERC-8004 registries record an agent and a client's feedback; a
//! Treasury pays within its policy, after M approvals above its threshold, and settles its own x402 authorization.
//! Balances and state are read back from the chain; each contract's main refusal is decoded as its own error.

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::signers::SignerSync;
use alloy::sol_types::{SolEvent, SolValue};
use contracts::bindings::{
    Escrow, IEip3009, IMarketplace, IdentityRegistry, Marketplace, ReputationRegistry, Subscription, Treasury,
    TreasuryFactory, USDC,
};
use contracts::commerce::CommerceContracts;
use contracts::{Devnet, DevnetConfig};
use protocol::network::ARC_USDC;

/// Sends a call, waits for its receipt and asserts it succeeded; the receipt is the value.
macro_rules! mined {
    ($call:expr) => {{
        let receipt = $call.send().await.unwrap().get_receipt().await.unwrap();
        assert!(receipt.status(), "reverted: {}", stringify!($call));
        receipt
    }};
}

/// The first `E` event a receipt carries.
fn event<E: SolEvent>(receipt: &alloy::rpc::types::TransactionReceipt) -> E {
    receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| E::decode_log(&log.inner).ok().map(|decoded| decoded.data))
        .unwrap_or_else(|| panic!("no {} event", E::SIGNATURE))
}

async fn chain_now(devnet: &Devnet) -> u64 {
    let block = devnet
        .admin_provider()
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    block.header.timestamp
}

async fn balance(devnet: &Devnet, who: Address) -> U256 {
    IEip3009::new(ARC_USDC, devnet.admin_provider().clone())
        .balanceOf(who)
        .call()
        .await
        .unwrap()
}

/// The custom error a reverted call carried, decoded as `E`.
fn reverted_with<E: alloy::sol_types::SolError>(error: alloy::contract::Error) -> E {
    error
        .as_decoded_error::<E>()
        .unwrap_or_else(|| panic!("expected {}, got {error}", E::SIGNATURE))
}

#[tokio::test]
async fn every_commerce_contract_is_at_its_fixed_address_and_listed() {
    let devnet = Devnet::start(DevnetConfig::default()).await.unwrap();
    let listed = devnet.state().contracts;
    assert_eq!(listed, CommerceContracts::DEVNET);
    let json = serde_json::to_value(devnet.state()).unwrap();
    for name in [
        "escrow",
        "subscription",
        "marketplace",
        "identity_registry",
        "reputation_registry",
    ] {
        let at: Address = json["contracts"][name].as_str().unwrap().parse().unwrap();
        let code = devnet.admin_provider().get_code_at(at).await.unwrap();
        assert!(!code.is_empty(), "{name} has code at {at}");
    }
    // Another devnet (another chain id, fewer accounts) puts them at the same addresses.
    let other = Devnet::start(DevnetConfig {
        chain_id: 5_042_002,
        accounts: 3,
        ..DevnetConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(other.state().contracts, listed);
}

#[tokio::test]
async fn escrow_funds_by_authorization_releases_to_the_seller_and_refuses_the_wrong_party() {
    let devnet = Devnet::start(DevnetConfig::default()).await.unwrap();
    let at = devnet.state().contracts.escrow;
    let buyer = devnet.signer(1).unwrap().clone();
    let seller = devnet.signer(2).unwrap().address();
    let arbiter = devnet.signer(4).unwrap().address();
    let relayer = Escrow::new(at, devnet.provider_for(3).unwrap());
    let as_seller = Escrow::new(at, devnet.provider_for(2).unwrap());
    let as_buyer = Escrow::new(at, devnet.provider_for(1).unwrap());

    let now = chain_now(&devnet).await;
    let amount = U256::from(250_000u64);
    let terms = Escrow::Terms {
        seller,
        arbiter,
        amount,
        deliveryDeadline: now + 3_600,
        reviewSeconds: 600,
        termsHash: keccak256("GET /image?prompt=cat"),
        salt: B256::repeat_byte(7),
    };
    let nonce = relayer.termsNonce(terms.clone()).call().await.unwrap();
    let usdc = USDC::new(ARC_USDC, devnet.admin_provider().clone());
    let separator = usdc.DOMAIN_SEPARATOR().call().await.unwrap();
    let receive_typehash = usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH().call().await.unwrap();
    let (valid_after, valid_before) = (U256::from(now - 60), U256::from(now + 600));
    let struct_hash = keccak256(
        (
            receive_typehash,
            buyer.address(),
            at,
            amount,
            valid_after,
            valid_before,
            nonce,
        )
            .abi_encode(),
    );
    let digest = keccak256([&b"\x19\x01"[..], separator.as_slice(), struct_hash.as_slice()].concat());
    let signature = buyer.sign_hash_sync(&digest).unwrap().as_bytes();

    // A nonce that does not commit to these terms is refused (someone re-using the signature for other terms).
    let mut other_terms = terms.clone();
    other_terms.seller = devnet.signer(5).unwrap().address();
    let refused = relayer
        .createWithAuthorization(
            other_terms,
            buyer.address(),
            valid_after,
            valid_before,
            nonce,
            signature.to_vec().into(),
        )
        .call()
        .await
        .unwrap_err();
    reverted_with::<Escrow::NonceDoesNotCommitToTerms>(refused);

    let buyer_before = balance(&devnet, buyer.address()).await;
    let seller_before = balance(&devnet, seller).await;
    let receipt = mined!(relayer.createWithAuthorization(
        terms,
        buyer.address(),
        valid_after,
        valid_before,
        nonce,
        signature.to_vec().into(),
    ));
    let created = event::<Escrow::AgreementCreated>(&receipt);
    let id = created.id;
    assert_eq!(created.buyer, buyer.address());
    assert_eq!(balance(&devnet, buyer.address()).await, buyer_before - amount);
    assert_eq!(balance(&devnet, at).await, amount);
    assert_eq!(relayer.openBalance().call().await.unwrap(), amount);

    // Only the seller marks delivery; the buyer cannot.
    let refused = as_buyer
        .markDelivered(id, B256::repeat_byte(1))
        .call()
        .await
        .unwrap_err();
    let not_seller = reverted_with::<Escrow::NotSeller>(refused);
    assert_eq!(not_seller.caller, buyer.address());
    // Refund before the deadline is refused.
    let refused = as_buyer.refund(id).call().await.unwrap_err();
    let early = reverted_with::<Escrow::DeadlineNotReached>(refused);
    assert_eq!(early.id, id);

    let delivered = as_seller.markDelivered(id, keccak256("the body")).send().await.unwrap();
    assert!(delivered.get_receipt().await.unwrap().status());
    mined!(as_buyer.release(id));
    assert_eq!(balance(&devnet, seller).await, seller_before + amount);
    assert_eq!(balance(&devnet, at).await, U256::ZERO);
    assert_eq!(relayer.openBalance().call().await.unwrap(), U256::ZERO);
    // Released once: a second release is the wrong state.
    let refused = as_buyer.release(id).call().await.unwrap_err();
    reverted_with::<Escrow::NotReleasable>(refused);
}

#[tokio::test]
async fn subscription_charges_one_price_per_period_and_nothing_after_cancel() {
    let devnet = Devnet::start(DevnetConfig::default()).await.unwrap();
    let at = devnet.state().contracts.subscription;
    let provider_addr = devnet.signer(2).unwrap().address();
    let subscriber = devnet.signer(1).unwrap().address();
    let as_provider = Subscription::new(at, devnet.provider_for(2).unwrap());
    let as_subscriber = Subscription::new(at, devnet.provider_for(1).unwrap());
    let keeper = Subscription::new(at, devnet.provider_for(3).unwrap());
    let pay_to = devnet.signer(5).unwrap().address();
    let price = U256::from(5_000_000u64);
    let period = 86_400u64;

    let plan_call = as_provider.createPlan(pay_to, price, period, "ipfs://plan".into());
    let plan_id = plan_call.call().await.unwrap();
    mined!(plan_call);
    assert_eq!(as_provider.plan(plan_id).call().await.unwrap().provider, provider_addr);

    let usdc = USDC::new(ARC_USDC, devnet.provider_for(1).unwrap());
    let approved = usdc.approve(at, price * U256::from(10u64)).send().await.unwrap();
    assert!(approved.get_receipt().await.unwrap().status());
    let before = balance(&devnet, pay_to).await;
    let subscribe = as_subscriber.subscribe(plan_id);
    let sub_id = subscribe.call().await.unwrap();
    mined!(subscribe);
    assert_eq!(
        balance(&devnet, pay_to).await,
        before + price,
        "the first period is paid at once"
    );
    let current = keeper.activeSubscriptionOf(plan_id, subscriber).call().await.unwrap();
    assert_eq!(current.subId, sub_id);
    assert!(current.active);

    // The same period cannot be charged again.
    let refused = keeper.charge(sub_id).call().await.unwrap_err();
    reverted_with::<Subscription::AlreadyCharged>(refused);

    // One period later the keeper's charge moves exactly one price.
    devnet.admin_provider().anvil_increase_time(period).await.unwrap();
    devnet.admin_provider().anvil_mine(Some(1), None).await.unwrap();
    mined!(keeper.charge(sub_id));
    assert_eq!(balance(&devnet, pay_to).await, before + price * U256::from(2u64));
    let refused = keeper.charge(sub_id).call().await.unwrap_err();
    reverted_with::<Subscription::AlreadyCharged>(refused);

    // Cancelled: the next period's charge moves nothing.
    mined!(as_subscriber.cancel(sub_id));
    devnet.admin_provider().anvil_increase_time(period).await.unwrap();
    devnet.admin_provider().anvil_mine(Some(1), None).await.unwrap();
    let refused = keeper.charge(sub_id).call().await.unwrap_err();
    reverted_with::<Subscription::SubscriptionCancelled>(refused);
    let batch = keeper.chargeBatch(vec![sub_id]);
    assert_eq!(
        batch.call().await.unwrap(),
        U256::ZERO,
        "a batch skips the cancelled one"
    );
    mined!(batch);
    assert_eq!(balance(&devnet, pay_to).await, before + price * U256::from(2u64));
}

fn service(name: &str, tags: &[&str], pay_to: Address) -> IMarketplace::ServiceInput {
    IMarketplace::ServiceInput {
        name: name.into(),
        endpoint: format!("https://{name}.example/api"),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        price: U256::from(10_000u64),
        payTo: pay_to,
        metadataURI: String::new(),
    }
}

#[tokio::test]
async fn marketplace_pages_active_services_by_tag_and_only_the_owner_changes_one() {
    let devnet = Devnet::start(DevnetConfig::default()).await.unwrap();
    let at = devnet.state().contracts.marketplace;
    let owner = Marketplace::new(at, devnet.provider_for(1).unwrap());
    let stranger = Marketplace::new(at, devnet.provider_for(2).unwrap());
    let pay_to = devnet.signer(1).unwrap().address();
    let mut ids = Vec::new();
    for (name, tags) in [
        ("painter", &["image", "art"][..]),
        ("weather", &["data"][..]),
        ("sketcher", &["image"][..]),
    ] {
        let call = owner.register(service(name, tags, pay_to));
        ids.push(call.call().await.unwrap());
        mined!(call);
    }
    let page = owner
        .servicesByTag("image".into(), U256::ZERO, U256::from(10u64))
        .call()
        .await
        .unwrap();
    assert_eq!(page.totalActive, U256::from(2u64));
    let names: Vec<_> = page.page.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, ["painter", "sketcher"]);
    let second = owner
        .servicesByTag("image".into(), U256::from(1u64), U256::from(1u64))
        .call()
        .await
        .unwrap();
    assert_eq!(second.page.len(), 1);
    assert_eq!(second.page[0].name, "sketcher");

    // A stranger cannot deactivate or update someone else's service.
    let refused = stranger.deactivate(ids[0]).call().await.unwrap_err();
    let not_owner = reverted_with::<Marketplace::NotServiceOwner>(refused);
    assert_eq!(not_owner.id, ids[0]);
    let refused = stranger
        .update(ids[0], service("painter", &["image"], pay_to))
        .call()
        .await
        .unwrap_err();
    reverted_with::<Marketplace::NotServiceOwner>(refused);

    mined!(owner.deactivate(ids[0]));
    let page = owner
        .servicesByTag("image".into(), U256::ZERO, U256::from(10u64))
        .call()
        .await
        .unwrap();
    assert_eq!(page.totalActive, U256::from(1u64));
    assert_eq!(page.page[0].name, "sketcher");
    assert!(!owner.service(ids[0]).call().await.unwrap().active);
}

#[tokio::test]
async fn agent_registries_record_an_agent_and_a_clients_feedback_and_refuse_self_feedback() {
    let devnet = Devnet::start(DevnetConfig::default()).await.unwrap();
    let listed = devnet.state().contracts;
    let agent_owner = devnet.signer(1).unwrap().address();
    let client = devnet.signer(2).unwrap().address();
    let identity = IdentityRegistry::new(listed.identity_registry, devnet.provider_for(1).unwrap());
    let uri = "https://agent.example/.well-known/registration.json".to_string();
    let receipt = mined!(identity.register_2(uri.clone()));
    let registered = event::<IdentityRegistry::Registered>(&receipt);
    assert_eq!(registered.owner, agent_owner);
    assert_eq!(registered.agentURI, uri);
    let agent_id = registered.agentId;
    assert_eq!(identity.ownerOf(agent_id).call().await.unwrap(), agent_owner);
    assert_eq!(identity.tokenURI(agent_id).call().await.unwrap(), uri);

    let reputation = ReputationRegistry::new(listed.reputation_registry, devnet.provider_for(2).unwrap());
    let settlement_tx = B256::repeat_byte(0x42);
    let feedback = reputation.giveFeedback(
        agent_id,
        87,
        0,
        "starred".into(),
        "x402".into(),
        "https://agent.example/mcp".into(),
        "ipfs://feedback".into(),
        keccak256(settlement_tx),
    );
    mined!(feedback);
    let summary = reputation
        .getSummary(agent_id, vec![client], String::new(), String::new())
        .call()
        .await
        .unwrap();
    assert_eq!(summary.count, 1);
    assert_eq!(summary.summaryValue, 87);

    // The agent's owner cannot rate its own agent.
    let own = ReputationRegistry::new(listed.reputation_registry, devnet.provider_for(1).unwrap());
    let refused = own
        .giveFeedback(
            agent_id,
            100,
            0,
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            B256::ZERO,
        )
        .call()
        .await
        .unwrap_err();
    let self_feedback = reverted_with::<ReputationRegistry::SelfFeedback>(refused);
    assert_eq!(self_feedback.caller, agent_owner);
    let summary = reputation
        .getSummary(agent_id, vec![client, agent_owner], String::new(), String::new())
        .call()
        .await
        .unwrap();
    assert_eq!(summary.count, 1, "the refused feedback was never recorded");
}

#[tokio::test]
async fn treasury_pays_small_at_once_large_after_m_approvals_and_settles_its_own_x402_authorization() {
    let devnet = Devnet::start(DevnetConfig::default()).await.unwrap();
    let listed = devnet.state().contracts;
    let owners: Vec<Address> = (1..=3).map(|i| devnet.signer(i).unwrap().address()).collect();
    let spender = devnet.signer(4).unwrap().address();
    let seller = devnet.signer(5).unwrap().address();
    let factory = TreasuryFactory::new(listed.treasury_factory, devnet.provider_for(1).unwrap());
    let policy = TreasuryFactory::Policy {
        perTxLimit: U256::from(50_000_000u64),
        dailyLimit: U256::from(100_000_000u64),
        approvalThreshold: U256::from(10_000_000u64),
        proposalTtl: 3_600,
        allowListEnabled: false,
    };
    let salt = B256::repeat_byte(9);
    let create = factory.createTreasury(owners.clone(), U256::from(2u64), vec![spender], policy, salt);
    let at = create.call().await.unwrap();
    mined!(create);
    assert!(factory.isTreasury(at).call().await.unwrap());
    devnet.mint(at, U256::from(200_000_000u64)).await.unwrap();

    let as_spender = Treasury::new(at, devnet.provider_for(4).unwrap());
    let owner = |i: usize| Treasury::new(at, devnet.provider_for(i).unwrap());
    let seller_before = balance(&devnet, seller).await;

    // Below the approval threshold: paid at once.
    let small = U256::from(2_000_000u64);
    let pay = as_spender.proposePayment(seller, small, keccak256("invoice 1"));
    mined!(pay);
    assert_eq!(balance(&devnet, seller).await, seller_before + small);

    // At or above it: refused until two owners approved, then anyone executes.
    let large = U256::from(30_000_000u64);
    let propose = as_spender.proposePayment(seller, large, keccak256("invoice 2"));
    let id = propose.call().await.unwrap();
    mined!(propose);
    assert_eq!(
        balance(&devnet, seller).await,
        seller_before + small,
        "nothing left before approval"
    );
    mined!(owner(1).approve(id));
    let refused = as_spender.execute(id).call().await.unwrap_err();
    let short = reverted_with::<Treasury::NotEnoughApprovals>(refused);
    assert_eq!((short.approvals, short.threshold), (U256::from(1u64), U256::from(2u64)));
    mined!(owner(2).approve(id));
    mined!(as_spender.execute(id));
    assert_eq!(balance(&devnet, seller).await, seller_before + small + large);
    assert_eq!(
        as_spender.remainingDailyAllowance().call().await.unwrap(),
        U256::from(100_000_000u64) - small - large
    );

    // An x402 payment from the treasury: the spender proposes the EIP-3009 authorization, the contract approves
    // it within policy (below the threshold: at once), and USDC moves the treasury's funds on its EIP-1271 word.
    let now = chain_now(&devnet).await;
    let amount = U256::from(1_000_000u64);
    let (valid_after, valid_before) = (U256::from(now - 60), U256::from(now + 300));
    let nonce = B256::repeat_byte(0x33);
    let usdc = IEip3009::new(ARC_USDC, devnet.provider_for(6).unwrap());
    let settle =
        || usdc.transferWithAuthorization(at, seller, amount, valid_after, valid_before, nonce, Vec::new().into());
    let unapproved = settle().call().await.unwrap_err();
    assert!(unapproved.to_string().contains("invalid signature"), "{unapproved}");
    let propose = as_spender.proposeAuthorization(0, seller, amount, valid_after, valid_before, nonce, B256::ZERO);
    mined!(propose);
    let before = balance(&devnet, seller).await;
    mined!(settle());
    assert_eq!(balance(&devnet, seller).await, before + amount);
    assert!(settle().call().await.is_err(), "the authorization settles once");
}
