//! `/verify` against a real devnet: every check produces its own reason, a valid payment passes, verify writes
//! nothing, and malformed bodies get a 400 with a reason.

mod common;

use alloy::primitives::{Address, B256, Bytes, U256, b256};
use alloy::providers::ext::AnvilApi;
use alloy::signers::local::PrivateKeySigner;
use common::stack::{Stack, now};
use contracts::bindings::{SmartWallet, USDC};
use facilitator::ledger::{NewSettlement, SettlementKey};
use protocol::network::ARC_USDC;
use protocol::wire::{ExactEvmAuthorization, ExactEvmPayload, Extra, v2};
use protocol::{VerifyRequest, eip3009, reason};

fn v2_parts(request: &mut VerifyRequest) -> &mut v2::VerifyRequest {
    match request {
        VerifyRequest::V2(r) => r,
        VerifyRequest::V1(_) => unreachable!("tests build v2 requests"),
    }
}

/// Signs `auth` (after `edit`) under `domain_name`/`version` and puts it in the request.
async fn resign(
    request: &mut VerifyRequest,
    signer: &PrivateKeySigner,
    chain_id: u64,
    edit: impl FnOnce(&mut ExactEvmAuthorization),
) {
    let r = v2_parts(request);
    let exact = r.payment_payload.payload.exact_evm().unwrap().clone();
    let mut auth = exact.authorization;
    edit(&mut auth);
    let extra = r.payment_requirements.extra.clone().unwrap_or_default();
    let domain = eip3009::domain(
        extra.name.as_deref().unwrap_or("USDC"),
        extra.version.as_deref().unwrap_or("2"),
        chain_id,
        ARC_USDC,
    );
    let signature = eip3009::sign(signer, &auth, &domain).await.unwrap();
    r.payment_payload.payload = ExactEvmPayload {
        signature,
        authorization: auth,
    }
    .into();
}

#[tokio::test]
async fn each_check_has_its_own_reason() {
    let stack = Stack::start().await;
    let chain_id = stack.devnet.state().chain_id;
    let valid = stack.payment(10_000).await;
    assert_eq!(stack.verify_reason(&valid).await, "valid");

    // 1. scheme, network
    let mut r = valid.clone();
    v2_parts(&mut r).payment_requirements.scheme = "upto".into();
    v2_parts(&mut r).payment_payload.accepted.scheme = "upto".into();
    assert_eq!(stack.verify_reason(&r).await, reason::UNSUPPORTED_SCHEME);
    let mut r = valid.clone();
    v2_parts(&mut r).payment_requirements.network = "eip155:8453".into();
    v2_parts(&mut r).payment_payload.accepted.network = "eip155:8453".into();
    assert_eq!(stack.verify_reason(&r).await, reason::INVALID_NETWORK);
    let mut r = valid.clone();
    v2_parts(&mut r).payment_requirements.asset = Address::repeat_byte(0x11);
    v2_parts(&mut r).payment_payload.accepted.asset = Address::repeat_byte(0x11);
    assert_eq!(
        stack.verify_reason(&r).await,
        reason::INVALID_EXACT_EVM_UNSUPPORTED_ASSET
    );

    // 2. accepted must equal the requirements, field by field
    for edit in [
        (|a: &mut v2::PaymentRequirements| a.amount = U256::from(1u8)) as fn(&mut v2::PaymentRequirements),
        |a| a.pay_to = Address::repeat_byte(7),
        |a| a.asset = Address::repeat_byte(7),
        |a| a.network = "eip155:1".into(),
        |a| a.max_timeout_seconds = 999,
    ] {
        let mut r = valid.clone();
        edit(&mut v2_parts(&mut r).payment_payload.accepted);
        assert_eq!(
            stack.verify_reason(&r).await,
            reason::INVALID_EXACT_EVM_ACCEPTED_MISMATCH
        );
    }

    // 3. EIP-712 domain present and equal to the token's
    let mut r = valid.clone();
    v2_parts(&mut r).payment_requirements.extra = None;
    v2_parts(&mut r).payment_payload.accepted.extra = None;
    assert_eq!(
        stack.verify_reason(&r).await,
        reason::INVALID_EXACT_EVM_MISSING_EIP712_DOMAIN
    );
    for (extra, expected) in [
        (
            Extra::eip712("USD Coin", "2"),
            reason::INVALID_EXACT_EVM_TOKEN_NAME_MISMATCH,
        ),
        (
            Extra::eip712("USDC", "1"),
            reason::INVALID_EXACT_EVM_TOKEN_VERSION_MISMATCH,
        ),
    ] {
        let mut r = valid.clone();
        v2_parts(&mut r).payment_requirements.extra = Some(extra.clone());
        v2_parts(&mut r).payment_payload.accepted.extra = Some(extra);
        resign(&mut r, &stack.buyer, chain_id, |_| {}).await;
        assert_eq!(stack.verify_reason(&r).await, expected);
    }

    // 4. signature: another signer; malleable high-s; wrong length; ERC-6492 wrapped
    let mut r = valid.clone();
    resign(&mut r, &PrivateKeySigner::random(), chain_id, |_| {}).await;
    assert_eq!(stack.verify_reason(&r).await, reason::INVALID_EXACT_EVM_SIGNATURE);
    let mut r = valid.clone();
    {
        let p = v2_parts(&mut r);
        let mut exact = p.payment_payload.payload.exact_evm().unwrap().clone();
        let mut sig = exact.signature.to_vec();
        let n = U256::from_be_bytes(b256!("0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").0);
        let s = U256::from_be_slice(&sig[32..64]);
        sig[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
        sig[64] = if sig[64] == 27 { 28 } else { 27 };
        exact.signature = Bytes::from(sig);
        p.payment_payload.payload = exact.into();
    }
    assert_eq!(stack.verify_reason(&r).await, reason::INVALID_EXACT_EVM_SIGNATURE);
    let mut r = valid.clone();
    {
        let p = v2_parts(&mut r);
        let mut exact = p.payment_payload.payload.exact_evm().unwrap().clone();
        let mut wrapped = vec![0u8; 12];
        wrapped.extend_from_slice(Address::repeat_byte(0xfa).as_slice());
        wrapped.extend_from_slice(&exact.signature);
        wrapped.extend_from_slice(&[0x64, 0x92].repeat(16));
        exact.signature = Bytes::from(wrapped);
        p.payment_payload.payload = exact.into();
    }
    let (_, body) = stack.post("/verify", &r).await;
    assert_eq!(body["invalidReason"], reason::INVALID_EXACT_EVM_SIGNATURE);
    assert!(body["invalidMessage"].as_str().unwrap().contains("ERC-6492"), "{body}");

    // 5. recipient and value
    let mut r = valid.clone();
    resign(&mut r, &stack.buyer, chain_id, |a| a.to = Address::repeat_byte(5)).await;
    assert_eq!(
        stack.verify_reason(&r).await,
        reason::INVALID_EXACT_EVM_RECIPIENT_MISMATCH
    );
    let mut r = valid.clone();
    resign(&mut r, &stack.buyer, chain_id, |a| a.value = U256::from(9_999u64)).await;
    assert_eq!(
        stack.verify_reason(&r).await,
        reason::INVALID_EXACT_EVM_AUTHORIZATION_VALUE
    );

    // 6. time window
    let t = now();
    for (edit, expected) in [
        (
            Box::new(move |a: &mut ExactEvmAuthorization| a.valid_after = U256::from(t + 120))
                as Box<dyn FnOnce(&mut ExactEvmAuthorization)>,
            reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_AFTER,
        ),
        (
            Box::new(move |a| a.valid_before = U256::from(t + 3)),
            reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE,
        ),
        (
            Box::new(move |a| a.valid_before = U256::from(t + 3_600)),
            reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE,
        ),
    ] {
        let mut r = valid.clone();
        resign(&mut r, &stack.buyer, chain_id, edit).await;
        assert_eq!(stack.verify_reason(&r).await, expected);
    }

    // 7. nonce reserved in our ledger, then used on chain
    let reserved = stack.payment(10_000).await;
    let exact = v2_parts(&mut reserved.clone())
        .payment_payload
        .payload
        .exact_evm()
        .unwrap()
        .clone();
    let key = SettlementKey {
        network: stack.devnet.state().network.clone(),
        asset: ARC_USDC,
        payer: stack.buyer.address(),
        nonce: exact.authorization.nonce,
    };
    let ledger = stack.settler.verifier().ledger();
    ledger
        .reserve(&NewSettlement {
            key: key.clone(),
            payload_hash: B256::ZERO,
            pay_to: stack.seller,
            amount: U256::from(10_000u64),
        })
        .await
        .unwrap();
    assert_eq!(
        stack.verify_reason(&reserved).await,
        reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED
    );
    ledger.release_stale_reservation(&key, 0).await.unwrap();
    let (_, settled) = stack.post("/settle", &valid).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(
        stack.verify_reason(&valid).await,
        reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED
    );

    // 8. balance, also counting the payer's payments still settling
    let poor = PrivateKeySigner::random();
    stack.devnet.mint(poor.address(), U256::from(15_000u64)).await.unwrap();
    let first = stack.payment_from(&poor, 10_000).await;
    assert_eq!(stack.verify_reason(&first).await, "valid");
    let too_much = stack.payment_from(&poor, 20_000).await;
    assert_eq!(
        stack.verify_reason(&too_much).await,
        reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE
    );
    let in_flight_nonce = B256::random();
    ledger
        .reserve(&NewSettlement {
            key: SettlementKey {
                nonce: in_flight_nonce,
                payer: poor.address(),
                ..key.clone()
            },
            payload_hash: B256::ZERO,
            pay_to: stack.seller,
            amount: U256::from(10_000u64),
        })
        .await
        .unwrap();
    assert_eq!(
        stack.verify_reason(&first).await,
        reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE,
        "in-flight counted"
    );

    // 9. blacklist and pause (account 0 holds the token roles)
    let usdc = USDC::new(ARC_USDC, stack.devnet.admin_provider().clone());
    let fresh = stack.payment(10_000).await;
    usdc.blacklist(stack.buyer.address())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(
        stack.verify_reason(&fresh).await,
        reason::INVALID_EXACT_EVM_ADDRESS_BLACKLISTED
    );
    usdc.unBlacklist(stack.buyer.address())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    usdc.blacklist(stack.seller)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(
        stack.verify_reason(&fresh).await,
        reason::INVALID_EXACT_EVM_ADDRESS_BLACKLISTED
    );
    usdc.unBlacklist(stack.seller)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    usdc.pause().send().await.unwrap().get_receipt().await.unwrap();
    assert_eq!(
        stack.verify_reason(&fresh).await,
        reason::INVALID_EXACT_EVM_TOKEN_PAUSED
    );
    usdc.unpause().send().await.unwrap().get_receipt().await.unwrap();
    assert_eq!(stack.verify_reason(&fresh).await, "valid");

    // 10. simulation: the chain's clock is ahead of ours, so the token sees the authorization as expired.
    stack.devnet.admin_provider().anvil_increase_time(3_600).await.unwrap();
    stack.devnet.admin_provider().anvil_mine(Some(1), None).await.unwrap();
    assert_eq!(
        stack.verify_reason(&fresh).await,
        reason::INVALID_EXACT_EVM_TRANSACTION_SIMULATION_FAILED
    );
}

#[tokio::test]
async fn contract_wallet_payer_is_verified_with_eip1271_and_settles() {
    let stack = Stack::start().await;
    let owner = PrivateKeySigner::random();
    let deployer = stack.devnet.provider_for(4).unwrap();
    let wallet = SmartWallet::deploy(deployer, owner.address()).await.unwrap();
    let wallet_address = *wallet.address();
    stack.devnet.mint(wallet_address, U256::from(50_000u64)).await.unwrap();

    let requirement = stack.requirement(10_000);
    let domain = eip3009::domain_for(&requirement).unwrap();
    let auth = eip3009::build_authorization(
        wallet_address,
        stack.seller,
        requirement.amount,
        60,
        now(),
        B256::random(),
    )
    .unwrap();
    // The wallet's owner signs the EIP-712 digest; the wallet vouches for it through EIP-1271.
    let signature = eip3009::sign(&owner, &auth, &domain).await.unwrap();
    let payload = v2::PaymentPayload {
        x402_version: protocol::version::Version,
        resource: None,
        accepted: requirement.clone(),
        payload: ExactEvmPayload {
            signature,
            authorization: auth.clone(),
        }
        .into(),
        extensions: None,
    };
    let request = VerifyRequest::V2(v2::VerifyRequest {
        x402_version: protocol::version::Version,
        payment_payload: payload.clone(),
        payment_requirements: requirement.clone(),
    });
    assert_eq!(stack.verify_reason(&request).await, "valid");

    let mut forged = request.clone();
    resign(
        &mut forged,
        &PrivateKeySigner::random(),
        stack.devnet.state().chain_id,
        |_| {},
    )
    .await;
    assert_eq!(stack.verify_reason(&forged).await, reason::INVALID_EXACT_EVM_SIGNATURE);

    let before = stack.usdc_balance(stack.seller).await;
    let (_, settled) = stack.post("/settle", &request).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(stack.usdc_balance(stack.seller).await, before + U256::from(10_000u64));
    assert_eq!(stack.usdc_balance(wallet_address).await, U256::from(40_000u64));
}

#[tokio::test]
async fn malformed_bodies_get_400_with_a_reason_and_verify_writes_nothing() {
    let stack = Stack::start().await;
    for (body, reason) in [
        ("not json", "invalid_payload"),
        ("{}", "invalid_x402_version"),
        (r#"{"x402Version":7}"#, "invalid_x402_version"),
        (r#"{"x402Version":2,"paymentPayload":{}}"#, "invalid_payload"),
        ("[1,2,3]", "invalid_payload"),
    ] {
        for path in ["/verify", "/settle"] {
            let response = stack
                .http
                .post(format!("{}{path}", stack.url))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{path} {body}");
            let json: serde_json::Value = response.json().await.unwrap();
            assert_eq!(json["reason"], reason, "{path} {body}: {json}");
            assert!(json["error"].is_string());
        }
    }
    let huge = "x".repeat(200 * 1024);
    let response = stack
        .http
        .post(format!("{}/verify", stack.url))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["reason"],
        "body_too_large"
    );

    let request = stack.payment(10_000).await;
    for _ in 0..3 {
        assert_eq!(stack.verify_reason(&request).await, "valid");
    }
    let nonce = v2_parts(&mut request.clone())
        .payment_payload
        .payload
        .exact_evm()
        .unwrap()
        .authorization
        .nonce;
    assert!(
        stack
            .settler
            .verifier()
            .ledger()
            .find(stack.buyer.address(), nonce)
            .await
            .unwrap()
            .is_empty()
    );
    let (status, body) = stack
        .get(&format!("/settlements/{}/{nonce}", stack.buyer.address()))
        .await;
    assert_eq!((status, body["reason"].as_str()), (404, Some("unknown_settlement")));
}

#[tokio::test]
async fn concurrent_verifies_coalesced_on_chain_each_get_their_own_answer() {
    let stack = std::sync::Arc::new(Stack::start().await);
    let chain_id = stack.devnet.state().chain_id;
    let mut cases: Vec<(VerifyRequest, &str)> = Vec::new();
    // A payer who can afford each of its payments alone but not all of them together: verify is stateless,
    // so each is valid on its own, whichever chain call it shares.
    let tight = PrivateKeySigner::random();
    stack.devnet.mint(tight.address(), U256::from(10_000u64)).await.unwrap();
    for _ in 0..4 {
        cases.push((stack.payment_from(&tight, 10_000).await, "valid"));
    }
    for _ in 0..24 {
        let buyer = PrivateKeySigner::random();
        stack.devnet.mint(buyer.address(), U256::from(10_000u64)).await.unwrap();
        cases.push((stack.payment_from(&buyer, 10_000).await, "valid"));
    }
    let broke = PrivateKeySigner::random();
    cases.push((
        stack.payment_from(&broke, 10_000).await,
        reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE,
    ));
    let mut forged = stack.payment(10_000).await;
    resign(&mut forged, &PrivateKeySigner::random(), chain_id, |_| {}).await;
    cases.push((forged, reason::INVALID_EXACT_EVM_SIGNATURE));
    let used = stack.payment(10_000).await;
    assert_eq!(stack.post("/settle", &used).await.1["success"], true);
    cases.push((used, reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED));

    for _round in 0..3 {
        let tasks: Vec<_> = cases
            .iter()
            .map(|(request, _)| {
                let (stack, request) = (stack.clone(), request.clone());
                tokio::spawn(async move { stack.verify_reason(&request).await })
            })
            .collect();
        for (task, (_, expected)) in tasks.into_iter().zip(&cases) {
            assert_eq!(task.await.unwrap(), *expected);
        }
    }
}
