//! SeaORM entities: the shape of the tables the migrations create. They never
//! leave the `store` module.

pub mod answered_authorization_request;
pub mod application;
pub mod application_key;
pub mod application_secret;
pub mod audit_event;
pub mod caller_key;
pub mod federated_credential;
pub mod idempotency_record;
pub mod revoked_token;
pub mod used_assertion;
pub mod user_grant;
