//! An owner's approval of a local treasury proposal: an EIP-712 signature of
//! `TreasuryProposal(uint256 id,address to,uint256 amount,bytes32 memoHash,uint64 expiresAt)` under the domain
//! `{name: "NerdCabal Local Treasury", version: "1", chainId: <the network's>, verifyingContract: <the
//! agent's address>}`, so a signature is bound to one proposal of one agent on one chain. Verification
//! recovers the signer; the caller checks it is a configured owner.

use alloy::primitives::{Address, B256, Signature, U256, keccak256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolStruct, eip712_domain};

alloy::sol! {
    /// The typed data an owner signs.
    struct TreasuryProposal {
        uint256 id;
        address to;
        uint256 amount;
        bytes32 memoHash;
        uint64 expiresAt;
    }
}

/// Where a signature applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalDomain {
    pub chain_id: u64,
    /// The agent whose treasury the proposal spends from.
    pub agent: Address,
}

/// What is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFields<'a> {
    pub id: u64,
    pub to: Address,
    pub amount: U256,
    pub memo: &'a str,
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalSignatureError {
    #[error("the approval signature cannot be read: {0}")]
    Malformed(String),
    #[error("cannot sign the approval: {0}")]
    Sign(String),
}

/// The EIP-712 digest an owner signs for `fields` in `domain`.
pub fn signing_hash(domain: ApprovalDomain, fields: &SignedFields<'_>) -> B256 {
    let typed = TreasuryProposal {
        id: U256::from(fields.id),
        to: fields.to,
        amount: fields.amount,
        memoHash: keccak256(fields.memo.as_bytes()),
        expiresAt: fields.expires_at,
    };
    let domain = eip712_domain! {
        name: "NerdCabal Local Treasury",
        version: "1",
        chain_id: domain.chain_id,
        verifying_contract: domain.agent,
    };
    typed.eip712_signing_hash(&domain)
}

/// `owner`'s signature of `fields`, as 0x-prefixed hex (65 bytes, r‖s‖v).
pub fn sign(
    owner: &PrivateKeySigner,
    domain: ApprovalDomain,
    fields: &SignedFields<'_>,
) -> Result<String, ApprovalSignatureError> {
    let signature = owner
        .sign_hash_sync(&signing_hash(domain, fields))
        .map_err(|e| ApprovalSignatureError::Sign(e.to_string()))?;
    Ok(format!("0x{}", alloy::hex::encode(signature.as_bytes())))
}

/// Who signed `signature` (hex) over `fields` in `domain`.
pub fn recover(
    signature: &str,
    domain: ApprovalDomain,
    fields: &SignedFields<'_>,
) -> Result<Address, ApprovalSignatureError> {
    let bytes = alloy::hex::decode(signature.trim()).map_err(|e| ApprovalSignatureError::Malformed(e.to_string()))?;
    let signature =
        Signature::try_from(bytes.as_slice()).map_err(|e| ApprovalSignatureError::Malformed(e.to_string()))?;
    signature
        .recover_address_from_prehash(&signing_hash(domain, fields))
        .map_err(|e| ApprovalSignatureError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(memo: &str) -> SignedFields<'_> {
        SignedFields {
            id: 7,
            to: Address::repeat_byte(9),
            amount: U256::from(6_000_000u64),
            memo,
            expires_at: 1_800_000_000,
        }
    }

    #[test]
    fn a_signature_recovers_its_owner_and_only_for_what_was_signed() {
        let owner = PrivateKeySigner::random();
        let domain = ApprovalDomain {
            chain_id: 31_337,
            agent: Address::repeat_byte(1),
        };
        let signature = sign(&owner, domain, &fields("rent")).unwrap();
        assert_eq!(recover(&signature, domain, &fields("rent")).unwrap(), owner.address());
        // Another memo, amount, agent or chain: the same signature recovers someone else.
        assert_ne!(recover(&signature, domain, &fields("rent!")).unwrap(), owner.address());
        let mut dearer = fields("rent");
        dearer.amount += U256::from(1u8);
        assert_ne!(recover(&signature, domain, &dearer).unwrap(), owner.address());
        let other_agent = ApprovalDomain {
            agent: Address::repeat_byte(2),
            ..domain
        };
        assert_ne!(
            recover(&signature, other_agent, &fields("rent")).unwrap(),
            owner.address()
        );
        let other_chain = ApprovalDomain { chain_id: 1, ..domain };
        assert_ne!(
            recover(&signature, other_chain, &fields("rent")).unwrap(),
            owner.address()
        );
        assert!(matches!(
            recover("0x1234", domain, &fields("rent")),
            Err(ApprovalSignatureError::Malformed(_))
        ));
    }
}
