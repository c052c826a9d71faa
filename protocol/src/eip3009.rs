//! EIP-3009 `TransferWithAuthorization`: the EIP-712 typed data an `exact` EVM payment signs, its domain taken
//! from a requirement, the signing hash, signing with any alloy signer, strict signer recovery (65 bytes,
//! `v` ∈ {27, 28}, low `s` — what FiatToken itself accepts), a builder that makes a payment for an offer, and the
//! unsigned authorization and digest for a contract-wallet payer (EIP-1271) that approves the digest itself.

use alloy::dyn_abi::TypedData;
use alloy::primitives::{Address, B256, Bytes, U256, b256};
use alloy::signers::Signer;
use alloy::sol;
use alloy::sol_types::{Eip712Domain, SolStruct};

use crate::network::{NetworkError, parse_caip2};
use crate::version::Version;
use crate::wire::{ExactEvmAuthorization, ExactEvmPayload, Extra, ResourceInfo, v1, v2};

sol! {
    /// The EIP-3009 struct, exactly as FiatToken hashes it.
    #[derive(Debug, PartialEq, Eq)]
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// `keccak256("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)")`.
pub const TRANSFER_WITH_AUTHORIZATION_TYPEHASH: B256 =
    b256!("0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267");

/// Half the secp256k1 group order: a signature with a larger `s` is malleable and refused.
const SECP256K1_HALF_N: U256 = U256::from_be_slice(&[
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x5d, 0x57, 0x6e,
    0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
]);

/// `validAfter` is set this far in the past, so a clock slightly ahead of the chain's does not make a fresh
/// payment "not yet valid".
pub const VALID_AFTER_SLACK_SECONDS: u64 = 600;

/// Why typed data could not be built, signed or recovered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Eip3009Error {
    #[error("the requirement's `extra` lacks the token's EIP-712 name and version")]
    MissingDomain,
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error("an ECDSA signature is 65 bytes, this one is {0}")]
    SignatureLength(usize),
    #[error("signature `v` must be 27 or 28, it is {0}")]
    InvalidV(u8),
    #[error("signature `s` is in the upper half of the curve order (malleable)")]
    HighS,
    #[error("no public key recovers from this signature")]
    Unrecoverable,
    #[error("the signer failed: {0}")]
    Signer(String),
    #[error("validBefore overflows: now {now} + maxTimeoutSeconds {timeout}")]
    TimeOverflow { now: u64, timeout: u64 },
}

/// An EIP-712 domain with all four fields.
pub fn domain(name: &str, version: &str, chain_id: u64, verifying_contract: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some(name.to_owned().into()),
        Some(version.to_owned().into()),
        Some(U256::from(chain_id)),
        Some(verifying_contract),
        None,
    )
}

/// The domain a payment for this offer is signed under: `extra.name`/`extra.version`, the chain id of its
/// CAIP-2 network, and the asset as verifying contract.
pub fn domain_for(requirement: &v2::PaymentRequirements) -> Result<Eip712Domain, Eip3009Error> {
    let chain_id = parse_caip2(&requirement.network)?;
    domain_from_extra(requirement.extra.as_ref(), chain_id, requirement.asset)
}

/// The same for a v1 offer, whose network name the caller has resolved to a chain id.
pub fn domain_for_v1(requirement: &v1::PaymentRequirements, chain_id: u64) -> Result<Eip712Domain, Eip3009Error> {
    domain_from_extra(requirement.extra.as_ref(), chain_id, requirement.asset)
}

fn domain_from_extra(extra: Option<&Extra>, chain_id: u64, asset: Address) -> Result<Eip712Domain, Eip3009Error> {
    match extra {
        Some(Extra {
            name: Some(name),
            version: Some(version),
            ..
        }) => Ok(domain(name, version, chain_id, asset)),
        _ => Err(Eip3009Error::MissingDomain),
    }
}

/// The typed struct for a wire authorization.
pub fn typed(authorization: &ExactEvmAuthorization) -> TransferWithAuthorization {
    TransferWithAuthorization {
        from: authorization.from,
        to: authorization.to,
        value: authorization.value,
        validAfter: authorization.valid_after,
        validBefore: authorization.valid_before,
        nonce: authorization.nonce,
    }
}

/// The EIP-712 digest the buyer signs.
pub fn signing_hash(authorization: &ExactEvmAuthorization, domain: &Eip712Domain) -> B256 {
    typed(authorization).eip712_signing_hash(domain)
}

/// The same digest from a domain separator computed once (`domain.separator()`): `keccak256(0x1901 ‖
/// separator ‖ hashStruct(authorization))`.
pub fn signing_hash_under(authorization: &ExactEvmAuthorization, separator: B256) -> B256 {
    let mut preimage = [0u8; 66];
    preimage[0] = 0x19;
    preimage[1] = 0x01;
    preimage[2..34].copy_from_slice(separator.as_slice());
    preimage[34..].copy_from_slice(typed(authorization).eip712_hash_struct().as_slice());
    alloy::primitives::keccak256(preimage)
}

/// The authorization as EIP-712 typed data (the `eth_signTypedData_v4` document): what a signer that cannot
/// sign bare hashes — a remote wallet such as Circle's developer-controlled wallets — is asked to sign.
pub fn typed_data(authorization: &ExactEvmAuthorization, domain: &Eip712Domain) -> Result<TypedData, Eip3009Error> {
    let field = |name: &str, kind: &str| serde_json::json!({"name": name, "type": kind});
    let document = serde_json::json!({
        "types": {
            "EIP712Domain": [
                field("name", "string"),
                field("version", "string"),
                field("chainId", "uint256"),
                field("verifyingContract", "address"),
            ],
            "TransferWithAuthorization": [
                field("from", "address"),
                field("to", "address"),
                field("value", "uint256"),
                field("validAfter", "uint256"),
                field("validBefore", "uint256"),
                field("nonce", "bytes32"),
            ],
        },
        "primaryType": "TransferWithAuthorization",
        "domain": domain,
        "message": {
            "from": authorization.from,
            "to": authorization.to,
            "value": authorization.value.to_string(),
            "validAfter": authorization.valid_after.to_string(),
            "validBefore": authorization.valid_before.to_string(),
            "nonce": authorization.nonce,
        },
    });
    serde_json::from_value(document).map_err(|e| Eip3009Error::Signer(format!("typed data: {e}")))
}

/// Signs an authorization; the result is 65 bytes `r || s || v` with `v` ∈ {27, 28}. The signer is handed the
/// typed data (not a bare hash), so remote wallets that sign only EIP-712 documents work too.
pub async fn sign<S>(
    signer: &S,
    authorization: &ExactEvmAuthorization,
    domain: &Eip712Domain,
) -> Result<Bytes, Eip3009Error>
where
    S: Signer + ?Sized + Send + Sync,
{
    let document = typed_data(authorization, domain)?;
    let signature = signer
        .sign_dynamic_typed_data(&document)
        .await
        .map_err(|e| Eip3009Error::Signer(e.to_string()))?;
    Ok(Bytes::copy_from_slice(&signature.as_bytes()))
}

/// The address that signed `authorization` under `domain`, with FiatToken's own rules: exactly 65 bytes,
/// `v` of 27 or 28, and `s` in the lower half of the order.
pub fn recover(
    authorization: &ExactEvmAuthorization,
    domain: &Eip712Domain,
    signature: &[u8],
) -> Result<Address, Eip3009Error> {
    recover_prehash(&signing_hash(authorization, domain), signature)
}

/// Strict ECDSA recovery of the signer of a 32-byte digest (libsecp256k1).
pub fn recover_prehash(hash: &B256, signature: &[u8]) -> Result<Address, Eip3009Error> {
    let bytes: &[u8; 65] = signature
        .try_into()
        .map_err(|_| Eip3009Error::SignatureLength(signature.len()))?;
    let v = bytes[64];
    if v != 27 && v != 28 {
        return Err(Eip3009Error::InvalidV(v));
    }
    let s = U256::from_be_slice(&bytes[32..64]);
    if s > SECP256K1_HALF_N {
        return Err(Eip3009Error::HighS);
    }
    // libsecp256k1 (C) recovers several times faster than pure-Rust k256, and recovery is on every verify.
    let recovery_id =
        secp256k1::ecdsa::RecoveryId::try_from(i32::from(v - 27)).map_err(|_| Eip3009Error::InvalidV(v))?;
    let signature = secp256k1::ecdsa::RecoverableSignature::from_compact(&bytes[..64], recovery_id)
        .map_err(|_| Eip3009Error::Unrecoverable)?;
    let public_key = signature
        .recover(secp256k1::Message::from_digest(hash.0))
        .map_err(|_| Eip3009Error::Unrecoverable)?;
    Ok(Address::from_raw_public_key(&public_key.serialize_uncompressed()[1..]))
}

/// A fresh random 32-byte nonce.
pub fn random_nonce() -> B256 {
    B256::random()
}

/// The authorization a buyer signs for an offer: `validAfter = now − 600`, `validBefore = now +
/// maxTimeoutSeconds`.
pub fn build_authorization(
    from: Address,
    pay_to: Address,
    amount: U256,
    max_timeout_seconds: u64,
    now: u64,
    nonce: B256,
) -> Result<ExactEvmAuthorization, Eip3009Error> {
    let valid_before = now.checked_add(max_timeout_seconds).ok_or(Eip3009Error::TimeOverflow {
        now,
        timeout: max_timeout_seconds,
    })?;
    Ok(ExactEvmAuthorization {
        from,
        to: pay_to,
        value: amount,
        valid_after: U256::from(now.saturating_sub(VALID_AFTER_SLACK_SECONDS)),
        valid_before: U256::from(valid_before),
        nonce,
    })
}

/// The authorization for a v2 offer paid by `from`, unsigned, and the EIP-712 digest it is signed under: what a
/// contract wallet (an EIP-1271 payer such as a `Treasury`) approves itself instead of an ECDSA signature.
pub fn unsigned(
    from: Address,
    requirement: &v2::PaymentRequirements,
    now: u64,
    nonce: B256,
) -> Result<(ExactEvmAuthorization, B256), Eip3009Error> {
    let domain = domain_for(requirement)?;
    let authorization = build_authorization(
        from,
        requirement.pay_to,
        requirement.amount,
        requirement.max_timeout_seconds,
        now,
        nonce,
    )?;
    let digest = signing_hash(&authorization, &domain);
    Ok((authorization, digest))
}

/// The same for a v1 offer on the chain the caller resolved its network name to.
pub fn unsigned_v1(
    from: Address,
    requirement: &v1::PaymentRequirements,
    chain_id: u64,
    now: u64,
    nonce: B256,
) -> Result<(ExactEvmAuthorization, B256), Eip3009Error> {
    let domain = domain_for_v1(requirement, chain_id)?;
    let authorization = build_authorization(
        from,
        requirement.pay_to,
        requirement.max_amount_required,
        requirement.max_timeout_seconds,
        now,
        nonce,
    )?;
    let digest = signing_hash(&authorization, &domain);
    Ok((authorization, digest))
}

/// A v2 payment of `authorization` with `signature` (its `accepted` is a verbatim copy of the requirement).
pub fn payload(
    requirement: &v2::PaymentRequirements,
    resource: Option<ResourceInfo>,
    authorization: ExactEvmAuthorization,
    signature: Bytes,
) -> v2::PaymentPayload {
    v2::PaymentPayload {
        x402_version: Version,
        resource,
        accepted: requirement.clone(),
        payload: ExactEvmPayload {
            signature,
            authorization,
        }
        .into(),
        extensions: None,
    }
}

/// A v1 payment of `authorization` with `signature`.
pub fn payload_v1(
    requirement: &v1::PaymentRequirements,
    authorization: ExactEvmAuthorization,
    signature: Bytes,
) -> v1::PaymentPayload {
    v1::PaymentPayload {
        x402_version: Version,
        scheme: requirement.scheme.clone(),
        network: requirement.network.clone(),
        payload: ExactEvmPayload {
            signature,
            authorization,
        }
        .into(),
    }
}

/// Makes and signs a v2 payment for `requirement` (its `accepted` is a verbatim copy of the requirement).
pub async fn pay<S>(
    signer: &S,
    requirement: &v2::PaymentRequirements,
    resource: Option<ResourceInfo>,
    now: u64,
    nonce: B256,
) -> Result<v2::PaymentPayload, Eip3009Error>
where
    S: Signer + ?Sized + Send + Sync,
{
    let domain = domain_for(requirement)?;
    let (authorization, _) = unsigned(signer.address(), requirement, now, nonce)?;
    let signature = sign(signer, &authorization, &domain).await?;
    Ok(payload(requirement, resource, authorization, signature))
}

/// Makes and signs a v1 payment for `requirement` on the chain the caller resolved its network name to.
pub async fn pay_v1<S>(
    signer: &S,
    requirement: &v1::PaymentRequirements,
    chain_id: u64,
    now: u64,
    nonce: B256,
) -> Result<v1::PaymentPayload, Eip3009Error>
where
    S: Signer + ?Sized + Send + Sync,
{
    let domain = domain_for_v1(requirement, chain_id)?;
    let (authorization, _) = unsigned_v1(signer.address(), requirement, chain_id, now, nonce)?;
    let signature = sign(signer, &authorization, &domain).await?;
    Ok(payload_v1(requirement, authorization, signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_typed_data_document_hashes_like_the_static_struct() {
        let authorization = build_authorization(
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            U256::from(10_000),
            60,
            1_740_672_089,
            B256::repeat_byte(3),
        )
        .unwrap();
        let domain = domain("USDC", "2", 5_042_002, crate::network::ARC_USDC);
        let document = typed_data(&authorization, &domain).unwrap();
        assert_eq!(
            document.eip712_signing_hash().unwrap(),
            signing_hash(&authorization, &domain)
        );
        assert_eq!(
            signing_hash_under(&authorization, domain.separator()),
            signing_hash(&authorization, &domain)
        );
        let json = serde_json::to_value(&document).unwrap();
        assert_eq!(json["primaryType"], "TransferWithAuthorization");
        assert_eq!(json["message"]["value"], "10000");
    }

    #[tokio::test]
    async fn an_unsigned_authorization_is_what_pay_signs_with_from_set_to_the_payer() {
        let signer = alloy::signers::local::PrivateKeySigner::random();
        let requirement = v2::PaymentRequirements {
            scheme: "exact".into(),
            network: "eip155:5042002".into(),
            amount: U256::from(10_000),
            asset: crate::network::ARC_USDC,
            pay_to: Address::repeat_byte(2),
            max_timeout_seconds: 60,
            extra: Some(Extra {
                name: Some("USDC".into()),
                version: Some("2".into()),
                ..Default::default()
            }),
        };
        let (now, nonce) = (1_740_672_089, B256::repeat_byte(3));
        let treasury = Address::repeat_byte(9);
        let (authorization, digest) = unsigned(treasury, &requirement, now, nonce).unwrap();
        assert_eq!(authorization.from, treasury);
        assert_eq!(
            (authorization.to, authorization.value),
            (requirement.pay_to, requirement.amount)
        );
        assert_eq!(digest, signing_hash(&authorization, &domain_for(&requirement).unwrap()));
        // `pay` signs the same authorization for its own address: the digest differs only by `from`.
        let paid = pay(&signer, &requirement, None, now, nonce).await.unwrap();
        let exact = paid.payload.exact_evm().unwrap();
        let (own, own_digest) = unsigned(signer.address(), &requirement, now, nonce).unwrap();
        assert_eq!(exact.authorization, own);
        assert_eq!(
            recover_prehash(&own_digest, &exact.signature).unwrap(),
            signer.address()
        );
        assert_ne!(own_digest, digest);
        let carried = payload(&requirement, None, authorization.clone(), Bytes::new());
        assert_eq!(carried.payload.exact_evm().unwrap().authorization, authorization);
        assert!(carried.payload.exact_evm().unwrap().signature.is_empty());
    }
}
