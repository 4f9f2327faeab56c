//! How a call goes out: the upstream endpoints of each service and the
//! HTTP/2 connection to each, shared by every call to it.

pub mod connection;
pub mod upstream;
