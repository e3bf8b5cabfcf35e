//! Typed async client of the extapps gRPC API.
//!
//! [`Client`] has one method per call, taking and returning the types of
//! [`model`]: parsed application names, `SystemTime`s, secrets that never
//! print. [`Client::builder`] sets the caller key, TLS, timeouts and the
//! [`RetryPolicy`]: calls that are safe to repeat (reads, introspection, and
//! registration and secret generation, which carry a request ID) are retried
//! while the server is `UNAVAILABLE`; others never are. A refused call is an
//! [`Error::Status`] with the server's [`ErrorReport`]: its code, its
//! `ErrorInfo` reason and its field violations.
//!
//! Register an application, read it, rotate its secret, delete it:
//!
//! ```no_run
//! use extapps_client::{Client, model::*};
//!
//! # async fn example() -> Result<(), extapps_client::Error> {
//! let client = Client::builder("http://127.0.0.1:50051", "extapps_key_...")
//!     .connect()
//!     .await?;
//! let registered = client
//!     .register(
//!         "acme",
//!         NewApplication::new("Billing sync", ApplicationType::Confidential)
//!             .grant(Grant::on("OR").application_scopes(["OR.Jobs.Read"])),
//!     )
//!     .await?;
//! let secret = registered.secret.expect("confidential applications get one");
//! println!("client ID {}, secret {}", registered.application.client_id(), secret.expose());
//!
//! let app = client.get(&registered.application.name).await?;
//! let rotated = client
//!     .generate_secret(&app.name, NewSecret { etag: Some(app.etag), ..NewSecret::default() })
//!     .await?;
//! client.delete(&rotated.application.name, None).await?;
//! # Ok(())
//! # }
//! ```
//!
//! A refused call names the fields at fault:
//!
//! ```no_run
//! # use extapps_client::{Client, model::*};
//! # async fn example(client: Client) {
//! let nameless = NewApplication::new("", ApplicationType::Confidential);
//! match client.register("acme", nameless).await {
//!     Err(error) => {
//!         let report = error.report().expect("the server refused it");
//!         assert_eq!(report.code, tonic::Code::InvalidArgument);
//!         println!("{:?}", report.violation("application.display_name"));
//!     }
//!     Ok(_) => unreachable!("an application needs a name"),
//! }
//! # }
//! ```

mod auth;
mod client;
mod connect;
mod error;
pub mod model;
mod retry;

pub use auth::BearerAuth;
pub use client::Client;
pub use connect::{ClientBuilder, Tls};
pub use error::{Error, ErrorReport};
pub use extapps_proto::v1;
pub use retry::RetryPolicy;

use tonic::{service::interceptor::InterceptedService, transport::Channel};

/// The generated tonic client with the caller key attached: every call of
/// the API in its raw protobuf types.
pub type GeneratedClient = v1::external_applications_client::ExternalApplicationsClient<
    InterceptedService<Channel, BearerAuth>,
>;

/// Connects to `url` with the default settings and authenticates with `key`.
pub async fn connect(url: &str, key: &str) -> Result<Client, Error> {
    Client::builder(url, key).connect().await
}

/// Wraps an existing channel with a caller key, as the generated client.
pub fn with_key(channel: Channel, key: &str) -> Result<GeneratedClient, Error> {
    let auth = BearerAuth::new(key).map_err(|_| Error::Key)?;
    Ok(
        v1::external_applications_client::ExternalApplicationsClient::with_interceptor(
            channel, auth,
        ),
    )
}
