//! User-context access: an application sends the browser to
//! `/oauth2/authorize`, the sign-in front end (played here through the typed
//! client with a `signin` key) answers the pending request, and the
//! application redeems the code and rotates refresh tokens. Every rule of
//! SPEC section 4, positive and negative, on both databases.

mod authorize;
mod code_grant;
mod ended;
mod library_flow;
mod refresh_grant;
mod signin_handoff;
mod user_authorizations;
