//! Shield (L7): connection caps and read deadlines ([`conn`]), automatic rate-based mitigation ([`ddos`]).

pub mod conn;
pub mod ddos;
