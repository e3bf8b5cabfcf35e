//! The grant rules below the HTTP layer: PKCE, single-use codes, refresh
//! rotation and reuse, on a real service over a temporary SQLite file, with
//! a clock the tests move. The end-to-end suite checks the same rules over
//! HTTP; these pin them to the flows themselves.

use std::sync::{Arc, Mutex};

use secrecy::ExposeSecret;
use time::OffsetDateTime;

use super::{AuthorizeOutcome, AuthorizeParams, ClientCredentials, IssuedToken};
use crate::domain::{
    application::RegistrationInput,
    application_type::ApplicationType,
    caller::{Caller, Role},
    clock::Clock,
    key_ring::KeyRing,
    names::OrganizationId,
    oauth::OAuthError,
    scope_grants::ResourceGrantInput,
};
use crate::service::{ClientAuthSettings, Service, TokenSettings, UserAccessSettings};
use crate::store::Store;

/// The RFC 7636 example verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "com.example.app:/cb";

#[derive(Debug)]
struct ManualClock(Mutex<OffsetDateTime>);

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

impl ManualClock {
    fn advance(&self, by: time::Duration) {
        *self.0.lock().unwrap() += by;
    }
}

/// A service with a native application of `acme` and the keys of its
/// sign-in front end and a resource server.
struct Fixture {
    service: Service,
    clock: Arc<ManualClock>,
    client: String,
    signin: Arc<Caller>,
    introspect: Arc<Caller>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!(
        "sqlite://{}/flows.db?mode=rwc",
        dir.path().display()
    ))
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let clock = Arc::new(ManualClock(Mutex::new(
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
    )));
    let tokens = TokenSettings {
        ttl: time::Duration::HOUR,
        issuer: "https://extapps.example".into(),
        user: UserAccessSettings {
            signin_url: Some("https://signin.example/consent".into()),
            ..UserAccessSettings::default()
        },
    };
    let service = Service::new(
        store,
        crate::commands::load_catalog(None).unwrap(),
        clock.clone(),
        &KeyRing::generate(clock.now()).unwrap(),
        tokens,
        ClientAuthSettings::default(),
    )
    .await
    .unwrap();
    let acme = OrganizationId::parse("acme").unwrap();
    let caller = |role| {
        let (service, acme) = (service.clone(), acme.clone());
        async move {
            let key = service
                .create_caller_key(Some(acme), role, vec![])
                .await
                .unwrap();
            let bearer = format!("Bearer {}", key.key.expose_secret());
            service.authenticate(Some(&bearer), None).await.unwrap()
        }
    };
    let (admin, signin, introspect) = (
        caller(Role::Admin).await,
        caller(Role::Signin).await,
        caller(Role::Introspect).await,
    );
    let registered = service
        .register_application(
            &admin,
            &acme,
            RegistrationInput {
                display_name: "Desktop".into(),
                app_type: Some(ApplicationType::NonConfidential),
                grants: vec![ResourceGrantInput {
                    resource: "OR".into(),
                    user_scopes: vec!["OR.Jobs".into()],
                    application_scopes: vec![],
                }],
                redirect_urls: vec![REDIRECT.into()],
            },
            None,
        )
        .await
        .unwrap();
    Fixture {
        service,
        clock,
        client: registered.application.client_id.to_string(),
        signin,
        introspect,
        _dir: dir,
    }
}

/// The query parameter `name` of `url`.
fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl Fixture {
    fn credentials(&self) -> ClientCredentials {
        ClientCredentials {
            client_id: self.client.clone(),
            secret: None,
            assertion: None,
            audience_paths: &["/oauth2/token"],
            source: None,
        }
    }

    async fn start(&self, scope: &str, challenge: Option<&str>) -> AuthorizeOutcome {
        let params = AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some(self.client.clone()),
            scope: Some(scope.into()),
            state: Some("s1".into()),
            code_challenge: challenge.map(str::to_owned),
            code_challenge_method: challenge.map(|_| "S256".to_owned()),
            ..AuthorizeParams::default()
        };
        self.service.start_authorization(&params, None).await
    }

    /// A code the user consented to, for `scope`, under the RFC example
    /// challenge.
    async fn code(&self, scope: &str) -> String {
        let AuthorizeOutcome::SignIn(url) = self.start(scope, Some(CHALLENGE)).await else {
            panic!("the request was not sent to sign in");
        };
        let id = param(&url, "authorization_request").unwrap();
        let consented: Vec<String> = scope.split(' ').map(str::to_owned).collect();
        let back = self
            .service
            .accept_authorization_request(
                &self.signin,
                &format!("authorizationRequests/{id}"),
                "user-1",
                &consented,
            )
            .await
            .unwrap();
        assert!(back.starts_with(REDIRECT), "{back}");
        assert_eq!(param(&back, "state").as_deref(), Some("s1"));
        param(&back, "code").unwrap()
    }

    async fn redeem(&self, code: &str, verifier: Option<&str>) -> Result<IssuedToken, OAuthError> {
        self.service
            .redeem_code(&self.credentials(), code, None, verifier)
            .await
    }

    async fn refresh(&self, token: &str) -> Result<IssuedToken, OAuthError> {
        self.service.refresh(&self.credentials(), token, None).await
    }

    async fn active(&self, issued: &IssuedToken) -> bool {
        self.service
            .introspect(issued.access_token.expose_secret(), &self.introspect)
            .await
            .unwrap()
            .is_some()
    }
}

fn code_of(result: Result<IssuedToken, OAuthError>) -> &'static str {
    match result {
        Ok(_) => "issued",
        Err(error) => error.code(),
    }
}

#[tokio::test]
async fn a_native_client_must_send_pkce_and_its_code_answers_only_the_verifier() {
    let f = fixture().await;
    let AuthorizeOutcome::Redirect(back) = f.start("OR.Jobs", None).await else {
        panic!("a native client without PKCE was not sent back");
    };
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_request"));
    assert_eq!(param(&back, "state").as_deref(), Some("s1"));

    let code = f.code("OR.Jobs").await;
    assert_eq!(code_of(f.redeem(&code, None).await), "invalid_request");
    let other = format!("{}x", &VERIFIER[..VERIFIER.len() - 1]);
    assert_eq!(
        code_of(f.redeem(&code, Some(&other)).await),
        "invalid_grant"
    );
    // A wrong verifier does not use the code up: the right one still works.
    let issued = f.redeem(&code, Some(VERIFIER)).await.unwrap();
    assert_eq!(issued.scopes, vec!["OR.Jobs".to_owned()]);
    assert!(issued.refresh_token.is_none());
    assert!(f.active(&issued).await);
}

#[tokio::test]
async fn a_code_redeemed_twice_ends_what_it_issued() {
    let f = fixture().await;
    let code = f.code("OR.Jobs offline_access").await;
    let issued = f.redeem(&code, Some(VERIFIER)).await.unwrap();
    assert!(f.active(&issued).await);
    assert_eq!(
        code_of(f.redeem(&code, Some(VERIFIER)).await),
        "invalid_grant"
    );
    assert!(
        !f.active(&issued).await,
        "the replay revokes the grant's tokens"
    );
    let refresh = issued.refresh_token.clone().unwrap();
    assert_eq!(
        code_of(f.refresh(refresh.expose_secret()).await),
        "invalid_grant"
    );
}

#[tokio::test]
async fn a_code_expires_after_a_minute() {
    let f = fixture().await;
    let (early, late) = (f.code("OR.Jobs").await, f.code("OR.Jobs").await);
    f.clock.advance(time::Duration::seconds(59));
    assert_eq!(code_of(f.redeem(&early, Some(VERIFIER)).await), "issued");
    f.clock.advance(time::Duration::seconds(2));
    assert_eq!(
        code_of(f.redeem(&late, Some(VERIFIER)).await),
        "invalid_grant"
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_an_old_one_after_the_grace_ends_the_grant() {
    let f = fixture().await;
    let code = f.code("OR.Jobs offline_access").await;
    let first = f.redeem(&code, Some(VERIFIER)).await.unwrap();
    let r0 = first.refresh_token.unwrap();
    let second = f.refresh(r0.expose_secret()).await.unwrap();
    let r1 = second.refresh_token.clone().unwrap();
    assert_ne!(r0.expose_secret(), r1.expose_secret());
    // Within the grace, the replaced token gets the same successor again
    // (a client that lost the answer).
    let again = f.refresh(r0.expose_secret()).await.unwrap();
    assert_eq!(
        again.refresh_token.unwrap().expose_secret(),
        r1.expose_secret()
    );
    // After it, the replaced token is reuse: the whole grant ends.
    f.clock.advance(time::Duration::seconds(31));
    assert_eq!(
        code_of(f.refresh(r0.expose_secret()).await),
        "invalid_grant"
    );
    assert_eq!(
        code_of(f.refresh(r1.expose_secret()).await),
        "invalid_grant"
    );
    assert!(!f.active(&second).await);
}
