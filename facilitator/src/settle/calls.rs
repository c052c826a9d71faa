//! Reading a stored settlement transaction back: its nonce, fees and call, the authorizations the call
//! carries (one `transferWithAuthorization`, or a Multicall3 `aggregate3` of them), and the same call narrowed
//! to some of its payments — what a transaction is re-signed as when only part of it is still to settle.

use alloy::consensus::{Transaction, TxEnvelope};
use alloy::eips::eip2718::Decodable2718;
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use alloy::sol_types::SolCall;

use super::submit::{Call, Fees};
use crate::chain::token::{IFiatToken, IMulticall3};
use crate::ledger::SettlementKey;

/// Gas per `transferWithAuthorization` inside a batch (EOA signature), and a batch's own overhead.
pub const GAS_PER_EOA_CALL: u64 = 90_000;
pub const GAS_BATCH_BASE: u64 = 60_000;

/// A stored signed transaction, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTx {
    pub nonce: u64,
    pub fees: Fees,
    pub call: Call,
}

impl StoredTx {
    pub fn decode(raw: &Bytes) -> Option<Self> {
        let envelope = TxEnvelope::decode_2718(&mut raw.as_ref()).ok()?;
        let TxKind::Call(to) = envelope.kind() else {
            return None;
        };
        Some(StoredTx {
            nonce: envelope.nonce(),
            fees: Fees {
                max_fee_per_gas: envelope.max_fee_per_gas(),
                max_priority_fee_per_gas: envelope
                    .max_priority_fee_per_gas()
                    .unwrap_or(envelope.max_fee_per_gas()),
            },
            call: Call {
                to,
                input: envelope.input().clone(),
                gas: envelope.gas_limit(),
            },
        })
    }
}

/// One authorization a call carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    pub token: Address,
    pub payer: Address,
    pub nonce: B256,
    pub valid_before: U256,
    pub value: U256,
    eoa_signature: bool,
    call_data: Bytes,
}

impl Carried {
    /// Whether this is the payment of `key` (on the call's network).
    pub fn is(&self, key: &SettlementKey) -> bool {
        self.token == key.asset && self.payer == key.payer && self.nonce == key.nonce
    }
}

fn carried(token: Address, call_data: &Bytes) -> Option<Carried> {
    let call = IFiatToken::transferWithAuthorizationCall::abi_decode(call_data).ok()?;
    Some(Carried {
        token,
        payer: call.from,
        nonce: call.nonce,
        valid_before: call.validBefore,
        value: call.value,
        eoa_signature: call.signature.len() == 65,
        call_data: call_data.clone(),
    })
}

/// The authorizations `call` carries, in order (empty for a call that is no settlement).
pub fn authorizations(call: &Call) -> Vec<Carried> {
    if let Some(one) = carried(call.to, &call.input) {
        return vec![one];
    }
    match IMulticall3::aggregate3Call::abi_decode(&call.input) {
        Ok(batch) => batch
            .calls
            .iter()
            .filter_map(|c| carried(c.target, &c.callData))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `call` narrowed to the authorizations `keep` accepts: the same single call, or a batch of fewer calls (its
/// gas scaled down when every signature is an EOA's). `None` when nothing is left.
pub fn narrowed(call: &Call, keep: impl Fn(&Carried) -> bool) -> Option<Call> {
    let all = authorizations(call);
    let kept: Vec<Carried> = all.iter().filter(|c| keep(c)).cloned().collect();
    if kept.is_empty() {
        return None;
    }
    if kept.len() == all.len() {
        return Some(call.clone());
    }
    let calls = kept
        .iter()
        .map(|c| IMulticall3::Call3 {
            target: c.token,
            allowFailure: true,
            callData: c.call_data.clone(),
        })
        .collect();
    let gas = if kept.iter().all(|c| c.eoa_signature) {
        GAS_BATCH_BASE + GAS_PER_EOA_CALL * kept.len() as u64
    } else {
        call.gas
    };
    Some(Call {
        to: call.to,
        input: IMulticall3::aggregate3Call { calls }.abi_encode().into(),
        gas,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(payer: Address, nonce: B256) -> Bytes {
        IFiatToken::transferWithAuthorizationCall {
            from: payer,
            to: Address::repeat_byte(2),
            value: U256::from(5u64),
            validAfter: U256::ZERO,
            validBefore: U256::from(99u64),
            nonce,
            signature: Bytes::from(vec![1u8; 65]),
        }
        .abi_encode()
        .into()
    }

    #[test]
    fn a_batch_narrows_to_the_payments_kept() {
        let token = Address::repeat_byte(0x36);
        let payers = [
            Address::repeat_byte(7),
            Address::repeat_byte(8),
            Address::repeat_byte(9),
        ];
        let calls = payers
            .iter()
            .map(|p| IMulticall3::Call3 {
                target: token,
                allowFailure: true,
                callData: transfer(*p, B256::repeat_byte(1)),
            })
            .collect();
        let batch = Call {
            to: Address::repeat_byte(0xca),
            input: IMulticall3::aggregate3Call { calls }.abi_encode().into(),
            gas: 330_000,
        };
        assert_eq!(authorizations(&batch).len(), 3);
        let narrowed = narrowed(&batch, |c| c.payer != payers[1]).unwrap();
        let left: Vec<Address> = authorizations(&narrowed).iter().map(|c| c.payer).collect();
        assert_eq!(left, vec![payers[0], payers[2]]);
        assert_eq!(narrowed.gas, GAS_BATCH_BASE + 2 * GAS_PER_EOA_CALL);
        assert_eq!(narrowed.to, batch.to);
        assert!(super::narrowed(&batch, |_| false).is_none());
        assert_eq!(super::narrowed(&batch, |_| true).unwrap(), batch);
    }

    #[test]
    fn a_single_settlement_carries_one_authorization() {
        let call = Call {
            to: Address::repeat_byte(0x36),
            input: transfer(Address::repeat_byte(7), B256::repeat_byte(3)),
            gas: 150_000,
        };
        let carried = authorizations(&call);
        assert_eq!(carried.len(), 1);
        assert_eq!(
            (carried[0].payer, carried[0].nonce, carried[0].valid_before),
            (Address::repeat_byte(7), B256::repeat_byte(3), U256::from(99u64))
        );
    }
}
