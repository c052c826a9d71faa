//! Signed payments for the bench, made before any clock starts: funded fresh buyers and unique EIP-3009
//! authorizations (a random nonce each) for a requirement, signed on every core at once.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::{B256, U256};
use alloy::signers::local::PrivateKeySigner;
use contracts::Devnet;
use protocol::wire::v2;

use super::BenchError;

/// `count` buyers, each minted `usdc` atomic units.
pub async fn buyers(devnet: &Devnet, count: usize, usdc: u64) -> Result<Arc<Vec<PrivateKeySigner>>, BenchError> {
    let buyers: Vec<PrivateKeySigner> = (0..count).map(|_| PrivateKeySigner::random()).collect();
    for buyer in &buyers {
        devnet.mint(buyer.address(), U256::from(usdc)).await?;
    }
    Ok(Arc::new(buyers))
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `count` payments for `requirement`, from the buyers in turn.
pub async fn sign(
    buyers: &Arc<Vec<PrivateKeySigner>>,
    requirement: &v2::PaymentRequirements,
    resource: Option<protocol::wire::ResourceInfo>,
    count: usize,
) -> Result<Vec<v2::PaymentPayload>, BenchError> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1);
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let (buyers, requirement, resource) = (buyers.clone(), requirement.clone(), resource.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in (w..count).step_by(workers) {
                let buyer = &buyers[i % buyers.len()];
                out.push(protocol::eip3009::pay(buyer, &requirement, resource.clone(), now(), B256::random()).await);
            }
            out
        }));
    }
    let mut out = Vec::with_capacity(count);
    for task in tasks {
        for payment in task.await.map_err(super::setup)? {
            out.push(payment.map_err(super::setup)?);
        }
    }
    Ok(out)
}
