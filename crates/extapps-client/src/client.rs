//! One method per call of the API, in the types of [`crate::model`].

use std::future::Future;

use backon::Retryable;
use tonic::{Code, Request, Response, Status};

use crate::{
    Error, GeneratedClient, RetryPolicy,
    model::{
        Application, ApplicationName, ApplicationUpdate, AuditEvent, AuthorizationRequest,
        FederatedCredential, Grant, Introspection, KeyInfo, NewApplication, NewKey, NewSecret,
        Page, PageRequest, Registered, Resource, Rotated, SecretExpiry, UserAuthorization,
        application,
    },
    v1,
    v1::generate_application_secret_request::Expiration,
};

/// A typed client of the extapps API, with the caller key attached.
///
/// Cheap to clone: clones share one connection.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) api: GeneratedClient,
    pub(crate) retry: RetryPolicy,
}

/// Whether a call may be repeated when the server is unavailable.
#[derive(Clone, Copy)]
enum Repeat {
    Safe,
    Never,
}

impl Client {
    /// Settings for a client of the server at `url` (`http://host:port`, or
    /// `https://...`) that authenticates with the caller key `key`.
    pub fn builder(url: &str, key: &str) -> crate::ClientBuilder {
        crate::ClientBuilder::new(url, key)
    }

    /// The generated tonic client on the same connection, for what the typed
    /// methods do not cover.
    pub fn generated(&self) -> GeneratedClient {
        self.api.clone()
    }

    /// Registers an application in `organization`. A fresh request ID makes
    /// retries safe: the server registers once and answers each retry with
    /// the same application and secret.
    pub async fn register(
        &self,
        organization: &str,
        app: NewApplication,
    ) -> Result<Registered, Error> {
        let request = v1::RegisterApplicationRequest {
            parent: format!("organizations/{organization}"),
            application: Some(app.into()),
            request_id: uuid::Uuid::new_v4().to_string(),
        };
        self.call(Repeat::Safe, request, |mut api, r| async move {
            api.register_application(r).await
        })
        .await?
        .try_into()
    }

    pub async fn get(&self, name: &ApplicationName) -> Result<Application, Error> {
        let request = v1::GetApplicationRequest {
            name: name.to_string(),
        };
        let answer = self
            .call(Repeat::Safe, request, |mut api, r| async move {
                api.get_application(r).await
            })
            .await?;
        application(answer.application)
    }

    /// One page of the applications of `organization`, by display name.
    pub async fn list(
        &self,
        organization: &str,
        page: PageRequest,
    ) -> Result<Page<Application>, Error> {
        let request = v1::ListApplicationsRequest {
            parent: format!("organizations/{organization}"),
            page_size: page_size(page.size),
            page_token: page.token,
        };
        let answer = self
            .call(Repeat::Safe, request, |mut api, r| async move {
                api.list_applications(r).await
            })
            .await?;
        one_page(answer.applications, answer.next_page_token)
    }

    /// Changes the display name and/or redirect URLs. Never retried.
    pub async fn update(
        &self,
        name: &ApplicationName,
        update: ApplicationUpdate,
    ) -> Result<Application, Error> {
        let mut paths = Vec::new();
        if update.display_name.is_some() {
            paths.push("display_name".to_owned());
        }
        if update.redirect_urls.is_some() {
            paths.push("redirect_urls".to_owned());
        }
        let request = v1::UpdateApplicationRequest {
            application: Some(v1::Application {
                name: name.to_string(),
                display_name: update.display_name.unwrap_or_default(),
                redirect_urls: update.redirect_urls.unwrap_or_default(),
                etag: update.etag.unwrap_or_default(),
                ..v1::Application::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths }),
        };
        let answer = self
            .call(Repeat::Never, request, |mut api, r| async move {
                api.update_application(r).await
            })
            .await?;
        application(answer.application)
    }

    /// Replaces the whole set of grants, in one validated write. Never
    /// retried.
    pub async fn set_scopes(
        &self,
        name: &ApplicationName,
        grants: Vec<Grant>,
        etag: Option<String>,
    ) -> Result<Application, Error> {
        let request = v1::UpdateApplicationScopesRequest {
            name: name.to_string(),
            grants: grants.into_iter().map(Into::into).collect(),
            etag: etag.unwrap_or_default(),
        };
        let answer = self
            .call(Repeat::Never, request, |mut api, r| async move {
                api.update_application_scopes(r).await
            })
            .await?;
        application(answer.application)
    }

    /// Generates a secret for a confidential application: it replaces the
    /// others, or joins them with [`NewSecret::keep_existing`]. Like
    /// [`Client::register`], it carries a fresh request ID, so retries
    /// return the same new secret.
    pub async fn generate_secret(
        &self,
        name: &ApplicationName,
        options: NewSecret,
    ) -> Result<Rotated, Error> {
        let expiration = options.expiry.map(|expiry| match expiry {
            SecretExpiry::After(ttl) => Expiration::Ttl(proto_duration(ttl)),
            SecretExpiry::At(at) => Expiration::ExpireTime(at.into()),
        });
        let request = v1::GenerateApplicationSecretRequest {
            name: name.to_string(),
            grace_period: options.grace_period.map(proto_duration),
            revoke_tokens: options.revoke_tokens,
            etag: options.etag.unwrap_or_default(),
            request_id: uuid::Uuid::new_v4().to_string(),
            description: options.description.unwrap_or_default(),
            expiration,
            keep_existing_secrets: options.keep_existing,
        };
        self.call(Repeat::Safe, request, |mut api, r| async move {
            api.generate_application_secret(r).await
        })
        .await?
        .try_into()
    }

    /// Deletes one secret of an application (its ID as listed in
    /// [`Application::secrets`]); with `revoke_tokens`, every token it
    /// authenticated ends too. Returns the application after the change.
    /// Never retried.
    pub async fn delete_secret(
        &self,
        name: &ApplicationName,
        secret_id: &str,
        revoke_tokens: bool,
        etag: Option<String>,
    ) -> Result<Application, Error> {
        let request = v1::DeleteApplicationSecretRequest {
            name: format!("{name}/secrets/{secret_id}"),
            revoke_tokens,
            etag: etag.unwrap_or_default(),
        };
        let response = self
            .call(Repeat::Never, request, |mut api, r| async move {
                api.delete_application_secret(r).await
            })
            .await?;
        application(response.application)
    }

    /// Registers a public key on a confidential application, for
    /// `private_key_jwt`. Returns the application after the change and the
    /// new key. Never retried (a repeat is refused as the same key).
    pub async fn add_key(
        &self,
        name: &ApplicationName,
        options: NewKey,
    ) -> Result<(Application, KeyInfo), Error> {
        use v1::add_application_key_request::Expiration;
        let expiration = options.expiry.map(|expiry| match expiry {
            SecretExpiry::After(ttl) => Expiration::Ttl(proto_duration(ttl)),
            SecretExpiry::At(at) => Expiration::ExpireTime(at.into()),
        });
        let request = v1::AddApplicationKeyRequest {
            name: name.to_string(),
            jwk: options.jwk,
            description: options.description.unwrap_or_default(),
            expiration,
            etag: options.etag.unwrap_or_default(),
        };
        let response = self
            .call(Repeat::Never, request, |mut api, r| async move {
                api.add_application_key(r).await
            })
            .await?;
        let key = response
            .key
            .ok_or(Error::Response("an added key that is missing"))?
            .try_into()?;
        Ok((application(response.application)?, key))
    }

    /// Deletes one public key of an application (its ID as listed in
    /// [`Application::keys`]); with `revoke_tokens`, every token it
    /// authenticated ends too. Never retried.
    pub async fn delete_key(
        &self,
        name: &ApplicationName,
        key_id: &str,
        revoke_tokens: bool,
        etag: Option<String>,
    ) -> Result<Application, Error> {
        let request = v1::DeleteApplicationKeyRequest {
            name: format!("{name}/keys/{key_id}"),
            revoke_tokens,
            etag: etag.unwrap_or_default(),
        };
        let response = self
            .call(Repeat::Never, request, |mut api, r| async move {
                api.delete_application_key(r).await
            })
            .await?;
        application(response.application)
    }

    /// Lets an application authenticate with an outside provider's tokens
    /// for exactly `issuer`, `subject` and `audience` (the issuer must be
    /// one the server's operator allows). Returns the application after the
    /// change and the new credential. Never retried (a repeat is refused as
    /// the same credential).
    pub async fn add_federated_credential(
        &self,
        name: &ApplicationName,
        issuer: &str,
        subject: &str,
        audience: &str,
        description: Option<String>,
    ) -> Result<(Application, FederatedCredential), Error> {
        let request = v1::AddFederatedCredentialRequest {
            name: name.to_string(),
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            audience: audience.to_owned(),
            description: description.unwrap_or_default(),
            etag: String::new(),
        };
        let response = self
            .call(Repeat::Never, request, |mut api, r| async move {
                api.add_federated_credential(r).await
            })
            .await?;
        let credential = response
            .federated_credential
            .ok_or(Error::Response(
                "an added federated credential that is missing",
            ))?
            .try_into()?;
        Ok((application(response.application)?, credential))
    }

    /// Deletes one federated credential (its ID as listed in
    /// [`Application::federated_credentials`]); with `revoke_tokens`, every
    /// token it authenticated ends too. Never retried.
    pub async fn delete_federated_credential(
        &self,
        name: &ApplicationName,
        credential_id: &str,
        revoke_tokens: bool,
    ) -> Result<Application, Error> {
        let request = v1::DeleteFederatedCredentialRequest {
            name: format!("{name}/federatedCredentials/{credential_id}"),
            revoke_tokens,
            etag: String::new(),
        };
        let response = self
            .call(Repeat::Never, request, |mut api, r| async move {
                api.delete_federated_credential(r).await
            })
            .await?;
        application(response.application)
    }

    /// Deletes an application: its secrets and tokens stop working at once.
    /// Never retried.
    pub async fn delete(&self, name: &ApplicationName, etag: Option<String>) -> Result<(), Error> {
        let request = v1::DeleteApplicationRequest {
            name: name.to_string(),
            etag: etag.unwrap_or_default(),
        };
        self.call(Repeat::Never, request, |mut api, r| async move {
            api.delete_application(r).await
        })
        .await?;
        Ok(())
    }

    /// The resource catalog: the platform's APIs and their scopes.
    pub async fn resources(&self) -> Result<Vec<Resource>, Error> {
        let answer = self
            .call(
                Repeat::Safe,
                v1::ListResourcesRequest {},
                |mut api, r| async move { api.list_resources(r).await },
            )
            .await?;
        Ok(answer.resources.into_iter().map(Into::into).collect())
    }

    /// What `token` is worth (RFC 7662), as the caller key may see it: what
    /// a resource server asks before it serves a request.
    ///
    /// ```no_run
    /// # use extapps_client::{Client, model::Introspection};
    /// # async fn example(client: Client, token: &str) -> Result<(), extapps_client::Error> {
    /// let allowed = match client.introspect(token).await? {
    ///     Introspection::Active(claims) => claims.scopes.iter().any(|s| s == "OR.Jobs.Read"),
    ///     Introspection::Inactive => false,
    /// };
    /// # Ok(())
    /// # }
    /// ```
    pub async fn introspect(&self, token: &str) -> Result<Introspection, Error> {
        let request = v1::IntrospectTokenRequest {
            token: token.to_owned(),
        };
        self.call(Repeat::Safe, request, |mut api, r| async move {
            api.introspect_token(r).await
        })
        .await?
        .try_into()
    }

    /// One page of the audit log of `organization`, newest first; only the
    /// events of `application` if given.
    pub async fn audit_events(
        &self,
        organization: &str,
        application: Option<&ApplicationName>,
        page: PageRequest,
    ) -> Result<Page<AuditEvent>, Error> {
        let request = v1::ListAuditEventsRequest {
            parent: format!("organizations/{organization}"),
            page_size: page_size(page.size),
            page_token: page.token,
            application: application.map(ToString::to_string).unwrap_or_default(),
        };
        let answer = self
            .call(Repeat::Safe, request, |mut api, r| async move {
                api.list_audit_events(r).await
            })
            .await?;
        one_page(answer.audit_events, answer.next_page_token)
    }

    /// For the platform's sign-in front end (a `signin` key): the pending
    /// authorization request a browser arrived with, by its ID (the
    /// `authorization_request` query parameter).
    pub async fn authorization_request(&self, id: &str) -> Result<AuthorizationRequest, Error> {
        let request = v1::GetAuthorizationRequestRequest {
            name: format!("authorizationRequests/{id}"),
        };
        self.call(Repeat::Safe, request, |mut api, r| async move {
            api.get_authorization_request(r).await
        })
        .await?
        .authorization_request
        .ok_or(Error::Response("no authorization request in the answer"))?
        .try_into()
    }

    /// For the sign-in front end: the user `subject` consented to `scopes`.
    /// Returns the URL to send the browser to (carrying the code). Never
    /// retried: a request is answered once.
    pub async fn accept_authorization_request(
        &self,
        id: &str,
        subject: &str,
        scopes: Vec<String>,
    ) -> Result<String, Error> {
        let request = v1::AcceptAuthorizationRequestRequest {
            name: format!("authorizationRequests/{id}"),
            subject: subject.to_owned(),
            scopes,
        };
        Ok(self
            .call(Repeat::Never, request, |mut api, r| async move {
                api.accept_authorization_request(r).await
            })
            .await?
            .redirect_url)
    }

    /// For the sign-in front end: the user declined (`error` empty means
    /// `access_denied`). Returns the URL to send the browser to.
    pub async fn reject_authorization_request(
        &self,
        id: &str,
        error: &str,
        description: &str,
    ) -> Result<String, Error> {
        let request = v1::RejectAuthorizationRequestRequest {
            name: format!("authorizationRequests/{id}"),
            error: error.to_owned(),
            error_description: description.to_owned(),
        };
        Ok(self
            .call(Repeat::Never, request, |mut api, r| async move {
                api.reject_authorization_request(r).await
            })
            .await?
            .redirect_url)
    }

    /// For the sign-in front end: one page of the applications `subject`
    /// authorized.
    pub async fn user_authorizations(
        &self,
        subject: &str,
        page: PageRequest,
    ) -> Result<Page<UserAuthorization>, Error> {
        let request = v1::ListUserAuthorizationsRequest {
            subject: subject.to_owned(),
            page_size: page_size(page.size),
            page_token: page.token,
        };
        let answer = self
            .call(Repeat::Safe, request, |mut api, r| async move {
                api.list_user_authorizations(r).await
            })
            .await?;
        one_page(answer.user_authorizations, answer.next_page_token)
    }

    /// For the sign-in front end: takes back what `subject` authorized
    /// `application` to do; its tokens for that user stop working at once.
    pub async fn revoke_user_authorization(
        &self,
        subject: &str,
        application: &ApplicationName,
    ) -> Result<(), Error> {
        let request = v1::RevokeUserAuthorizationRequest {
            subject: subject.to_owned(),
            application: application.to_string(),
        };
        self.call(Repeat::Never, request, |mut api, r| async move {
            api.revoke_user_authorization(r).await
        })
        .await?;
        Ok(())
    }

    /// Makes one call; if it may be repeated, retries it while the server is
    /// unavailable, as the retry policy allows.
    async fn call<Q, R, F, Fut>(&self, repeat: Repeat, request: Q, rpc: F) -> Result<R, Error>
    where
        Q: Clone,
        F: Fn(GeneratedClient, Request<Q>) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let attempt = || rpc(self.api.clone(), Request::new(request.clone()));
        let answer = match repeat {
            Repeat::Never => attempt().await,
            Repeat::Safe => {
                attempt
                    .retry(self.retry.backoff())
                    .when(|status| status.code() == Code::Unavailable)
                    .await
            }
        };
        Ok(answer?.into_inner())
    }
}

/// The server caps page sizes anyway.
fn page_size(size: u32) -> i32 {
    i32::try_from(size).unwrap_or(i32::MAX)
}

fn one_page<P, T: TryFrom<P, Error = Error>>(
    items: Vec<P>,
    next: String,
) -> Result<Page<T>, Error> {
    Ok(Page {
        items: items
            .into_iter()
            .map(T::try_from)
            .collect::<Result<_, _>>()?,
        next_page_token: (!next.is_empty()).then_some(next),
    })
}

/// A duration as the API takes it. Beyond prost's range the server still
/// answers: it names the field.
fn proto_duration(period: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration::try_from(period).unwrap_or(prost_types::Duration {
        seconds: i64::MAX,
        nanos: 0,
    })
}
