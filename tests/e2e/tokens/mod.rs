//! Access tokens over OAuth 2.0: a standard client library obtains them,
//! resource servers introspect them over gRPC and HTTP, and every lifecycle
//! event of the application takes effect at once (SPEC rules 7 to 9).

mod client_credentials;
mod introspection;
mod lifecycle;
mod revocation;
