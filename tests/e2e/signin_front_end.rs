//! The whole user flow through the reference sign-in front end: a standard
//! OAuth client library starts it and redeems the code, the front end signs
//! the user in and asks for consent, and once a real headless browser
//! clicks through it all.

use std::{net::SocketAddr, process::Stdio, time::Duration};

use extapps_client::v1 as pb;
use extapps_server::domain::caller::Role;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, Scope, TokenResponse, TokenUrl, basic::BasicClient,
};
use reqwest::StatusCode;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer, tool, user_access};
use crate::support::oauth_http::{http, introspect_grpc};

crate::on_both_backends!(an_oauth_library_signs_a_user_in_through_the_reference_front_end);

/// extapps and the reference front end, wired to each other.
struct Stack {
    server: TestServer,
    front_end: String,
    introspect_key: String,
    app: pb::Application,
}

async fn stack(backend: Backend) -> Stack {
    // The front end's address must be known before extapps starts, and
    // extapps's before the front end can call it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front_end = format!("http://{}", listener.local_addr().unwrap());
    let mut settings = user_access();
    settings.signin_url = Some(format!("{front_end}{}", extapps_signin_dev::SIGNIN_PATH));
    let server = TestServer::start_with_user_access(backend, settings).await;
    let key = server.key(Some("acme"), Role::Signin, &[]).await;
    let extapps = extapps_client::Client::builder(&server.url, &key)
        .connect()
        .await
        .unwrap();
    let users = extapps_signin_dev::parse_users(extapps_signin_dev::EXAMPLE_USERS).unwrap();
    let state = extapps_signin_dev::SignIn::new(extapps, users).unwrap();
    tokio::spawn(async move {
        axum::serve(listener, extapps_signin_dev::router(state))
            .await
            .unwrap()
    });
    let mut admin = server.admin("acme").await;
    let mut app = native_app("Robot <Desktop>");
    app.grants = vec![grant("OR", &["OR.Jobs", "OR.Queues.Read"], &[])];
    app.redirect_urls = vec!["http://127.0.0.1/callback".into()];
    let app = register(&mut admin, "acme", app).await.application.unwrap();
    let introspect_key = server.key(Some("acme"), Role::Introspect, &[]).await;
    Stack {
        server,
        front_end,
        introspect_key,
        app,
    }
}

impl Stack {
    fn oauth(
        &self,
        redirect: &str,
    ) -> oauth2::Client<
        oauth2::basic::BasicErrorResponse,
        oauth2::basic::BasicTokenResponse,
        oauth2::basic::BasicTokenIntrospectionResponse,
        oauth2::StandardRevocableToken,
        oauth2::basic::BasicRevocationErrorResponse,
        oauth2::EndpointSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    > {
        BasicClient::new(ClientId::new(self.app.client_id.clone()))
            .set_auth_uri(AuthUrl::new(format!("{}/oauth2/authorize", self.server.url)).unwrap())
            .set_token_uri(TokenUrl::new(format!("{}/oauth2/token", self.server.url)).unwrap())
            .set_redirect_uri(RedirectUrl::new(redirect.into()).unwrap())
    }

    /// The authorization URL an application would open, and what it keeps.
    fn start(&self, redirect: &str) -> (String, CsrfToken, PkceCodeVerifier) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, csrf) = self
            .oauth(redirect)
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("OR.Jobs".into()))
            .add_scope(Scope::new("OR.Queues.Read".into()))
            .add_scope(Scope::new("offline_access".into()))
            .set_pkce_challenge(challenge)
            .url();
        (url.to_string(), csrf, verifier)
    }
}

fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{response:?}");
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The value of a hidden or checkbox `input` named `name` in a page.
fn inputs(page: &str, name: &str) -> Vec<String> {
    let marker = format!("name=\"{name}\" value=\"");
    page.match_indices(&marker)
        .map(|(at, _)| {
            let rest = &page[at + marker.len()..];
            html_unescape(&rest[..rest.find('"').unwrap()])
        })
        .collect()
}

fn html_unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

async fn an_oauth_library_signs_a_user_in_through_the_reference_front_end(backend: Backend) {
    let stack = stack(backend).await;
    let redirect = "http://127.0.0.1:61000/callback";
    let (url, csrf, verifier) = stack.start(redirect);
    let browser = http();

    // extapps sends the browser to the front end, which shows a sign-in form
    // naming the application (escaped).
    let signin = location(&browser.get(&url).send().await.unwrap());
    assert!(signin.starts_with(&format!(
        "{}/signin?authorization_request=",
        stack.front_end
    )));
    let form = browser
        .get(&signin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(form.contains("Robot &lt;Desktop&gt;"), "{form}");
    let request = inputs(&form, "authorization_request").pop().unwrap();

    // A wrong password shows the form again.
    let sign_in = |password: &'static str| {
        let request = request.clone();
        let url = format!("{}/signin", stack.front_end);
        let browser = browser.clone();
        async move {
            let form = [
                ("authorization_request", request.as_str()),
                ("username", "alice"),
                ("password", password),
            ];
            let response = browser.post(url).form(&form).send().await.unwrap();
            response.text().await.unwrap()
        }
    };
    let wrong = sign_in("guess").await;
    assert!(wrong.contains("wrong password"), "{wrong}");

    // The consent page lists each scope with its catalog description.
    let consent = sign_in("alice-dev-password").await;
    assert!(consent.contains("Start, stop and read jobs"), "{consent}");
    assert!(consent.contains("Read queues"), "{consent}");
    assert_eq!(
        inputs(&consent, "scope"),
        ["OR.Jobs", "OR.Queues.Read", "offline_access"]
    );
    let subject = inputs(&consent, "subject").pop().unwrap();
    let proof = inputs(&consent, "proof").pop().unwrap();
    // A forged user is refused by the front end.
    let forged = browser
        .post(format!("{}/consent", stack.front_end))
        .form(&[
            ("authorization_request", request.as_str()),
            ("subject", "user-bob"),
            ("proof", proof.as_str()),
            ("decision", "allow"),
            ("scope", "OR.Jobs"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // The user unticks one scope and allows.
    let back = location(
        &browser
            .post(format!("{}/consent", stack.front_end))
            .form(&[
                ("authorization_request", request.as_str()),
                ("subject", subject.as_str()),
                ("proof", proof.as_str()),
                ("scope", "OR.Jobs"),
                ("scope", "offline_access"),
                ("decision", "allow"),
            ])
            .send()
            .await
            .unwrap(),
    );
    assert!(back.starts_with(&format!("{redirect}?")), "{back}");
    let answer: std::collections::HashMap<_, _> = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(&answer["state"], csrf.secret());

    // The library redeems the code and refreshes.
    let oauth = stack.oauth(redirect);
    let client = http();
    let tokens = oauth
        .exchange_code(AuthorizationCode::new(answer["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&client)
        .await
        .unwrap();
    let seen = introspect_grpc(
        &stack.server.url,
        &stack.introspect_key,
        tokens.access_token().secret(),
    )
    .await;
    assert_eq!(
        (seen.sub.as_str(), seen.scope.as_str()),
        ("user-alice", "OR.Jobs")
    );
    let refreshed = oauth
        .exchange_refresh_token(&RefreshToken::new(
            tokens.refresh_token().unwrap().secret().clone(),
        ))
        .request_async(&client)
        .await
        .unwrap();
    assert!(refreshed.refresh_token().is_some());

    // The page is answered: coming back to it says so.
    let again = browser.get(&signin).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(again.text().await.unwrap().contains("already answered"));
}

/// A headless Chromium under chromedriver, for one test.
struct Browser {
    driver: tokio::process::Child,
    client: fantoccini::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        use tokio::io::AsyncBufReadExt;
        // chromedriver picks a free port itself and says which.
        let mut driver = tokio::process::Command::new(tool(
            "EXTAPPS_TEST_CHROMEDRIVER",
            "/usr/bin/chromedriver",
        ))
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver runs (Debian package chromium-driver; tests/run.sh installs it)");
        let mut lines = tokio::io::BufReader::new(driver.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some((_, rest)) = line.split_once("started successfully on port ") {
                    return rest.trim_end_matches('.').trim().parse::<u16>().unwrap();
                }
            }
            panic!("chromedriver exited without listening")
        })
        .await
        .expect("chromedriver listens within 30 s");
        // Keep reading its output, so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": tool("EXTAPPS_TEST_CHROMIUM", "/usr/bin/chromium"),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = tokio::time::timeout(
            Duration::from_secs(30),
            fantoccini::ClientBuilder::new(
                hyper_util::client::legacy::connect::HttpConnector::new(),
            )
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .expect("a browser session within 30 s")
        .expect("chromedriver starts Chromium");
        Self {
            driver,
            client,
            _profile: profile,
        }
    }

    /// The element with this ID, within 20 s. A click that submits a form
    /// starts a navigation; a look-up that meets it is aborted by the
    /// browser ("aborted by navigation") rather than not finding anything,
    /// so it is asked again on the page that loads.
    async fn element(&self, id: &str) -> fantoccini::elements::Element {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self
                .client
                .wait()
                .at_most(left)
                .for_element(fantoccini::Locator::Id(id))
                .await
            {
                Ok(element) => return element,
                Err(fantoccini::error::CmdError::NotW3C(detail))
                    if detail.as_str() == Some("aborted by navigation") && !left.is_zero() =>
                {
                    continue;
                }
                Err(e) => panic!("no element #{id} within 20 s: {e}"),
            }
        }
    }

    async fn stop(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }
}

/// An application's loopback callback: answers the browser and hands the
/// query to the test.
async fn callback_listener() -> (SocketAddr, tokio::sync::mpsc::Receiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |uri: axum::http::Uri| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(uri.query().unwrap_or_default().to_owned()).await;
                axum::response::Html("<p id=\"done\">You may close this window.</p>")
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_in_a_real_browser_signs_in_and_consents() {
    let stack = stack(Backend::Sqlite).await;
    let (callback, mut codes) = callback_listener().await;
    let redirect = format!("http://{callback}/callback");
    let (url, csrf, verifier) = stack.start(&redirect);
    let browser = Browser::start().await;
    browser.client.goto(&url).await.unwrap();
    browser
        .element("username")
        .await
        .send_keys("alice")
        .await
        .unwrap();
    browser
        .element("password")
        .await
        .send_keys("alice-dev-password")
        .await
        .unwrap();
    browser.element("sign-in").await.click().await.unwrap();
    let application = browser.element("application").await.text().await.unwrap();
    assert_eq!(application, "Robot <Desktop>");
    let scopes = browser.element("scopes").await.text().await.unwrap();
    assert!(scopes.contains("Start, stop and read jobs"), "{scopes}");
    browser.element("allow").await.click().await.unwrap();
    browser.element("done").await;
    let query = tokio::time::timeout(Duration::from_secs(20), codes.recv())
        .await
        .expect("the browser reached the callback")
        .unwrap();
    browser.stop().await;

    let answer: std::collections::HashMap<_, _> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(&answer["state"], csrf.secret());
    assert_eq!(answer["iss"], stack.server.url);
    let tokens = stack
        .oauth(&redirect)
        .exchange_code(AuthorizationCode::new(answer["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .unwrap();
    let seen = introspect_grpc(
        &stack.server.url,
        &stack.introspect_key,
        tokens.access_token().secret(),
    )
    .await;
    assert!(seen.active);
    assert_eq!(seen.sub, "user-alice");
    assert_eq!(seen.scope, "OR.Jobs OR.Queues.Read");
}
