//! How answers are shown: aligned tables for people, JSON for scripts.

use std::time::SystemTime;

use extapps_client::model::{
    Application, ApplicationName, ApplicationType, AuditEvent, ClientSecret, Introspection,
    Resource,
};
use serde_json::{Value, json};

use crate::args::Output;

pub struct Render {
    output: Output,
}

fn time(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

fn maybe_time(time: Option<SystemTime>) -> String {
    time.map_or_else(|| "-".into(), self::time)
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn app_type(app: &Application) -> &'static str {
    match app.kind {
        ApplicationType::Confidential => "confidential",
        ApplicationType::NonConfidential => "non-confidential",
    }
}

fn application_json(app: &Application) -> Value {
    json!({
        "name": app.name.to_string(),
        "client_id": app.client_id(),
        "display_name": app.display_name,
        "type": app_type(app),
        "grants": app.grants.iter().map(|g| json!({
            "resource": g.resource,
            "user_scopes": g.user_scopes,
            "application_scopes": g.application_scopes,
        })).collect::<Vec<_>>(),
        "redirect_urls": app.redirect_urls,
        "secrets": app.secrets.iter().map(|s| json!({
            "secret_id": s.id,
            "name": s.name,
            "description": s.description,
            "create_time": time(s.created),
            "expire_time": s.expires.map(time),
            "last_use_time": s.last_used.map(time),
        })).collect::<Vec<_>>(),
        "keys": app.keys.iter().map(|k| json!({
            "key_id": k.id,
            "name": k.name,
            "algorithm": k.algorithm,
            "thumbprint": k.thumbprint,
            "description": k.description,
            "create_time": time(k.created),
            "expire_time": k.expires.map(time),
            "last_use_time": k.last_used.map(time),
        })).collect::<Vec<_>>(),
        "federated_credentials": app.federated_credentials.iter().map(|f| json!({
            "credential_id": f.id,
            "name": f.name,
            "issuer": f.issuer,
            "subject": f.subject,
            "audience": f.audience,
            "description": f.description,
            "create_time": time(f.created),
            "last_use_time": f.last_used.map(time),
        })).collect::<Vec<_>>(),
        "etag": app.etag,
        "create_time": time(app.created),
        "update_time": time(app.updated),
    })
}

/// Prints rows with columns padded to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

impl Render {
    pub fn new(output: Output) -> Self {
        Self { output }
    }

    pub fn application(&self, app: &Application) {
        if self.output == Output::Json {
            return print_json(&application_json(app));
        }
        println!("name:          {}", app.name);
        println!("client ID:     {}", app.client_id());
        println!("display name:  {}", app.display_name);
        println!("type:          {}", app_type(app));
        println!("etag:          {}", app.etag);
        let urls = if app.redirect_urls.is_empty() {
            "-".to_owned()
        } else {
            app.redirect_urls.join(" ")
        };
        println!("redirect URLs: {urls}");
        println!();
        let mut scopes = Vec::new();
        for grant in &app.grants {
            for (set, list) in [
                ("user", &grant.user_scopes),
                ("application", &grant.application_scopes),
            ] {
                if !list.is_empty() {
                    scopes.push(vec![grant.resource.clone(), set.to_owned(), list.join(" ")]);
                }
            }
        }
        table(&["RESOURCE", "SCOPE TYPE", "SCOPES"], &scopes);
        if !app.secrets.is_empty() {
            println!();
            let secrets: Vec<Vec<String>> = app
                .secrets
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        time(s.created),
                        maybe_time(s.expires),
                        maybe_time(s.last_used),
                        s.description.clone(),
                    ]
                })
                .collect();
            table(
                &[
                    "SECRET ID",
                    "CREATED",
                    "EXPIRES",
                    "LAST USED",
                    "DESCRIPTION",
                ],
                &secrets,
            );
        }
        if !app.keys.is_empty() {
            println!();
            let keys: Vec<Vec<String>> = app
                .keys
                .iter()
                .map(|k| {
                    vec![
                        k.id.clone(),
                        k.algorithm.clone(),
                        k.thumbprint.clone(),
                        time(k.created),
                        maybe_time(k.expires),
                        maybe_time(k.last_used),
                        k.description.clone(),
                    ]
                })
                .collect();
            table(
                &[
                    "KEY ID",
                    "ALGORITHM",
                    "THUMBPRINT",
                    "CREATED",
                    "EXPIRES",
                    "LAST USED",
                    "DESCRIPTION",
                ],
                &keys,
            );
        }
        if !app.federated_credentials.is_empty() {
            println!();
            let federated: Vec<Vec<String>> = app
                .federated_credentials
                .iter()
                .map(|f| {
                    vec![
                        f.id.clone(),
                        f.issuer.clone(),
                        f.subject.clone(),
                        f.audience.clone(),
                        maybe_time(f.last_used),
                    ]
                })
                .collect();
            table(
                &[
                    "FEDERATED CREDENTIAL ID",
                    "ISSUER",
                    "SUBJECT",
                    "AUDIENCE",
                    "LAST USED",
                ],
                &federated,
            );
        }
    }

    /// An application and the secret just created for it, shown this once.
    pub fn with_secret(&self, app: &Application, secret: Option<&ClientSecret>) {
        let secret = secret.map(ClientSecret::expose);
        if self.output == Output::Json {
            print_json(&json!({
                "application": application_json(app),
                "client_secret": secret.unwrap_or_default(),
            }));
        } else {
            self.application(app);
            if let Some(secret) = secret {
                println!();
                println!("client secret: {secret}");
            }
        }
        if secret.is_some() {
            eprintln!(
                "warning: store the client secret now: it is shown only this once and cannot be read back"
            );
        }
    }

    pub fn applications(&self, apps: &[Application]) {
        if self.output == Output::Json {
            return print_json(&Value::Array(apps.iter().map(application_json).collect()));
        }
        let rows: Vec<Vec<String>> = apps
            .iter()
            .map(|a| {
                vec![
                    a.display_name.clone(),
                    a.client_id().to_string(),
                    app_type(a).to_owned(),
                    a.grants
                        .iter()
                        .map(|g| g.resource.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ]
            })
            .collect();
        table(&["DISPLAY NAME", "CLIENT ID", "TYPE", "RESOURCES"], &rows);
    }

    pub fn resources(&self, resources: &[Resource]) {
        if self.output == Output::Json {
            let value: Vec<Value> = resources
                .iter()
                .map(|r| {
                    let names = |scopes: &[(String, String)]| {
                        scopes
                            .iter()
                            .map(|(name, _)| name.clone())
                            .collect::<Vec<_>>()
                    };
                    json!({
                        "id": r.id,
                        "display_name": r.display_name,
                        "description": r.description,
                        "user_scopes": names(&r.user_scopes),
                        "application_scopes": names(&r.application_scopes),
                    })
                })
                .collect();
            return print_json(&Value::Array(value));
        }
        let mut rows = Vec::new();
        for r in resources {
            for (set, scopes) in [
                ("user", &r.user_scopes),
                ("application", &r.application_scopes),
            ] {
                for (name, description) in scopes {
                    rows.push(vec![
                        r.id.clone(),
                        set.to_owned(),
                        name.clone(),
                        description.clone(),
                    ]);
                }
            }
        }
        table(&["RESOURCE", "SCOPE TYPE", "SCOPE", "DESCRIPTION"], &rows);
    }

    pub fn introspection(&self, answer: &Introspection) {
        let value = match answer {
            Introspection::Active(claims) => json!({
                "active": true,
                "scope": claims.scopes.join(" "),
                "client_id": claims.client_id,
                "token_type": claims.token_type,
                "exp": unix_seconds(claims.expires),
                "iat": unix_seconds(claims.issued),
                "sub": claims.subject.clone().unwrap_or_default(),
                "aud": claims.audience,
                "iss": claims.issuer,
                "jti": claims.jti,
            }),
            Introspection::Inactive => json!({"active": false}),
        };
        if self.output == Output::Json {
            return print_json(&value);
        }
        if let Value::Object(fields) = value {
            for (key, field) in fields {
                let text = match field {
                    Value::String(s) => s,
                    Value::Array(items) => items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" "),
                    other => other.to_string(),
                };
                println!("{key:<11}{text}");
            }
        }
    }

    pub fn audit(&self, events: &[AuditEvent]) {
        let action = |e: &AuditEvent| {
            e.action
                .as_str_name()
                .trim_start_matches("AUDIT_ACTION_")
                .to_lowercase()
        };
        if self.output == Output::Json {
            let value: Vec<Value> = events
                .iter()
                .map(|e| {
                    json!({
                        "name": e.name,
                        "create_time": time(e.time),
                        "action": action(e),
                        "application": e.application.as_ref().map(ToString::to_string).unwrap_or_default(),
                        "actor_key_id": e.actor_key_id,
                        "before": e.before.as_ref().map(application_json),
                        "after": e.after.as_ref().map(application_json),
                        "details": e.details,
                    })
                })
                .collect();
            return print_json(&Value::Array(value));
        }
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|e| {
                vec![
                    time(e.time),
                    action(e),
                    e.application
                        .as_ref()
                        .map(|name| name.client_id.to_string())
                        .unwrap_or_default(),
                    e.actor_key_id.clone(),
                ]
            })
            .collect();
        table(&["TIME", "ACTION", "APPLICATION", "ACTOR KEY"], &rows);
    }

    pub fn deleted(&self, name: &ApplicationName) {
        if self.output == Output::Json {
            print_json(&json!({"deleted": name.to_string()}));
        } else {
            println!("deleted {name}");
        }
    }
}
