//! Where Folio services keep things: each service's own database (one
//! PostgreSQL schema, or a SQLite file, with transactions that retry), the
//! cache (Redis, or in-process when Redis is unset or down) with the
//! rate-limit leases built on it, and the keys of opaque page tokens.

pub mod cache;
pub mod db;
pub mod paging;
