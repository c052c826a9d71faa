//! The v1 and v2 documents of `x402.md` §2–3 parse into our types and serialise back to the same JSON; unknown
//! keys in `extra` and `extensions` survive; optional fields stay out when absent.

use protocol::header::{self, DecodeError};
use protocol::wire::{
    DiscoveryResponse, PaymentPayload, PaymentRequired, SettleResponse, SupportedResponse, VerifyRequest,
    VerifyResponse, v1, v2,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn round_trip<T: Serialize + DeserializeOwned>(example: Value) -> T {
    let parsed: T = serde_json::from_value(example.clone()).unwrap_or_else(|e| panic!("{e}: {example}"));
    assert_eq!(
        serde_json::to_value(&parsed).unwrap(),
        example,
        "re-serialised JSON differs"
    );
    parsed
}

fn v2_requirement() -> Value {
    json!({"scheme":"exact","network":"eip155:5042002","amount":"10000",
        "asset":"0x3600000000000000000000000000000000000000","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
        "maxTimeoutSeconds":60,"extra":{"name":"USDC","version":"2"}})
}

fn exact_payload() -> Value {
    json!({"signature":"0x2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608a2ce6496642e377d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b571c",
        "authorization":{"from":"0x857b06519E91e3A54538791bDbb0E22373e36b66","to":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
        "value":"10000","validAfter":"1740672089","validBefore":"1740672154",
        "nonce":"0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"}})
}

fn v2_payload() -> Value {
    json!({"x402Version":2,"resource":{"url":"https://api.example.com/data","description":"Market data","mimeType":"application/json"},
        "accepted":v2_requirement(),"payload":exact_payload(),"extensions":{}})
}

fn v1_requirement() -> Value {
    json!({"scheme":"exact","network":"base-sepolia","maxAmountRequired":"10000","resource":"https://api.example.com/data",
        "description":"Market data","mimeType":"application/json","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
        "maxTimeoutSeconds":60,"asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","extra":{"name":"USDC","version":"2"}})
}

#[test]
fn v2_offer() {
    let offer: v2::PaymentRequired = round_trip(json!({"x402Version":2,"error":"PAYMENT-SIGNATURE header is required",
        "resource":{"url":"https://api.example.com/data","description":"Market data","mimeType":"application/json"},
        "accepts":[v2_requirement()],"extensions":{}}));
    assert_eq!(offer.accepts[0].amount, alloy::primitives::U256::from(10_000u64));
    assert_eq!(offer.accepts[0].extra.as_ref().unwrap().name.as_deref(), Some("USDC"));
}

#[test]
fn v2_payment_and_request_bodies() {
    let payment: v2::PaymentPayload = round_trip(v2_payload());
    assert!(payment.payload.exact_evm().is_some());
    let body = json!({"x402Version":2,"paymentPayload":v2_payload(),"paymentRequirements":v2_requirement()});
    let request: VerifyRequest = round_trip(body);
    assert_eq!(request.version(), 2);
}

#[test]
fn v1_offer_payment_and_request_bodies() {
    round_trip::<v1::PaymentRequired>(
        json!({"x402Version":1,"error":"X-PAYMENT header is required","accepts":[v1_requirement()]}),
    );
    let payment = json!({"x402Version":1,"scheme":"exact","network":"base-sepolia","payload":exact_payload()});
    round_trip::<v1::PaymentPayload>(payment.clone());
    let request: VerifyRequest =
        round_trip(json!({"x402Version":1,"paymentPayload":payment,"paymentRequirements":v1_requirement()}));
    assert_eq!(request.version(), 1);
    // A request that leaves out the top-level version is read by its payload's version.
    let bare = json!({"paymentPayload":{"x402Version":1,"scheme":"exact","network":"base-sepolia","payload":exact_payload()},
        "paymentRequirements":v1_requirement()});
    assert_eq!(serde_json::from_value::<VerifyRequest>(bare).unwrap().version(), 1);
}

#[test]
fn facilitator_answers() {
    round_trip::<VerifyResponse>(json!({"isValid":true,"payer":"0x857b06519E91e3A54538791bDbb0E22373e36b66"}));
    round_trip::<VerifyResponse>(
        json!({"isValid":false,"invalidReason":"invalid_exact_evm_signature","invalidMessage":"bad","payer":"0x857b06519E91e3A54538791bDbb0E22373e36b66"}),
    );
    round_trip::<SettleResponse>(
        json!({"success":true,"payer":"0x857b06519E91e3A54538791bDbb0E22373e36b66",
        "transaction":"0x1111111111111111111111111111111111111111111111111111111111111111","network":"eip155:5042002","amount":"10000"}),
    );
    let failed: SettleResponse = round_trip(
        json!({"success":false,"errorReason":"settlement_pending","transaction":"","network":"eip155:5042002"}),
    );
    assert_eq!(failed.transaction_hash(), None);
    round_trip::<SupportedResponse>(
        json!({"kinds":[{"x402Version":2,"scheme":"exact","network":"eip155:5042002"},
        {"x402Version":1,"scheme":"exact","network":"arc-testnet","extra":{"feePayer":"x"}}],
        "extensions":["bazaar"],"signers":{"eip155:*":["0x857b06519E91e3A54538791bDbb0E22373e36b66"]}}),
    );
    round_trip::<DiscoveryResponse>(
        json!({"x402Version":2,"items":[{"resource":"https://api.example.com/data","type":"http",
        "x402Version":2,"accepts":[v2_requirement()],"lastUpdated":"2026-11-01T00:00:00Z","metadata":{"category":"finance"}}],
        "pagination":{"limit":10,"offset":0,"total":1}}),
    );
}

#[test]
fn unknown_keys_survive_and_absent_options_stay_absent() {
    let mut requirement = v2_requirement();
    requirement["extra"]["feeBps"] = json!(5);
    requirement["extra"]["nested"] = json!({"a":[1,2]});
    let parsed: v2::PaymentRequirements = round_trip(requirement);
    assert_eq!(parsed.extra.unwrap().other["feeBps"], json!(5));
    let mut payload = v2_payload();
    payload["extensions"] = json!({"payment-identifier":{"id":"abc"},"x":1});
    round_trip::<v2::PaymentPayload>(payload);
    let mut bare = v2_requirement();
    bare.as_object_mut().unwrap().remove("extra");
    let parsed: v2::PaymentRequirements = round_trip(bare);
    assert!(!serde_json::to_string(&parsed).unwrap().contains("extra"));
}

#[test]
fn another_scheme_still_parses_so_it_can_be_refused_by_name() {
    let mut payload = v2_payload();
    payload["accepted"]["scheme"] = json!("upto");
    payload["payload"] = json!({"permit":"0xabc"});
    let parsed: v2::PaymentPayload = round_trip(payload);
    assert!(parsed.payload.exact_evm().is_none());
}

#[test]
fn wire_numbers_are_strict_decimal_strings() {
    for bad in ["-1", "0x10", "1e3", "", "1.5", " 1"] {
        let mut r = v2_requirement();
        r["amount"] = json!(bad);
        assert!(
            serde_json::from_value::<v2::PaymentRequirements>(r).is_err(),
            "{bad:?} accepted"
        );
    }
    let mut r = v2_requirement();
    r["amount"] = json!("115792089237316195423570985008687907853269984665640564039457584007913129639936");
    assert!(
        serde_json::from_value::<v2::PaymentRequirements>(r).is_err(),
        "2^256 accepted"
    );
    let mut numeric = exact_payload();
    numeric["authorization"]["validAfter"] = json!(1740672089u64);
    let parsed: protocol::ExactEvmPayload = serde_json::from_value(numeric).unwrap();
    assert_eq!(
        serde_json::to_value(&parsed).unwrap()["authorization"]["validAfter"],
        json!("1740672089"),
        "emitted as a string"
    );
}

#[test]
fn headers_encode_as_standard_base64_and_decode_with_typed_errors() {
    let payment: PaymentPayload = serde_json::from_value(v2_payload()).unwrap();
    let encoded = header::encode(&payment);
    assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    );
    assert_eq!(header::decode_payment(encoded.as_bytes()).unwrap(), payment);

    let offer: PaymentRequired =
        serde_json::from_value(json!({"x402Version":2,"resource":{"url":"u"},"accepts":[v2_requirement()]})).unwrap();
    assert_eq!(
        header::decode_payment_required(header::encode(&offer).as_bytes()).unwrap(),
        offer
    );

    let b64 = |v: &Value| header::encode(v);
    assert!(matches!(
        header::decode_payment(&vec![b'A'; 16 * 1024 + 4]),
        Err(DecodeError::TooLong { .. })
    ));
    assert_eq!(header::decode_payment(b"not base64!"), Err(DecodeError::NotBase64));
    let mut awkward = v2_payload();
    awkward["resource"]["description"] = json!("~~~ ??? >>>");
    let url_safe = base64_url(&serde_json::to_vec(&awkward).unwrap());
    assert_eq!(
        header::decode_payment(url_safe.as_bytes()),
        Err(DecodeError::NotBase64),
        "base64url is refused"
    );
    assert!(matches!(header::decode_payment(b"e3t7"), Err(DecodeError::NotJson(_))));
    assert!(matches!(
        header::decode_payment(b64(&json!({"x402Version":2,"accepted":{}})).as_bytes()),
        Err(DecodeError::WrongShape(_))
    ));
    let arr = header::decode_payment(b64(&json!([1, 2])).as_bytes());
    assert!(matches!(arr, Err(DecodeError::WrongShape(_))), "{arr:?}");
    assert_eq!(
        header::decode_payment(b64(&json!({"x402Version":3})).as_bytes()),
        Err(DecodeError::UnsupportedVersion(3))
    );
    assert_eq!(
        header::decode_payment(b64(&json!({"scheme":"exact"})).as_bytes()),
        Err(DecodeError::MissingVersion)
    );
    assert_eq!(
        DecodeError::UnsupportedVersion(3).reason(),
        protocol::reason::INVALID_X402_VERSION
    );
    assert_eq!(DecodeError::NotBase64.reason(), protocol::reason::INVALID_PAYLOAD);
    assert!(matches!(
        header::decode_payment_required_v2(b64(&json!({"x402Version":1,"accepts":[]})).as_bytes()),
        Err(DecodeError::UnsupportedVersion(1))
    ));
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    let s = base64::engine::general_purpose::URL_SAFE.encode(bytes);
    assert!(
        s.contains('-') || s.contains('_'),
        "the example must differ between alphabets"
    );
    s
}
