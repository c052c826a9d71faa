//! The golden vectors of `x402.md` §8: the spec's real Base Sepolia signature, its negative variants, and the
//! Arc testnet USDC domain separator; plus strict-recovery rules checked against signatures we make.

use alloy::primitives::{Address, B256, U256, address, b256, bytes};
use alloy::signers::local::PrivateKeySigner;
use protocol::eip3009::{self, Eip3009Error};
use protocol::network::ARC_USDC;
use protocol::wire::ExactEvmAuthorization;

const SPEC_USDC: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
const SPEC_FROM: Address = address!("0x857b06519E91e3A54538791bDbb0E22373e36b66");

fn spec_authorization() -> ExactEvmAuthorization {
    ExactEvmAuthorization {
        from: SPEC_FROM,
        to: address!("0x209693Bc6afc0C5328bA36FaF03C514EF312287C"),
        value: U256::from(10_000u64),
        valid_after: U256::from(1_740_672_089u64),
        valid_before: U256::from(1_740_672_154u64),
        nonce: b256!("0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"),
    }
}

const SPEC_SIGNATURE: alloy::primitives::Bytes = bytes!(
    "0x2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608a2ce6496642e377d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b571c"
);

#[test]
fn spec_example_recovers_to_its_sender() {
    let domain = eip3009::domain("USDC", "2", 84_532, SPEC_USDC);
    assert_eq!(
        domain.separator(),
        b256!("0x71f17a3b2ff373b803d70a5a07c046c1a2bc8e89c09ef722fcb047abe94c9818")
    );
    let signer = eip3009::recover(&spec_authorization(), &domain, &SPEC_SIGNATURE).unwrap();
    assert_eq!(signer, SPEC_FROM);
}

#[test]
fn spec_example_under_another_domain_recovers_to_someone_else() {
    for domain in [
        eip3009::domain("USD Coin", "2", 84_532, SPEC_USDC),
        eip3009::domain("USDC", "2", 8_453, SPEC_USDC),
    ] {
        let recovered = eip3009::recover(&spec_authorization(), &domain, &SPEC_SIGNATURE).unwrap();
        assert_ne!(recovered, SPEC_FROM);
    }
}

#[test]
fn typehash_matches_the_spec() {
    use alloy::sol_types::SolStruct;
    assert_eq!(
        eip3009::typed(&spec_authorization()).eip712_type_hash(),
        eip3009::TRANSFER_WITH_AUTHORIZATION_TYPEHASH
    );
}

#[test]
fn arc_testnet_usdc_domain_separator() {
    let domain = eip3009::domain("USDC", "2", 5_042_002, ARC_USDC);
    assert_eq!(
        domain.separator(),
        b256!("0x361191522483d32a83e70ae7183b4b9629442c13a78bc9921d6f707911c8c6b0")
    );
}

#[tokio::test]
async fn signing_then_recovering_gives_the_signer_with_v_27_or_28() {
    let signer = PrivateKeySigner::random();
    let domain = eip3009::domain("USDC", "2", 5_042_002, ARC_USDC);
    for _ in 0..16 {
        let auth = eip3009::build_authorization(
            signer.address(),
            SPEC_FROM,
            U256::from(5u8),
            60,
            1_000_000,
            eip3009::random_nonce(),
        )
        .unwrap();
        let sig = eip3009::sign(&signer, &auth, &domain).await.unwrap();
        assert_eq!(sig.len(), 65);
        assert!(sig[64] == 27 || sig[64] == 28);
        assert_eq!(eip3009::recover(&auth, &domain, &sig).unwrap(), signer.address());
    }
}

#[test]
fn malleable_and_malformed_signatures_are_refused() {
    let domain = eip3009::domain("USDC", "2", 84_532, SPEC_USDC);
    let auth = spec_authorization();
    let good = SPEC_SIGNATURE.to_vec();

    // The same signature with s' = n - s and v flipped is valid ECDSA but malleable: FiatToken refuses it.
    let n = U256::from_be_bytes(b256!("0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").0);
    let s = U256::from_be_slice(&good[32..64]);
    let mut high = good.clone();
    high[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    high[64] = if good[64] == 27 { 28 } else { 27 };
    assert_eq!(eip3009::recover(&auth, &domain, &high), Err(Eip3009Error::HighS));

    let mut v01 = good.clone();
    v01[64] -= 27;
    assert_eq!(
        eip3009::recover(&auth, &domain, &v01),
        Err(Eip3009Error::InvalidV(v01[64]))
    );

    assert_eq!(
        eip3009::recover(&auth, &domain, &good[..64]),
        Err(Eip3009Error::SignatureLength(64))
    );
    assert_eq!(
        eip3009::recover(&auth, &domain, &[]),
        Err(Eip3009Error::SignatureLength(0))
    );

    let mut zero_r = good.clone();
    zero_r[..32].fill(0);
    assert_eq!(
        eip3009::recover(&auth, &domain, &zero_r),
        Err(Eip3009Error::Unrecoverable)
    );
}

#[test]
fn builder_sets_the_time_window_from_now_and_the_timeout() {
    let nonce = B256::repeat_byte(7);
    let auth = eip3009::build_authorization(SPEC_FROM, ARC_USDC, U256::from(10u8), 60, 10_000, nonce).unwrap();
    assert_eq!(auth.valid_after, U256::from(10_000u64 - 600));
    assert_eq!(auth.valid_before, U256::from(10_060u64));
    assert_eq!(auth.nonce, nonce);
    assert_eq!(auth.to, ARC_USDC);
    let early = eip3009::build_authorization(SPEC_FROM, ARC_USDC, U256::from(10u8), 60, 100, nonce).unwrap();
    assert_eq!(early.valid_after, U256::ZERO, "never below zero");
    assert!(matches!(
        eip3009::build_authorization(SPEC_FROM, ARC_USDC, U256::from(10u8), u64::MAX, 10, nonce),
        Err(Eip3009Error::TimeOverflow { .. })
    ));
}

#[tokio::test]
async fn pay_builds_a_verifiable_v2_payload_for_an_offer() {
    use protocol::wire::{Extra, v2};
    let signer = PrivateKeySigner::random();
    let requirement = v2::PaymentRequirements {
        scheme: "exact".into(),
        network: "eip155:5042002".into(),
        amount: U256::from(10_000u64),
        asset: ARC_USDC,
        pay_to: SPEC_FROM,
        max_timeout_seconds: 60,
        extra: Some(Extra::eip712("USDC", "2")),
    };
    let payment = eip3009::pay(&signer, &requirement, None, 1_800_000_000, eip3009::random_nonce())
        .await
        .unwrap();
    assert_eq!(payment.accepted, requirement);
    let exact = payment.payload.exact_evm().unwrap();
    assert_eq!(exact.authorization.from, signer.address());
    assert_eq!(exact.authorization.value, requirement.amount);
    let domain = eip3009::domain_for(&requirement).unwrap();
    assert_eq!(
        eip3009::recover(&exact.authorization, &domain, &exact.signature).unwrap(),
        signer.address()
    );

    let mut no_domain = requirement.clone();
    no_domain.extra = None;
    assert_eq!(
        eip3009::domain_for(&no_domain).unwrap_err(),
        Eip3009Error::MissingDomain
    );
    let mut bad_network = requirement;
    bad_network.network = "base-sepolia".into();
    assert!(matches!(
        eip3009::domain_for(&bad_network),
        Err(Eip3009Error::Network(_))
    ));
}
