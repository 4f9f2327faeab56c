//! What runs around the domain: the writer that coalesces writes into one
//! transaction each, the sweeper that expires holds, the reads, and the
//! assets registered at start.

pub mod bootstrap;
pub mod events;
pub mod reads;
pub mod sweeper;
pub mod writer;
