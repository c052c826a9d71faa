//! Check 4: the authorization was signed by `from` — as the token itself will decide: ECDSA (65 bytes, low `s`,
//! `v` ∈ {27, 28}) when `from` has no code, EIP-1271 `isValidSignature` when it is a contract. ERC-6492
//! wrapped signatures (for wallets not yet deployed) are refused with their own message unless their factory
//! is allow-listed.

use alloy::primitives::{Address, b256};
use protocol::{eip3009, reason};

use super::super::{Invalid, Payment};
use crate::chain::ChainSnapshot;

/// The 32-byte suffix that marks an ERC-6492 wrapped signature.
const ERC6492_MAGIC: [u8; 32] = b256!("0x6492649264926492649264926492649264926492649264926492649264926492").0;

/// The factory of an ERC-6492 signature `abi.encode(factory, factoryCalldata, innerSignature) ‖ magic`.
fn erc6492_factory(signature: &[u8]) -> Option<Address> {
    let body = signature.strip_suffix(&ERC6492_MAGIC)?;
    body.get(12..32).map(Address::from_slice)
}

pub fn refuse_unlisted_erc6492(payment: &Payment, allowed: &[Address]) -> Result<(), Invalid> {
    if !payment.signature.ends_with(&ERC6492_MAGIC) {
        return Ok(());
    }
    match erc6492_factory(&payment.signature) {
        Some(factory) if allowed.contains(&factory) => Err(payment.invalid(
            reason::INVALID_EXACT_EVM_SIGNATURE,
            format!("ERC-6492 signature from allow-listed factory {factory}: deploy the wallet before paying"),
        )),
        Some(factory) => Err(payment.invalid(
            reason::INVALID_EXACT_EVM_SIGNATURE,
            format!("ERC-6492 wrapped signatures are not accepted (factory {factory} is not allow-listed)"),
        )),
        None => Err(payment.invalid(reason::INVALID_EXACT_EVM_SIGNATURE, "malformed ERC-6492 signature")),
    }
}

pub fn check(payment: &Payment, snapshot: &ChainSnapshot) -> Result<(), Invalid> {
    let from = payment.authorization.from;
    if snapshot.from_has_code {
        return if snapshot.erc1271_valid {
            Ok(())
        } else {
            Err(payment.invalid(
                reason::INVALID_EXACT_EVM_SIGNATURE,
                format!("contract wallet {from} does not accept this signature (EIP-1271)"),
            ))
        };
    }
    match eip3009::recover_prehash(&payment.signing_hash, &payment.signature) {
        Ok(signer) if signer == from => Ok(()),
        Ok(signer) => Err(payment.invalid(
            reason::INVALID_EXACT_EVM_SIGNATURE,
            format!("signed by {signer}, not by the payer {from} (or under another EIP-712 domain)"),
        )),
        Err(e) => Err(payment.invalid(reason::INVALID_EXACT_EVM_SIGNATURE, e.to_string())),
    }
}
