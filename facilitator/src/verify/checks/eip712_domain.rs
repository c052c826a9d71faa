//! Check 3: `extra.name` and `extra.version` are present and equal to the token's own `name()` and
//! `version()` (read once per asset and cached), so the buyer signed under the domain the token checks.

use protocol::reason;

use super::super::{Invalid, Payment};
use crate::chain::TokenDomain;

pub fn present(payment: &Payment) -> Result<(), Invalid> {
    match &payment.extra {
        Some(extra) if extra.name.is_some() && extra.version.is_some() => Ok(()),
        _ => Err(payment.invalid(
            reason::INVALID_EXACT_EVM_MISSING_EIP712_DOMAIN,
            "requirements.extra must carry the token's EIP-712 name and version",
        )),
    }
}

pub fn matches_token(payment: &Payment, token: &TokenDomain) -> Result<(), Invalid> {
    let extra = payment.extra.as_ref();
    let name = extra.and_then(|e| e.name.as_deref()).unwrap_or_default();
    let version = extra.and_then(|e| e.version.as_deref()).unwrap_or_default();
    if name != token.name {
        return Err(payment.invalid(
            reason::INVALID_EXACT_EVM_TOKEN_NAME_MISMATCH,
            format!("extra.name `{name}` but the token's EIP-712 name is `{}`", token.name),
        ));
    }
    if version != token.version {
        return Err(payment.invalid(
            reason::INVALID_EXACT_EVM_TOKEN_VERSION_MISMATCH,
            format!(
                "extra.version `{version}` but the token's EIP-712 version is `{}`",
                token.version
            ),
        ));
    }
    Ok(())
}
