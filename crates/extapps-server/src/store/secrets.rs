//! An application's secrets (SPEC rules 6a and 7): a new secret replaces
//! the others, at once or after a grace period, or is added beside them;
//! one secret is deleted by its ID. Each change is one transaction with its
//! audit event, and counts the live secrets against the cap inside it.

use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    sea_query::Expr,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::applications::{
    ChangeOf, IdempotencyWrite, Inserted, NewSecret, Written, apply_revision, insert_idempotency,
    insert_secret, load, next_revision, to_json, token_rules,
};
use super::entities::{application, application_secret};
use super::{Store, db_error};
use crate::domain::{
    Error, application::Application, audit::AuditAction, clock::to_micros,
    secret_rules::check_live_count,
};

/// A new secret (SPEC rules 6a and 7).
#[derive(Debug, Clone)]
pub struct RotateSecret {
    pub secret: NewSecret,
    /// Add the secret beside the live ones instead of replacing them (the
    /// two fields below are then zero and `None`).
    pub keep_existing: bool,
    /// How long older secrets keep working; zero ends them at once.
    pub grace_period: Duration,
    /// End every token the older secrets authenticated: `Some` with an
    /// instant after which none of them can be live any more.
    pub revoke_tokens: Option<OffsetDateTime>,
}

impl Store {
    /// Replaces the secrets of a confidential application (SPEC rule 7):
    /// older secrets end now or at the end of the grace period, and with
    /// `revoke_tokens` every token issued so far is revoked. `record` makes
    /// the idempotency record of the response, written in the same
    /// transaction; `None` is returned if a retry already recorded one.
    pub async fn rotate_secret(
        &self,
        of: ChangeOf<'_>,
        rotation: &RotateSecret,
        precondition: impl FnOnce(&Application) -> Result<(), Error>,
        record: impl FnOnce(&Application) -> Result<Option<IdempotencyWrite>, Error>,
    ) -> Result<Option<Application>, Error> {
        let ChangeOf {
            organization,
            client_id,
            now,
            ..
        } = of;
        let write = async |txn: &DatabaseTransaction, before: &Application| {
            precondition(before)?;
            let app_id = client_id.to_string();
            let of_app = application_secret::Column::ApplicationId.eq(app_id.clone());
            // Every secret so far, whose tokens the rotation may end.
            let earlier: Vec<String> = match rotation.revoke_tokens {
                Some(_) => application_secret::Entity::find()
                    .filter(of_app.clone())
                    .all(txn)
                    .await
                    .map_err(db_error)?
                    .into_iter()
                    .map(|secret| secret.id)
                    .collect(),
                None => Vec::new(),
            };
            // `before` was read in this transaction, with its live secrets;
            // a concurrent change fails the revision check below.
            let live = before.secrets.len();
            if rotation.keep_existing {
                check_live_count(live + 1)?;
            } else if rotation.grace_period.is_positive() {
                // The live secrets stay live through the grace period.
                check_live_count(live + 1)?;
                // Secrets expired already are left as they are: kept a
                // while, so that deleting one can still end its tokens.
                let grace_end = to_micros(now + rotation.grace_period);
                application_secret::Entity::update_many()
                    .col_expr(
                        application_secret::Column::ExpireTime,
                        Expr::value(grace_end),
                    )
                    .filter(of_app.clone())
                    .filter(
                        Condition::any()
                            .add(application_secret::Column::ExpireTime.is_null())
                            .add(application_secret::Column::ExpireTime.gt(grace_end)),
                    )
                    .exec(txn)
                    .await
                    .map_err(db_error)?;
                application_secret::Entity::update_many()
                    .col_expr(
                        application_secret::Column::ReplaceTime,
                        Expr::value(to_micros(now)),
                    )
                    .filter(of_app)
                    .filter(application_secret::Column::ReplaceTime.is_null())
                    .filter(
                        Condition::any()
                            .add(application_secret::Column::ExpireTime.is_null())
                            .add(application_secret::Column::ExpireTime.gt(to_micros(now))),
                    )
                    .exec(txn)
                    .await
                    .map_err(db_error)?;
            } else {
                application_secret::Entity::delete_many()
                    .filter(of_app)
                    .exec(txn)
                    .await
                    .map_err(db_error)?;
            }
            insert_secret(txn, &client_id, &rotation.secret, now).await?;

            let mut update = next_revision(before, now);
            if let Some(kept_until) = rotation.revoke_tokens {
                // By credential for tokens that name theirs; by time for
                // those issued before tokens did, and for user grants.
                let (_, mut cutoffs) = token_rules(txn, client_id).await?;
                cutoffs.prune(to_micros(now));
                for secret in &earlier {
                    let Ok(credential) = Uuid::parse_str(secret) else {
                        tracing::error!(secret_id = %secret, "a stored secret ID is not a UUID");
                        return Err(Error::Internal);
                    };
                    cutoffs.end(credential, before.revision + 1, to_micros(kept_until));
                }
                // The stored secrets are not all there were: one deleted or
                // expired and purged since may still have live tokens.
                // (Per-secret entries above are what earlier versions read.)
                cutoffs.end_all(before.revision + 1, to_micros(kept_until));
                update = update
                    .col_expr(
                        application::Column::CredentialCutoffs,
                        Expr::value(to_json(&cutoffs)?),
                    )
                    .col_expr(
                        application::Column::TokensNotBefore,
                        Expr::value(to_micros(now)),
                    );
                super::user_grants::revoke_user_grants_of(txn, client_id, now).await?;
            }
            apply_revision(txn, update, &app_id, before).await?;
            let after = load(txn, organization, client_id, now)
                .await?
                .ok_or(Error::Internal)?;
            if let Some(write) = record(&after)?
                && insert_idempotency(txn, write, now).await? == Inserted::AlreadyRecorded
            {
                return Ok(None);
            }
            let details = [
                ("secret_id".to_owned(), rotation.secret.id.clone()),
                (
                    "grace_period_seconds".to_owned(),
                    rotation.grace_period.whole_seconds().to_string(),
                ),
                (
                    "revoke_tokens".to_owned(),
                    rotation.revoke_tokens.is_some().to_string(),
                ),
                (
                    "keep_existing".to_owned(),
                    rotation.keep_existing.to_string(),
                ),
            ]
            .into();
            Ok(Some(Written {
                action: AuditAction::ApplicationSecretGenerated,
                after: Some(after.clone()),
                details,
                answer: after,
            }))
        };
        self.change_application(of, write).await
    }

    /// Deletes the secrets that stopped working (expired, or past their
    /// grace period) at `expired_by` or before: they are never shown or
    /// accepted, and otherwise an application adding secrets with an expiry
    /// would pile them up in what every authentication reads. Kept until
    /// then, one can still be deleted with the tokens it got while it
    /// worked. Returns how many went.
    pub async fn purge_expired_secrets(&self, expired_by: OffsetDateTime) -> Result<u64, Error> {
        let purged = application_secret::Entity::delete_many()
            .filter(application_secret::Column::ExpireTime.lte(to_micros(expired_by)))
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        Ok(purged.rows_affected)
    }

    /// Secrets that expire by themselves (not ones a newer secret
    /// replaced) after `now` and no later than each of `horizons`, counted
    /// per horizon: what an operator alerts on before applications lose
    /// their credentials.
    pub async fn secrets_expiring(
        &self,
        now: OffsetDateTime,
        horizons: &[Duration],
    ) -> Result<Vec<u64>, Error> {
        let mut counts = Vec::with_capacity(horizons.len());
        for horizon in horizons {
            let count = application_secret::Entity::find()
                .filter(application_secret::Column::ReplaceTime.is_null())
                .filter(application_secret::Column::ExpireTime.gt(to_micros(now)))
                .filter(application_secret::Column::ExpireTime.lte(to_micros(now + *horizon)))
                .count(&self.db)
                .await
                .map_err(db_error)?;
            counts.push(count);
        }
        Ok(counts)
    }
}
