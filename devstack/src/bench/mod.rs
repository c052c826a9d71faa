//! `nerdcabal bench facilitator|proxy`: measurements of our own cost, each printed beside a baseline measured in
//! the same run.

pub mod facilitator;
pub mod proxy;
