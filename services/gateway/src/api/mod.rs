//! The front door: how a call comes in. The forwarding core routes by
//! service path, authenticates, rate-limits and caps the deadline.

pub mod deadline;
pub mod proxy;
