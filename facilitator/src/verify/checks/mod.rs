//! One file per verify check (3–10 of the list; 1–2 are in `payment`). Each takes the payment and,
//! where it needs it, the chain snapshot, and answers `Ok(())` or the [`Invalid`](super::Invalid) reason.

pub mod balance;
pub mod compliance;
pub mod eip712_domain;
pub mod nonce;
pub mod recipient_value;
pub mod signature;
pub mod simulation;
pub mod time_window;
