//! The gRPC transport: `extapps.v1.ExternalApplications`. Each handler
//! authenticates, converts the request, calls the service and converts the
//! answer; rules live in `domain`, use cases in `service`.

mod convert;
mod status;

use extapps_proto::v1 as pb;
use pb::external_applications_server::ExternalApplications;
use secrecy::ExposeSecret;
use tonic::{Request, Response, Status};

pub use status::{ERROR_DOMAIN, to_status};

use crate::domain::{
    Error, Reason,
    application::{Etag, RegistrationInput},
    caller::{Caller, Role},
    idempotency::parse_request_id,
    names::{
        ApplicationName, FederatedCredentialName, KeyName, SecretName, parse_organization_name,
    },
    secret_rules::Expiration,
};
use crate::service::{
    ApplicationUpdate, FederatedRequest, KeyRequest, SecretRequest, Service, WithSecret,
};
use convert::{
    app_type_from_proto, application_to_proto, audit_event_to_proto,
    authorization_request_to_proto, duration, federated_to_proto, grant_inputs, instant,
    key_to_proto, resource_to_proto, user_authorization_to_proto,
};

/// The `ExternalApplications` service over a [`Service`].
#[derive(Debug, Clone)]
pub struct GrpcApi {
    service: Service,
}

impl GrpcApi {
    pub fn new(service: Service) -> Self {
        Self { service }
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<std::sync::Arc<Caller>, Error> {
        let header = match request.metadata().get("authorization") {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| Error::Unauthenticated {
                reason: Reason::InvalidCredentials,
                message: "the `authorization` metadata is not valid text".into(),
            })?),
        };
        let source = request
            .extensions()
            .get::<crate::service::SourceKey>()
            .copied();
        self.service.authenticate(header, source).await
    }
}

fn app_name(field: &str, value: &str) -> Result<ApplicationName, Error> {
    ApplicationName::parse(field, value).map_err(|v| Error::invalid(vec![v]))
}

fn org_name(field: &str, value: &str) -> Result<crate::domain::names::OrganizationId, Error> {
    parse_organization_name(field, value).map_err(|v| Error::invalid(vec![v]))
}

fn secret_text(result: &WithSecret) -> String {
    result
        .client_secret
        .as_ref()
        .map(|s| s.expose_secret().to_owned())
        .unwrap_or_default()
}

/// The name of a status code, as gRPC spells it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Runs a handler body, turns its error into a status (in one place) and
/// counts the call.
async fn answer<T>(
    service: &Service,
    method: &'static str,
    body: impl Future<Output = Result<T, Error>>,
) -> Result<Response<T>, Status> {
    let started = std::time::Instant::now();
    let result = body.await.map(Response::new).map_err(to_status);
    let code = match &result {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    };
    service
        .metrics()
        .call("grpc", method, code_name(code).into(), started.elapsed());
    result
}

fn update_from_mask(
    application: &pb::Application,
    mask: Option<&prost_types::FieldMask>,
) -> Result<ApplicationUpdate, Error> {
    let paths = mask.map(|m| m.paths.as_slice()).unwrap_or_default();
    if paths.is_empty() {
        return Err(Error::invalid_field(
            "update_mask",
            "is required: name the fields to change (`display_name`, `redirect_urls` or `*`)",
        ));
    }
    let mut update = ApplicationUpdate::default();
    let mut violations = crate::domain::Violations::default();
    for (i, path) in paths.iter().enumerate() {
        match path.as_str() {
            "display_name" => update.display_name = Some(application.display_name.clone()),
            "redirect_urls" => update.redirect_urls = Some(application.redirect_urls.clone()),
            "*" => {
                update.display_name = Some(application.display_name.clone());
                update.redirect_urls = Some(application.redirect_urls.clone());
            }
            "grants" => violations.push(
                format!("update_mask.paths[{i}]"),
                "scopes change with UpdateApplicationScopes",
            ),
            "type" | "client_id" | "name" => violations.push(
                format!("update_mask.paths[{i}]"),
                format!("`{path}` is immutable"),
            ),
            other => violations.push(
                format!("update_mask.paths[{i}]"),
                format!(
                    "`{other}` is not an updatable field (`display_name`, `redirect_urls`, `*`)"
                ),
            ),
        }
    }
    violations.into_result().map(|()| update)
}

#[tonic::async_trait]
impl ExternalApplications for GrpcApi {
    async fn register_application(
        &self,
        request: Request<pb::RegisterApplicationRequest>,
    ) -> Result<Response<pb::RegisterApplicationResponse>, Status> {
        answer(&self.service, "RegisterApplication", async {
            let caller = self.caller(&request).await?;
            let req = request.into_inner();
            let organization = org_name("parent", &req.parent)?;
            let request_id = parse_request_id("request_id", &req.request_id)?;
            let app = req
                .application
                .ok_or_else(|| Error::invalid_field("application", "is required"))?;
            let input = RegistrationInput {
                display_name: app.display_name,
                app_type: app_type_from_proto(app.r#type),
                grants: grant_inputs(app.grants),
                redirect_urls: app.redirect_urls,
            };
            let result = self
                .service
                .register_application(&caller, &organization, input, request_id)
                .await?;
            Ok(pb::RegisterApplicationResponse {
                application: Some(application_to_proto(&result.application)),
                client_secret: secret_text(&result),
            })
        })
        .await
    }

    async fn get_application(
        &self,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<Response<pb::GetApplicationResponse>, Status> {
        answer(&self.service, "GetApplication", async {
            let caller = self.caller(&request).await?;
            let name = app_name("name", &request.get_ref().name)?;
            let app = self.service.get_application(&caller, &name).await?;
            Ok(pb::GetApplicationResponse {
                application: Some(application_to_proto(&app)),
            })
        })
        .await
    }

    async fn list_applications(
        &self,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        answer(&self.service, "ListApplications", async {
            let caller = self.caller(&request).await?;
            let req = request.get_ref();
            let organization = org_name("parent", &req.parent)?;
            let (apps, next_page_token) = self
                .service
                .list_applications(&caller, &organization, req.page_size, &req.page_token)
                .await?;
            Ok(pb::ListApplicationsResponse {
                applications: apps.iter().map(application_to_proto).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn update_application(
        &self,
        request: Request<pb::UpdateApplicationRequest>,
    ) -> Result<Response<pb::UpdateApplicationResponse>, Status> {
        answer(&self.service, "UpdateApplication", async {
            let caller = self.caller(&request).await?;
            let req = request.into_inner();
            let app = req
                .application
                .ok_or_else(|| Error::invalid_field("application", "is required"))?;
            let name = app_name("application.name", &app.name)?;
            let etag = Etag::parse_optional("application.etag", &app.etag)?;
            let update = update_from_mask(&app, req.update_mask.as_ref())?;
            let app = self
                .service
                .update_application(&caller, &name, etag, update)
                .await?;
            Ok(pb::UpdateApplicationResponse {
                application: Some(application_to_proto(&app)),
            })
        })
        .await
    }

    async fn update_application_scopes(
        &self,
        request: Request<pb::UpdateApplicationScopesRequest>,
    ) -> Result<Response<pb::UpdateApplicationScopesResponse>, Status> {
        answer(&self.service, "UpdateApplicationScopes", async {
            let caller = self.caller(&request).await?;
            let req = request.into_inner();
            let name = app_name("name", &req.name)?;
            let etag = Etag::parse_optional("etag", &req.etag)?;
            let app = self
                .service
                .update_application_scopes(&caller, &name, etag, grant_inputs(req.grants))
                .await?;
            Ok(pb::UpdateApplicationScopesResponse {
                application: Some(application_to_proto(&app)),
            })
        })
        .await
    }

    async fn generate_application_secret(
        &self,
        request: Request<pb::GenerateApplicationSecretRequest>,
    ) -> Result<Response<pb::GenerateApplicationSecretResponse>, Status> {
        answer(&self.service, "GenerateApplicationSecret", async {
            let caller = self.caller(&request).await?;
            let req = request.into_inner();
            let name = app_name("name", &req.name)?;
            let etag = Etag::parse_optional("etag", &req.etag)?;
            let grace_period = duration("grace_period", req.grace_period)?;
            let request_id = parse_request_id("request_id", &req.request_id)?;
            let expiration = match req.expiration {
                None => Expiration::Never,
                Some(pb::generate_application_secret_request::Expiration::ExpireTime(at)) => {
                    Expiration::At(instant("expire_time", at)?)
                }
                Some(pb::generate_application_secret_request::Expiration::Ttl(ttl)) => {
                    Expiration::After(duration("ttl", Some(ttl))?)
                }
            };
            let result = self
                .service
                .generate_application_secret(
                    &caller,
                    &name,
                    SecretRequest {
                        etag,
                        grace_period,
                        revoke_tokens: req.revoke_tokens,
                        keep_existing: req.keep_existing_secrets,
                        description: req.description,
                        expiration,
                        request_id,
                    },
                )
                .await?;
            Ok(pb::GenerateApplicationSecretResponse {
                application: Some(application_to_proto(&result.application)),
                client_secret: secret_text(&result),
            })
        })
        .await
    }

    async fn delete_application_secret(
        &self,
        request: Request<pb::DeleteApplicationSecretRequest>,
    ) -> Result<Response<pb::DeleteApplicationSecretResponse>, Status> {
        answer(&self.service, "DeleteApplicationSecret", async {
            let caller = self.caller(&request).await?;
            let req = request.into_inner();
            let name = SecretName::parse("name", &req.name).map_err(|v| Error::invalid(vec![v]))?;
            let etag = Etag::parse_optional("etag", &req.etag)?;
            let app = self
                .service
                .delete_application_secret(&caller, &name, etag, req.revoke_tokens)
                .await?;
            Ok(pb::DeleteApplicationSecretResponse {
                application: Some(application_to_proto(&app)),
            })
        })
        .await
    }

    async fn add_application_key(
        &self,
        request: Request<pb::AddApplicationKeyRequest>,
    ) -> Result<Response<pb::AddApplicationKeyResponse>, Status> {
        answer(&self.service, "AddApplicationKey", async {
            let caller = self.caller(&request).await?;
            let req = request.into_inner();
            let name = app_name("name", &req.name)?;
            let etag = Etag::parse_optional("etag", &req.etag)?;
            let expiration = match req.expiration {
                None => Expiration::Never,
                Some(pb::add_application_key_request::Expiration::ExpireTime(at)) => {
                    Expiration::At(instant("expire_time", at)?)
                }
                Some(pb::add_application_key_request::Expiration::Ttl(ttl)) => {
                    Expiration::After(duration("ttl", Some(ttl))?)
                }
            };
            let (app, key) = self
                .service
                .add_application_key(
                    &caller,
                    &name,
                    KeyRequest {
                        jwk: req.jwk,
                        description: req.description,
                        expiration,
                        etag,
                    },
                )
                .await?;
            let application = application_to_proto(&app);
            Ok(pb::AddApplicationKeyResponse {
                key: Some(key_to_proto(&application.name, &key)),
                application: Some(application),
            })
        })
        .await
    }

    async fn delete_application_key(
        &self,
        request: Request<pb::DeleteApplicationKeyRequest>,
    ) -> Result<Response<pb::DeleteApplicationKeyResponse>, Status> {
        answer(&self.service, "DeleteApplicationKey", async {
            let caller = self.caller(&request).await?;
            let req = request.into_inner();
            let name = KeyName::parse("name", &req.name).map_err(|v| Error::invalid(vec![v]))?;
            let etag = Etag::parse_optional("etag", &req.etag)?;
            let app = self
                .service
                .delete_application_key(&caller, &name, etag, req.revoke_tokens)
                .await?;
            Ok(pb::DeleteApplicationKeyResponse {
                application: Some(application_to_proto(&app)),
            })
        })
        .await
    }

    async fn add_federated_credential(
        &self,
        request: Request<pb::AddFederatedCredentialRequest>,
    ) -> Result<Response<pb::AddFederatedCredentialResponse>, Status> {
        answer(&self.service, "AddFederatedCredential", async {
            let caller = self.caller(&request).await?;
            let req = request.into_inner();
            let name = app_name("name", &req.name)?;
            let etag = Etag::parse_optional("etag", &req.etag)?;
            let (app, credential) = self
                .service
                .add_federated_credential(
                    &caller,
                    &name,
                    FederatedRequest {
                        issuer: req.issuer,
                        subject: req.subject,
                        audience: req.audience,
                        description: req.description,
                        etag,
                    },
                )
                .await?;
            let application = application_to_proto(&app);
            Ok(pb::AddFederatedCredentialResponse {
                federated_credential: Some(federated_to_proto(&application.name, &credential)),
                application: Some(application),
            })
        })
        .await
    }

    async fn delete_federated_credential(
        &self,
        request: Request<pb::DeleteFederatedCredentialRequest>,
    ) -> Result<Response<pb::DeleteFederatedCredentialResponse>, Status> {
        answer(&self.service, "DeleteFederatedCredential", async {
            let caller = self.caller(&request).await?;
            let req = request.into_inner();
            let name = FederatedCredentialName::parse("name", &req.name)
                .map_err(|v| Error::invalid(vec![v]))?;
            let etag = Etag::parse_optional("etag", &req.etag)?;
            let app = self
                .service
                .delete_federated_credential(&caller, &name, etag, req.revoke_tokens)
                .await?;
            Ok(pb::DeleteFederatedCredentialResponse {
                application: Some(application_to_proto(&app)),
            })
        })
        .await
    }

    async fn delete_application(
        &self,
        request: Request<pb::DeleteApplicationRequest>,
    ) -> Result<Response<pb::DeleteApplicationResponse>, Status> {
        answer(&self.service, "DeleteApplication", async {
            let caller = self.caller(&request).await?;
            let req = request.get_ref();
            let name = app_name("name", &req.name)?;
            let etag = Etag::parse_optional("etag", &req.etag)?;
            self.service
                .delete_application(&caller, &name, etag)
                .await?;
            Ok(pb::DeleteApplicationResponse {})
        })
        .await
    }

    async fn list_resources(
        &self,
        request: Request<pb::ListResourcesRequest>,
    ) -> Result<Response<pb::ListResourcesResponse>, Status> {
        answer(&self.service, "ListResources", async {
            self.caller(&request).await?;
            Ok(pb::ListResourcesResponse {
                resources: self
                    .service
                    .catalog()
                    .resources()
                    .map(resource_to_proto)
                    .collect(),
            })
        })
        .await
    }

    async fn introspect_token(
        &self,
        request: Request<pb::IntrospectTokenRequest>,
    ) -> Result<Response<pb::IntrospectTokenResponse>, Status> {
        answer(&self.service, "IntrospectToken", async {
            let caller = self.caller(&request).await?;
            caller.require_role(&[Role::Introspect, Role::Operator], "IntrospectToken")?;
            let token = &request.get_ref().token;
            if token.is_empty() {
                return Err(Error::invalid_field("token", "is required"));
            }
            Ok(match self.service.introspect(token, &caller).await? {
                None => pb::IntrospectTokenResponse::default(),
                Some(active) => pb::IntrospectTokenResponse {
                    active: true,
                    scope: active.scopes.join(" "),
                    client_id: active.client_id,
                    token_type: "Bearer".into(),
                    exp: active.exp,
                    iat: active.iat,
                    sub: active.sub,
                    aud: active.aud,
                    iss: active.iss,
                    jti: active.jti,
                    organization: active.organization.unwrap_or_default(),
                },
            })
        })
        .await
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        answer(&self.service, "ListAuditEvents", async {
            let caller = self.caller(&request).await?;
            let req = request.get_ref();
            let organization = org_name("parent", &req.parent)?;
            let application = match req.application.as_str() {
                "" => None,
                name => Some(app_name("application", name)?),
            };
            let (events, next_page_token) = self
                .service
                .list_audit_events(
                    &caller,
                    &organization,
                    application.as_ref(),
                    req.page_size,
                    &req.page_token,
                )
                .await?;
            Ok(pb::ListAuditEventsResponse {
                audit_events: events.iter().map(audit_event_to_proto).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn get_authorization_request(
        &self,
        request: Request<pb::GetAuthorizationRequestRequest>,
    ) -> Result<Response<pb::GetAuthorizationRequestResponse>, Status> {
        answer(&self.service, "GetAuthorizationRequest", async {
            let caller = self.caller(&request).await?;
            let view = self
                .service
                .get_authorization_request(&caller, &request.get_ref().name)
                .await?;
            Ok(pb::GetAuthorizationRequestResponse {
                authorization_request: Some(authorization_request_to_proto(view)),
            })
        })
        .await
    }

    async fn accept_authorization_request(
        &self,
        request: Request<pb::AcceptAuthorizationRequestRequest>,
    ) -> Result<Response<pb::AcceptAuthorizationRequestResponse>, Status> {
        answer(&self.service, "AcceptAuthorizationRequest", async {
            let caller = self.caller(&request).await?;
            let req = request.get_ref();
            let redirect_url = self
                .service
                .accept_authorization_request(&caller, &req.name, &req.subject, &req.scopes)
                .await?;
            Ok(pb::AcceptAuthorizationRequestResponse { redirect_url })
        })
        .await
    }

    async fn reject_authorization_request(
        &self,
        request: Request<pb::RejectAuthorizationRequestRequest>,
    ) -> Result<Response<pb::RejectAuthorizationRequestResponse>, Status> {
        answer(&self.service, "RejectAuthorizationRequest", async {
            let caller = self.caller(&request).await?;
            let req = request.get_ref();
            let redirect_url = self
                .service
                .reject_authorization_request(
                    &caller,
                    &req.name,
                    &req.error,
                    &req.error_description,
                )
                .await?;
            Ok(pb::RejectAuthorizationRequestResponse { redirect_url })
        })
        .await
    }

    async fn list_user_authorizations(
        &self,
        request: Request<pb::ListUserAuthorizationsRequest>,
    ) -> Result<Response<pb::ListUserAuthorizationsResponse>, Status> {
        answer(&self.service, "ListUserAuthorizations", async {
            let caller = self.caller(&request).await?;
            let req = request.get_ref();
            let (records, next_page_token) = self
                .service
                .list_user_authorizations(&caller, &req.subject, req.page_size, &req.page_token)
                .await?;
            Ok(pb::ListUserAuthorizationsResponse {
                user_authorizations: records
                    .into_iter()
                    .map(user_authorization_to_proto)
                    .collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn revoke_user_authorization(
        &self,
        request: Request<pb::RevokeUserAuthorizationRequest>,
    ) -> Result<Response<pb::RevokeUserAuthorizationResponse>, Status> {
        answer(&self.service, "RevokeUserAuthorization", async {
            let caller = self.caller(&request).await?;
            let req = request.get_ref();
            self.service
                .revoke_user_authorization(&caller, &req.subject, &req.application)
                .await?;
            Ok(pb::RevokeUserAuthorizationResponse {})
        })
        .await
    }
}
