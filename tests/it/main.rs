//! The integration tests: one binary, a module per area, and one `support` module
//! every area uses. Tests that need a program from outside the Rust toolchain
//! (redis-server) are `#[ignore]`d with the reason, and `scripts/test-services` runs them.

// Each example is a program of its own and brings its logging setup
// (`examples/support/logs.rs`); included here side by side, that file is loaded once per
// example.
#![allow(clippy::duplicate_mod)]

mod support;

#[allow(dead_code)]
#[path = "../../examples/axum_server.rs"]
mod axum_server;

#[allow(dead_code)]
#[path = "../../examples/mcp_server.rs"]
mod mcp_server;

#[allow(dead_code)]
#[path = "../../examples/mtls_server.rs"]
mod mtls_server;

#[allow(dead_code)]
#[path = "../../examples/tonic_server.rs"]
mod tonic_server;

mod adversarial;
mod allocations;
mod api_keys;
mod axum;
mod cache;
mod dpop;
mod examples;
mod explain;
mod fapi;
mod introspection;
mod jwks_refresh;
mod keys;
mod layer;
mod logs;
mod mcp;
mod mock_issuer;
mod mtls;
mod observability;
mod policy;
mod properties;
mod reload;
mod resource;
mod settings;
mod soak;
mod state;
mod surface;
mod tonic;
mod websocket;
