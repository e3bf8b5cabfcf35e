//! The helpers every scenario file may use: scenario files import only from
//! here, never from each other.

pub(crate) mod client_auth;
pub(crate) mod fixtures;
pub(crate) mod harness;
pub(crate) mod issuer;
pub(crate) mod oauth_http;
pub(crate) mod pki;
pub(crate) mod processes;
pub(crate) mod signing;
pub(crate) mod snapshot;
pub(crate) mod stored;
pub(crate) mod user_flow;
pub(crate) mod walkthrough;
