//! The one integration test binary: the library and the `narvaro` binary end to end.

mod aggregate;
mod api;
mod attack;
mod cli;
mod common;
mod contract;
mod disclosure;
mod hardening;
mod http;
mod indicators;
mod lake;
mod publish;
mod s3;
mod server;
mod slt;
mod truth;
