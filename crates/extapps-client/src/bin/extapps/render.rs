//! How answers are shown: aligned tables for people, JSON for scripts.

use std::time::{Duration, SystemTime};

use extapps_client::v1 as pb;
use serde_json::{Value, json};

use crate::args::Output;

pub struct Render {
    output: Output,
}

fn time(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(|t| u64::try_from(t.seconds).ok())
        .map(|s| {
            humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(s))
                .to_string()
        })
        .unwrap_or_else(|| "-".into())
}

fn app_type(app: &pb::Application) -> &'static str {
    match app.r#type() {
        pb::ApplicationType::Confidential => "confidential",
        pb::ApplicationType::NonConfidential => "non-confidential",
        pb::ApplicationType::Unspecified => "unspecified",
    }
}

fn application_json(app: &pb::Application) -> Value {
    json!({
        "name": app.name,
        "client_id": app.client_id,
        "display_name": app.display_name,
        "type": app_type(app),
        "grants": app.grants.iter().map(|g| json!({
            "resource": g.resource,
            "user_scopes": g.user_scopes,
            "application_scopes": g.application_scopes,
        })).collect::<Vec<_>>(),
        "redirect_urls": app.redirect_urls,
        "secrets": app.secrets.iter().map(|s| json!({
            "secret_id": s.secret_id,
            "create_time": time(s.create_time.as_ref()),
            "expire_time": s.expire_time.as_ref().map(|t| time(Some(t))),
            "last_use_time": s.last_use_time.as_ref().map(|t| time(Some(t))),
        })).collect::<Vec<_>>(),
        "etag": app.etag,
        "create_time": time(app.create_time.as_ref()),
        "update_time": time(app.update_time.as_ref()),
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

    pub fn application(&self, app: Option<&pb::Application>) {
        let Some(app) = app else { return };
        if self.output == Output::Json {
            return print_json(&application_json(app));
        }
        println!("name:          {}", app.name);
        println!("client ID:     {}", app.client_id);
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
                        s.secret_id.clone(),
                        time(s.create_time.as_ref()),
                        time(s.expire_time.as_ref()),
                        time(s.last_use_time.as_ref()),
                    ]
                })
                .collect();
            table(&["SECRET ID", "CREATED", "EXPIRES", "LAST USED"], &secrets);
        }
    }

    /// An application and the secret just created for it, shown this once.
    pub fn with_secret(&self, app: Option<&pb::Application>, secret: &str) {
        if self.output == Output::Json {
            let mut value = app.map(application_json).unwrap_or(Value::Null);
            print_json(&json!({"application": value.take(), "client_secret": secret}));
        } else {
            self.application(app);
            if !secret.is_empty() {
                println!();
                println!("client secret: {secret}");
            }
        }
        if !secret.is_empty() {
            eprintln!(
                "warning: store the client secret now: it is shown only this once and cannot be read back"
            );
        }
    }

    pub fn applications(&self, apps: &[pb::Application]) {
        if self.output == Output::Json {
            return print_json(&Value::Array(apps.iter().map(application_json).collect()));
        }
        let rows: Vec<Vec<String>> = apps
            .iter()
            .map(|a| {
                vec![
                    a.display_name.clone(),
                    a.client_id.clone(),
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

    pub fn resources(&self, resources: &[pb::Resource]) {
        if self.output == Output::Json {
            let value: Vec<Value> = resources
                .iter()
                .map(|r| {
                    let names =
                        |s: &[pb::Scope]| s.iter().map(|x| x.name.clone()).collect::<Vec<_>>();
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
                for scope in scopes {
                    rows.push(vec![
                        r.id.clone(),
                        set.to_owned(),
                        scope.name.clone(),
                        scope.description.clone(),
                    ]);
                }
            }
        }
        table(&["RESOURCE", "SCOPE TYPE", "SCOPE", "DESCRIPTION"], &rows);
    }

    pub fn introspection(&self, answer: &pb::IntrospectTokenResponse) {
        let value = if answer.active {
            json!({
                "active": true,
                "scope": answer.scope,
                "client_id": answer.client_id,
                "token_type": answer.token_type,
                "exp": answer.exp,
                "iat": answer.iat,
                "sub": answer.sub,
                "aud": answer.aud,
                "iss": answer.iss,
                "jti": answer.jti,
            })
        } else {
            json!({"active": false})
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

    pub fn audit(&self, events: &[pb::AuditEvent]) {
        let action = |e: &pb::AuditEvent| {
            e.action()
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
                        "create_time": time(e.create_time.as_ref()),
                        "action": action(e),
                        "application": e.application,
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
                    time(e.create_time.as_ref()),
                    action(e),
                    e.application
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                    e.actor_key_id.clone(),
                ]
            })
            .collect();
        table(&["TIME", "ACTION", "APPLICATION", "ACTOR KEY"], &rows);
    }

    pub fn deleted(&self, name: &str) {
        if self.output == Output::Json {
            print_json(&json!({"deleted": name}));
        } else {
            println!("deleted {name}");
        }
    }
}
