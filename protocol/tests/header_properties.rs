//! Property tests of the header codecs: encoding then decoding any document gives it back, and no input —
//! arbitrary bytes, arbitrary base64, arbitrary JSON, JSON that claims a version — makes a decoder panic.

use alloy::primitives::{Address, B256, Bytes, U256};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use protocol::header::{self, DecodeError};
use protocol::version::Version;
use protocol::wire::{
    ExactEvmAuthorization, ExactEvmPayload, Extra, JsonObject, PaymentPayload, PaymentRequired, ResourceInfo,
    SchemePayload, SettleResponse, VerifyRequest, v1, v2,
};
use serde_json::Value;

fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address::from)
}

fn u256() -> impl Strategy<Value = U256> {
    prop_oneof![
        any::<u64>().prop_map(U256::from),
        any::<[u8; 32]>().prop_map(U256::from_be_bytes)
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9 :/._~-]{0,24}", "\\PC{0,8}"]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(text(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = JsonObject> {
    btree_map("[a-z]{1,8}", json(), 0..4).prop_map(|m| m.into_iter().collect())
}

fn extra() -> impl Strategy<Value = Option<Extra>> {
    proptest::option::of(
        (proptest::option::of(text()), proptest::option::of(text()), object()).prop_map(
            |(name, version, mut other)| {
                other.remove("name");
                other.remove("version");
                Extra { name, version, other }
            },
        ),
    )
}

fn requirement() -> impl Strategy<Value = v2::PaymentRequirements> {
    (text(), text(), u256(), address(), address(), any::<u64>(), extra()).prop_map(
        |(scheme, network, amount, asset, pay_to, max_timeout_seconds, extra)| v2::PaymentRequirements {
            scheme,
            network,
            amount,
            asset,
            pay_to,
            max_timeout_seconds,
            extra,
        },
    )
}

fn scheme_payload() -> impl Strategy<Value = SchemePayload> {
    let exact = (
        vec(any::<u8>(), 0..200),
        address(),
        address(),
        u256(),
        u256(),
        u256(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(sig, from, to, value, valid_after, valid_before, nonce)| {
            SchemePayload::ExactEvm(ExactEvmPayload {
                signature: Bytes::from(sig),
                authorization: ExactEvmAuthorization {
                    from,
                    to,
                    value,
                    valid_after,
                    valid_before,
                    nonce: B256::from(nonce),
                },
            })
        });
    let other = btree_map("[a-z]{1,8}", json(), 0..4)
        .prop_filter("not the exact shape", |m| {
            !(m.contains_key("signature") && m.contains_key("authorization"))
        })
        .prop_map(|m| SchemePayload::Other(m.into_iter().collect()));
    prop_oneof![3 => exact, 1 => other]
}

fn resource() -> impl Strategy<Value = ResourceInfo> {
    (text(), proptest::option::of(text()), proptest::option::of(text())).prop_map(|(url, description, mime_type)| {
        ResourceInfo {
            url,
            description,
            mime_type,
        }
    })
}

fn payment() -> impl Strategy<Value = PaymentPayload> {
    let v2 = (
        proptest::option::of(resource()),
        requirement(),
        scheme_payload(),
        proptest::option::of(object()),
    )
        .prop_map(|(resource, accepted, payload, extensions)| {
            PaymentPayload::V2(v2::PaymentPayload {
                x402_version: Version,
                resource,
                accepted,
                payload,
                extensions,
            })
        });
    let v1 = (text(), text(), scheme_payload()).prop_map(|(scheme, network, payload)| {
        PaymentPayload::V1(v1::PaymentPayload {
            x402_version: Version,
            scheme,
            network,
            payload,
        })
    });
    prop_oneof![v2, v1]
}

fn settle_response() -> impl Strategy<Value = SettleResponse> {
    (
        any::<bool>(),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(address()),
        text(),
        text(),
        proptest::option::of(u256()),
    )
        .prop_map(
            |(success, error_reason, error_message, payer, transaction, network, amount)| SettleResponse {
                success,
                error_reason,
                error_message,
                payer,
                transaction,
                network,
                amount,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn payment_encode_then_decode_is_identity(p in payment()) {
        let encoded = header::encode(&p);
        prop_assume!(encoded.len() <= header::MAX_HEADER_LEN);
        prop_assert_eq!(header::decode_payment(encoded.as_bytes()), Ok(p));
    }

    #[test]
    fn offer_encode_then_decode_is_identity(error in proptest::option::of(text()), resource in resource(), accepts in vec(requirement(), 0..4), extensions in proptest::option::of(object())) {
        let offer = PaymentRequired::V2(v2::PaymentRequired { x402_version: Version, error, resource, accepts, extensions });
        let encoded = header::encode(&offer);
        prop_assume!(encoded.len() <= header::MAX_HEADER_LEN);
        prop_assert_eq!(header::decode_payment_required(encoded.as_bytes()), Ok(offer));
    }

    #[test]
    fn receipt_encode_then_decode_is_identity(r in settle_response()) {
        prop_assert_eq!(header::decode_payment_response(header::encode(&r).as_bytes()), Ok(r));
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..2048)) {
        let _ = header::decode_payment(&bytes);
        let _ = header::decode_payment_required(&bytes);
        let _ = header::decode_payment_response(&bytes);
        let _ = header::decode_json::<VerifyRequest>(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_base64(bytes in vec(any::<u8>(), 0..2048)) {
        let encoded = header::encode(&Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        prop_assert!(header::decode_payment(encoded.as_bytes()).is_err());
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let _ = header::decode_payment(raw.as_bytes());
        let _ = header::decode_payment_response(raw.as_bytes());
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_json(value in json(), version in prop_oneof![Just(None), (0u64..4).prop_map(Some)]) {
        let mut value = value;
        if let (Some(v), Value::Object(map)) = (version, &mut value) {
            map.insert("x402Version".into(), Value::from(v));
        }
        let encoded = header::encode(&value);
        let _ = header::decode_payment(encoded.as_bytes());
        let _ = header::decode_payment_required(encoded.as_bytes());
        let _ = header::decode_payment_response(encoded.as_bytes());
        let bytes = serde_json::to_vec(&value).unwrap();
        match header::decode_json::<VerifyRequest>(&bytes) {
            Ok(_) | Err(DecodeError::WrongShape(_) | DecodeError::MissingVersion | DecodeError::UnsupportedVersion(_)) => {}
            Err(other) => prop_assert!(false, "valid JSON reported as {other:?}"),
        }
    }

    #[test]
    fn over_long_headers_are_refused_by_length(extra_len in 1usize..4096) {
        let long = vec![b'A'; header::MAX_HEADER_LEN + extra_len];
        prop_assert_eq!(header::decode_payment(&long), Err(DecodeError::TooLong { len: long.len(), max: header::MAX_HEADER_LEN }));
    }
}
