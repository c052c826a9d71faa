//! `CircleWalletSigner` against a local stand-in for Circle's W3S API that follows its documented shapes: it serves
//! the entity public key (a committed test keypair), and on `sign/typedData` checks the Bearer key, decrypts
//! `entitySecretCiphertext`, parses `data` as EIP-712 typed data and signs it with a local key playing the
//! wallet's.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use agents::buyer::circle_wallet::{CircleWalletConfig, CircleWalletError, CircleWalletSigner};
use alloy::dyn_abi::TypedData;
use alloy::primitives::{Address, B256, U256, hex};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::{Signer, SignerSync, UnsupportedSignerOperation};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use base64::Engine as _;
use protocol::eip3009;
use protocol::network::ARC_USDC;
use protocol::wire::{Extra, v2};
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::{Oaep, RsaPrivateKey};
use serde_json::{Value, json};

const PRIVATE_PEM: &str = include_str!("fixtures/circle_entity_private.pem");
const PUBLIC_PKCS1_PEM: &str = include_str!("fixtures/circle_entity_public.pem");
const PUBLIC_SPKI_PEM: &str = include_str!("fixtures/circle_entity_public_spki.pem");

const API_KEY: &str = "TEST_API_KEY:0123456789abcdef0123456789abcdef:fedcba9876543210fedcba9876543210";
const ENTITY_SECRET: &str = "5e3f1c0a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
const WALLET_ID: &str = "0189bc61-7fe4-70f3-8a1b-0d14bd7a5b41";
const NOW: u64 = 1_760_000_000;

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What the mock records and how it behaves.
struct MockCircle {
    public_pem: &'static str,
    private_key: RsaPrivateKey,
    /// The key Circle signs with: the wallet's, unless a test wants the wrong one.
    wallet_key: PrivateKeySigner,
    /// Answer `v` as 0/1 instead of 27/28.
    v_as_parity: bool,
    public_key_fetches: AtomicUsize,
    ciphertexts: Mutex<Vec<String>>,
    idempotency_keys: Mutex<Vec<String>>,
}

type Answer = (StatusCode, Json<Value>);

fn circle_error(status: StatusCode, code: i64, message: &str) -> Answer {
    (status, Json(json!({"code": code, "message": message})))
}

fn authorised(headers: &HeaderMap) -> Result<(), Answer> {
    let expected = format!("Bearer {API_KEY}");
    match headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(value) if value == expected => Ok(()),
        _ => Err(circle_error(
            StatusCode::UNAUTHORIZED,
            401,
            "Malformed authorization. Are the credentials properly encoded?",
        )),
    }
}

async fn public_key(State(mock): State<Arc<MockCircle>>, headers: HeaderMap) -> Answer {
    if let Err(refused) = authorised(&headers) {
        return refused;
    }
    mock.public_key_fetches.fetch_add(1, Ordering::SeqCst);
    (StatusCode::OK, Json(json!({"data": {"publicKey": mock.public_pem}})))
}

async fn sign_typed_data(State(mock): State<Arc<MockCircle>>, headers: HeaderMap, Json(body): Json<Value>) -> Answer {
    if let Err(refused) = authorised(&headers) {
        return refused;
    }
    let invalid = |message: &str| circle_error(StatusCode::BAD_REQUEST, 2, message);
    if body["walletId"] != WALLET_ID {
        return circle_error(StatusCode::NOT_FOUND, 156001, "Cannot find the wallet");
    }
    let Some(ciphertext) = body["entitySecretCiphertext"].as_str() else {
        return invalid("entitySecretCiphertext is required");
    };
    let Ok(encrypted) = base64::engine::general_purpose::STANDARD.decode(ciphertext) else {
        return invalid("entitySecretCiphertext is not base64");
    };
    let Ok(secret) = mock.private_key.decrypt(Oaep::new::<sha2::Sha256>(), &encrypted) else {
        return invalid("entitySecretCiphertext does not decrypt");
    };
    if hex::encode(&secret) != ENTITY_SECRET {
        return invalid("the entity secret is not this entity's");
    }
    let Some(key) = body["idempotencyKey"]
        .as_str()
        .and_then(|key| uuid::Uuid::parse_str(key).ok())
    else {
        return invalid("idempotencyKey must be a UUID");
    };
    assert_eq!(key.get_version_num(), 4, "idempotencyKey is a UUID v4");
    let Some(Ok(typed)) = body["data"].as_str().map(serde_json::from_str::<TypedData>) else {
        return invalid("data must be EIP-712 typed data as a JSON string");
    };
    let Ok(hash) = typed.eip712_signing_hash() else {
        return invalid("data has no EIP-712 signing hash");
    };
    mock.ciphertexts.lock().unwrap().push(ciphertext.to_owned());
    mock.idempotency_keys.lock().unwrap().push(key.to_string());
    let mut signature = mock.wallet_key.sign_hash_sync(&hash).unwrap().as_bytes();
    if mock.v_as_parity {
        signature[64] -= 27;
    }
    (
        StatusCode::OK,
        Json(json!({"data": {"signature": hex::encode_prefixed(signature)}})),
    )
}

/// Starts the mock; returns its base URL and its state.
async fn serve(mock: MockCircle) -> (String, Arc<MockCircle>) {
    let mock = Arc::new(mock);
    let app = axum::Router::new()
        .route("/v1/w3s/config/entity/publicKey", get(public_key))
        .route("/v1/w3s/developer/sign/typedData", post(sign_typed_data))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), mock)
}

fn mock(wallet_key: PrivateKeySigner) -> MockCircle {
    MockCircle {
        public_pem: PUBLIC_PKCS1_PEM,
        private_key: RsaPrivateKey::from_pkcs8_pem(PRIVATE_PEM).unwrap(),
        wallet_key,
        v_as_parity: false,
        public_key_fetches: AtomicUsize::new(0),
        ciphertexts: Mutex::new(Vec::new()),
        idempotency_keys: Mutex::new(Vec::new()),
    }
}

fn signer(base_url: &str, api_key: &str, address: Address) -> CircleWalletSigner {
    install_crypto();
    let config = CircleWalletConfig::new(api_key, ENTITY_SECRET, WALLET_ID, address)
        .with_base_url(base_url)
        .with_timeout(std::time::Duration::from_secs(10));
    CircleWalletSigner::new(config).unwrap()
}

fn requirement() -> v2::PaymentRequirements {
    v2::PaymentRequirements {
        scheme: "exact".to_owned(),
        network: "eip155:5042002".to_owned(),
        amount: U256::from(10_000),
        asset: ARC_USDC,
        pay_to: Address::repeat_byte(0x22),
        max_timeout_seconds: 60,
        extra: Some(Extra::eip712("USDC", "2")),
    }
}

/// A small typed-data document (EIP-3009 for the given payer).
fn document(from: Address) -> TypedData {
    let authorization = eip3009::build_authorization(
        from,
        Address::repeat_byte(0x22),
        U256::from(1),
        60,
        NOW,
        B256::repeat_byte(7),
    )
    .unwrap();
    let domain = eip3009::domain_for(&requirement()).unwrap();
    eip3009::typed_data(&authorization, &domain).unwrap()
}

/// The Circle error inside an alloy signer error.
fn circle_error_of(error: &alloy::signers::Error) -> &CircleWalletError {
    match error {
        alloy::signers::Error::Other(inner) => inner.downcast_ref::<CircleWalletError>().unwrap(),
        other => panic!("expected a Circle error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_eip3009_payment_signed_by_circle_recovers_to_the_wallet() {
    let wallet = PrivateKeySigner::random();
    let (base, mock) = serve(mock(wallet.clone())).await;
    let circle = signer(&base, API_KEY, wallet.address());
    let offer = requirement();

    let first = eip3009::pay(&circle, &offer, None, NOW, B256::repeat_byte(1))
        .await
        .unwrap();
    let second = eip3009::pay(&circle, &offer, None, NOW, B256::repeat_byte(2))
        .await
        .unwrap();

    let domain = eip3009::domain_for(&offer).unwrap();
    for payment in [&first, &second] {
        let exact = payment.payload.exact_evm().unwrap();
        assert_eq!(exact.authorization.from, wallet.address());
        assert_eq!(exact.authorization.to, offer.pay_to);
        assert_eq!(exact.authorization.value, offer.amount);
        let payer = eip3009::recover(&exact.authorization, &domain, &exact.signature).unwrap();
        assert_eq!(payer, wallet.address());
        let hash = eip3009::signing_hash(&exact.authorization, &domain);
        assert_eq!(
            eip3009::recover_prehash(&hash, &exact.signature).unwrap(),
            wallet.address()
        );
    }

    let ciphertexts = mock.ciphertexts.lock().unwrap().clone();
    assert_eq!(ciphertexts.len(), 2);
    assert_ne!(
        ciphertexts[0], ciphertexts[1],
        "every request carries a fresh entitySecretCiphertext"
    );
    let keys = mock.idempotency_keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1], "every request carries its own idempotencyKey");
}

#[tokio::test]
async fn a_signature_with_v_as_0_or_1_is_accepted_and_returned_as_27_or_28() {
    let wallet = PrivateKeySigner::random();
    let mut circle_mock = mock(wallet.clone());
    circle_mock.v_as_parity = true;
    let (base, _mock) = serve(circle_mock).await;
    let circle = signer(&base, API_KEY, wallet.address());

    let offer = requirement();
    let payment = eip3009::pay(&circle, &offer, None, NOW, B256::repeat_byte(3))
        .await
        .unwrap();
    let exact = payment.payload.exact_evm().unwrap();
    assert!(matches!(exact.signature[64], 27 | 28));
    let domain = eip3009::domain_for(&offer).unwrap();
    assert_eq!(
        eip3009::recover(&exact.authorization, &domain, &exact.signature).unwrap(),
        wallet.address()
    );
}

#[tokio::test]
async fn a_wrong_api_key_is_circles_typed_status_error() {
    let wallet = PrivateKeySigner::random();
    let (base, mock) = serve(mock(wallet.clone())).await;
    let circle = signer(&base, "TEST_API_KEY:wrong:wrong", wallet.address());

    let error = circle
        .sign_typed_data_with_circle(&document(wallet.address()))
        .await
        .unwrap_err();
    match &error {
        CircleWalletError::Status { status, code, message } => {
            assert_eq!(*status, 401);
            assert_eq!(*code, Some(401));
            assert_eq!(
                message,
                "Malformed authorization. Are the credentials properly encoded?"
            );
        }
        other => panic!("expected a Status error, got {other:?}"),
    }
    assert!(!error.to_string().contains("wrong:wrong"));

    // Through alloy's `Signer`, the same error is inside `Error::Other`.
    let error = circle
        .sign_dynamic_typed_data(&document(wallet.address()))
        .await
        .unwrap_err();
    assert!(matches!(
        circle_error_of(&error),
        CircleWalletError::Status {
            status: 401,
            code: Some(401),
            ..
        }
    ));
    assert!(mock.ciphertexts.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_wrong_entity_secret_is_refused_by_circle() {
    let wallet = PrivateKeySigner::random();
    let (base, _mock) = serve(mock(wallet.clone())).await;
    install_crypto();
    let config = CircleWalletConfig::new(API_KEY, "11".repeat(32), WALLET_ID, wallet.address()).with_base_url(&base);
    let circle = CircleWalletSigner::new(config).unwrap();

    let error = circle
        .sign_typed_data_with_circle(&document(wallet.address()))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CircleWalletError::Status { status: 400, code: Some(2), message } if message.contains("entity secret")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_signature_by_another_key_is_wrong_signer() {
    let wallet = PrivateKeySigner::random();
    let impostor = PrivateKeySigner::random();
    let (base, _mock) = serve(mock(impostor.clone())).await;
    let circle = signer(&base, API_KEY, wallet.address());

    let error = circle
        .sign_typed_data_with_circle(&document(wallet.address()))
        .await
        .unwrap_err();
    match error {
        CircleWalletError::WrongSigner { expected, got } => {
            assert_eq!(expected, wallet.address());
            assert_eq!(got, impostor.address());
        }
        other => panic!("expected WrongSigner, got {other:?}"),
    }

    // `pay` refuses too: no payment is made with a signature that is not the payer's.
    let error = eip3009::pay(&circle, &requirement(), None, NOW, B256::repeat_byte(4))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("recovers to"), "{error}");
}

#[tokio::test]
async fn the_entity_public_key_is_fetched_once_across_signatures() {
    let wallet = PrivateKeySigner::random();
    let mut circle_mock = mock(wallet.clone());
    circle_mock.public_pem = PUBLIC_SPKI_PEM; // SPKI is accepted as well as Circle's PKCS#1
    let (base, mock) = serve(circle_mock).await;
    let circle = signer(&base, API_KEY, wallet.address());
    let clone = circle.clone();

    let data = document(wallet.address());
    let (a, b, c) = tokio::join!(
        circle.sign_dynamic_typed_data(&data),
        clone.sign_dynamic_typed_data(&data),
        circle.sign_dynamic_typed_data(&data),
    );
    for signature in [a, b, c] {
        let signature = signature.unwrap();
        let hash = data.eip712_signing_hash().unwrap();
        assert_eq!(signature.recover_address_from_prehash(&hash).unwrap(), wallet.address());
    }
    circle.sign_dynamic_typed_data(&data).await.unwrap();

    assert_eq!(mock.public_key_fetches.load(Ordering::SeqCst), 1);
    let ciphertexts = mock.ciphertexts.lock().unwrap().clone();
    assert_eq!(ciphertexts.len(), 4);
    let distinct: std::collections::HashSet<_> = ciphertexts.iter().collect();
    assert_eq!(
        distinct.len(),
        4,
        "every request carries a fresh entitySecretCiphertext"
    );
}

#[tokio::test]
async fn bare_hashes_and_messages_are_unsupported() {
    let wallet = PrivateKeySigner::random();
    let circle = signer("http://127.0.0.1:9", API_KEY, wallet.address());
    let error = circle.sign_hash(&B256::repeat_byte(9)).await.unwrap_err();
    assert_eq!(error.unsupported(), Some(UnsupportedSignerOperation::SignHash));
    let error = circle.sign_message(b"hello").await.unwrap_err();
    assert_eq!(error.unsupported(), Some(UnsupportedSignerOperation::SignMessage));
}

#[tokio::test]
async fn chain_id_and_address_come_from_the_configuration() {
    let wallet = PrivateKeySigner::random();
    let mut circle = signer("http://127.0.0.1:9", API_KEY, wallet.address());
    assert_eq!(circle.address(), wallet.address());
    assert_eq!(circle.chain_id(), None);
    circle.set_chain_id(Some(5_042_002));
    assert_eq!(circle.chain_id(), Some(5_042_002));
    assert_eq!(circle.with_chain_id(None).chain_id(), None);
}

#[tokio::test]
async fn debug_output_never_shows_the_api_key_or_the_entity_secret() {
    install_crypto();
    let wallet = PrivateKeySigner::random();
    let config = CircleWalletConfig::new(API_KEY, ENTITY_SECRET, WALLET_ID, wallet.address());
    let circle = CircleWalletSigner::new(config.clone()).unwrap();
    for shown in [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{circle:?}"),
        format!("{circle:#?}"),
    ] {
        assert!(!shown.contains(API_KEY), "{shown}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(!shown.contains(ENTITY_SECRET), "{shown}");
        assert!(!shown.contains(&ENTITY_SECRET[..16]), "{shown}");
        assert!(shown.contains(WALLET_ID), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    // A malformed entity secret is refused without being echoed.
    let bad = format!("{}zz", &ENTITY_SECRET[..62]);
    let error =
        CircleWalletSigner::new(CircleWalletConfig::new(API_KEY, bad, WALLET_ID, wallet.address())).unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(matches!(error, CircleWalletError::Config(_)));
    assert!(
        !shown.contains(&ENTITY_SECRET[..16]) && !shown.contains(API_KEY),
        "{shown}"
    );
}
