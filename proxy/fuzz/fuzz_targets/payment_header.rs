//! Fuzzes the x402 header decoders with arbitrary bytes, twice: as the header value itself (length, base64,
//! then JSON) and as the JSON inside a well-formed base64 header (to reach the JSON and shape checks). No input
//! may make them panic, and a document they accept must encode to a header they accept again.

#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use protocol::header::{
    decode_payment, decode_payment_required, decode_payment_required_v2, decode_payment_response, encode,
};

fn decode_all(value: &[u8]) {
    if let Ok(payment) = decode_payment(value) {
        let again = encode(&payment);
        assert!(
            decode_payment(again.as_bytes()).is_ok(),
            "payment does not survive re-encoding: {again}"
        );
    }
    if let Ok(offer) = decode_payment_required(value) {
        let again = encode(&offer);
        assert!(
            decode_payment_required(again.as_bytes()).is_ok(),
            "offer does not survive re-encoding: {again}"
        );
    }
    if let Ok(offer) = decode_payment_required_v2(value) {
        let again = encode(&offer);
        assert!(
            decode_payment_required_v2(again.as_bytes()).is_ok(),
            "v2 offer does not survive re-encoding: {again}"
        );
    }
    if let Ok(receipt) = decode_payment_response(value) {
        let again = encode(&receipt);
        assert!(
            decode_payment_response(again.as_bytes()).is_ok(),
            "receipt does not survive re-encoding: {again}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    decode_all(data);
    decode_all(STANDARD.encode(data).as_bytes());
});
