//! What the server stored, read straight from its database: the rows
//! behind an application's secrets, and how many rows a table holds.

use extapps_server::domain::credential;
use sea_orm::{ConnectionTrait, Statement};
use secrecy::SecretString;

use crate::support::harness::{Backend, TestServer};

/// The PHC strings stored for one application.
pub(crate) async fn stored_secret_hashes(server: &TestServer, client_id: &str) -> Vec<String> {
    let db = server.store().connection();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            match server.backend {
                Backend::Sqlite => "SELECT phc FROM application_secrets WHERE application_id = ?",
                Backend::Postgres => {
                    "SELECT phc FROM application_secrets WHERE application_id = $1"
                }
            },
            [client_id.into()],
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

/// Whether `secret` is the one the PHC string `phc` was made from.
pub(crate) fn verifies(secret: &str, phc: &str) -> bool {
    credential::verify_secret(&SecretString::from(secret.to_owned()), phc)
}

/// How many rows `table` holds.
pub(crate) async fn count(server: &TestServer, table: &str) -> i64 {
    let db = server.store().connection();
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        format!("SELECT COUNT(*) FROM {table}"),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index::<i64>(0)
    .unwrap()
}
