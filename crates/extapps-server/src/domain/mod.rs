//! Types and rules of extapps, free of transport and storage: every rule of
//! SPEC section 2 lives here and is unit-tested here.

pub mod application;
pub mod application_type;
pub mod audit;
pub mod authorization;
pub mod caller;
pub mod catalog;
pub mod client_assertion;
pub mod client_key;
pub mod client_state;
pub mod clock;
pub mod credential;
pub mod error;
pub mod federation;
pub mod idempotency;
pub mod key_ring;
pub mod names;
pub mod oauth;
pub mod page_token;
pub mod pkce;
pub mod redirect_url;
pub mod refresh_token;
pub mod scope_grants;
pub mod scope_rules;
pub mod sealing;
pub mod secret_rules;
pub mod token;
pub mod token_rules;
pub mod user_grant;
pub mod xchacha;

pub use error::{Error, FieldViolation, Reason, Violations};
