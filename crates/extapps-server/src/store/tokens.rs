//! What the token endpoints read and write: a client's state (type, grants,
//! live secret hashes, revocation mark), revoked token IDs, and last-use times
//! of secrets.

use std::sync::Arc;

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    sea_query::{Expr, Func, Query},
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::entities::{
    application, application_key, application_secret, federated_credential, revoked_token,
};
use super::shared_cache::Change;
use super::{Store, commit, db_error, retrying};
use crate::domain::{
    Error,
    application_type::ApplicationType,
    client_key::VerifyingKey,
    client_state::{ClientState, StoredSecret},
    clock::{from_micros, to_micros},
    credential,
    federation::FederatedCredential,
    names::{ClientId, OrganizationId},
};

/// The PostgreSQL advisory lock that lets one replica purge at a time.
const PURGE_LOCK: i64 = 0x6578_7461_7070_7331; // "extapps1"

/// What introspection needs about a token: its application, and whether
/// the token (or the grant it came from) was revoked by its ID.
#[derive(Debug, Clone)]
pub struct IntrospectionState {
    pub client: Arc<ClientState>,
    pub revoked: bool,
}

impl Store {
    /// The application of a token and whether the token (or the grant it
    /// came from: revoking a grant revokes its tokens) was revoked. Each
    /// part comes from this replica's caches when they are trusted and from
    /// the database otherwise. `None` if the application no longer exists.
    pub async fn introspection_state(
        &self,
        client_id: ClientId,
        jti: Uuid,
        grant: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<Option<IntrospectionState>, Error> {
        let Some(state) = self.client_state(client_id, now).await? else {
            return Ok(None);
        };
        let revoked = self.token_revoked(jti).await?
            || match grant {
                Some(grant) => self.token_revoked(grant).await?,
                None => false,
            };
        Ok(Some(IntrospectionState {
            client: state,
            revoked,
        }))
    }

    /// The state of a client, or `None` if no such application exists:
    /// from this replica's cache when it is trusted.
    pub async fn client_state(
        &self,
        client_id: ClientId,
        now: OffsetDateTime,
    ) -> Result<Option<Arc<ClientState>>, Error> {
        Ok(self
            .client_state_and_origin(client_id, now)
            .await?
            .map(|(state, _)| state))
    }

    /// [`Store::client_state`], and whether it came from this replica's
    /// memory (`true`) rather than the database.
    pub async fn client_state_and_origin(
        &self,
        client_id: ClientId,
        now: OffsetDateTime,
    ) -> Result<Option<(Arc<ClientState>, bool)>, Error> {
        if let Some(state) = self.cache.client(&client_id) {
            return Ok(Some((state, true)));
        }
        Ok(self
            .reread_client_state(client_id, now)
            .await?
            .map(|state| (state, false)))
    }

    /// The state of a client as the database holds it now, kept in this
    /// replica's cache for the next request.
    pub async fn reread_client_state(
        &self,
        client_id: ClientId,
        now: OffsetDateTime,
    ) -> Result<Option<Arc<ClientState>>, Error> {
        let epoch = self.cache.epoch();
        let state = retrying(|| self.read_client_state(client_id, now))
            .await?
            .map(Arc::new);
        if let Some(state) = &state {
            self.cache.keep_client(epoch, client_id, state.clone());
        }
        Ok(state)
    }

    /// The state of a client if this replica holds it in a trusted cache:
    /// for callers that may not cause a database read.
    pub fn cached_client_state(&self, client_id: ClientId) -> Option<Arc<ClientState>> {
        self.cache.client(&client_id)
    }

    /// The state as stored, with every secret not yet purged. Two reads, in
    /// this order on purpose: a change between them can only make the
    /// secrets newer than the application row (a secret rotated away then
    /// looks ended a moment early), never bring back a secret the row's
    /// revision has already replaced.
    async fn read_client_state(
        &self,
        client_id: ClientId,
        now: OffsetDateTime,
    ) -> Result<Option<ClientState>, Error> {
        let id = client_id.to_string();
        let Some(app) = application::Entity::find_by_id(id.clone())
            .one(&self.db)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        // Credentials expired at `now` are kept a while (so that deleting
        // one can still end its tokens) but never work again: not read.
        let secrets = super::applications::live_secrets(now)
            .filter(application_secret::Column::ApplicationId.eq(id.clone()))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        let keys = super::applications::live_keys(now)
            .filter(application_key::Column::ApplicationId.eq(id.clone()))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        let federated = federated_credential::Entity::find()
            .filter(federated_credential::Column::ApplicationId.eq(id))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        let corrupt = || {
            tracing::error!(application = %app.id, "stored application does not parse");
            Error::Internal
        };
        Ok(Some(ClientState {
            organization: OrganizationId::parse(&app.organization).map_err(|_| corrupt())?,
            display_name: app.display_name.clone(),
            app_type: ApplicationType::parse(&app.app_type).ok_or_else(corrupt)?,
            redirect_urls: super::convert::redirect_urls_from_json(&app.redirect_urls, &app.id)?,
            grants: Arc::new(serde_json::from_str(&app.grants).map_err(|_| corrupt())?),
            tokens_not_before: app.tokens_not_before.map(from_micros),
            revision: app.revision,
            scope_removals: serde_json::from_str(&app.scope_removals).map_err(|_| corrupt())?,
            credential_cutoffs: serde_json::from_str(&app.credential_cutoffs)
                .map_err(|_| corrupt())?,
            secrets: secrets
                .into_iter()
                .map(|s| {
                    Ok(StoredSecret {
                        id: Uuid::parse_str(&s.id).map_err(|_| corrupt())?,
                        phc: s.phc,
                        expire_time: s.expire_time.map(from_micros),
                    })
                })
                .collect::<Result<_, Error>>()?,
            // A key today's rules refuse (registered under looser ones)
            // verifies nothing, but leaves the application's other
            // credentials working.
            keys: keys
                .into_iter()
                .filter_map(|k| {
                    let key = Uuid::parse_str(&k.id).ok().and_then(|id| {
                        VerifyingKey::from_stored(id, &k.jwk, k.expire_time.map(from_micros))
                    });
                    if key.is_none() {
                        tracing::warn!(key_id = %k.id, "a stored client key does not pass today's checks: it verifies nothing");
                    }
                    key
                })
                .collect(),
            federated: federated
                .into_iter()
                .map(|f| {
                    Ok(FederatedCredential {
                        id: Uuid::parse_str(&f.id).map_err(|_| corrupt())?,
                        issuer: f.issuer,
                        subject: f.subject,
                        audience: f.audience,
                    })
                })
                .collect::<Result<_, Error>>()?,
        }))
    }

    /// Whether the token with this ID was revoked: from this replica's
    /// memory when its caches are trusted.
    pub async fn token_revoked(&self, jti: Uuid) -> Result<bool, Error> {
        match self.cache.revoked(&jti) {
            Some(revoked) => Ok(revoked),
            None => retrying(|| self.is_token_revoked(jti)).await,
        }
    }

    /// Whether the token with this ID was revoked, by the database.
    async fn is_token_revoked(&self, jti: Uuid) -> Result<bool, Error> {
        Ok(revoked_token::Entity::find_by_id(jti.to_string())
            .one(&self.db)
            .await
            .map_err(db_error)?
            .is_some())
    }

    /// Records a revocation; revoking twice is harmless, so a transient
    /// failure is retried.
    pub async fn revoke_token(
        &self,
        jti: Uuid,
        client_id: ClientId,
        expires: OffsetDateTime,
    ) -> Result<(), Error> {
        retrying(|| self.record_revocation(jti, client_id, expires)).await
    }

    async fn record_revocation(
        &self,
        jti: Uuid,
        client_id: ClientId,
        expires: OffsetDateTime,
    ) -> Result<(), Error> {
        let txn = self.write().await?;
        revoked_token::Entity::insert(revoked_token::ActiveModel {
            jti: Set(jti.to_string()),
            application_id: Set(client_id.to_string()),
            expire_time: Set(to_micros(expires)),
        })
        .on_conflict_do_nothing()
        .exec(&txn)
        .await
        .map_err(db_error)?;
        self.commit_change(txn, Change::Revoked(jti, to_micros(expires)))
            .await
    }

    /// Deletes revocations of tokens expired at `now` and forgets them in
    /// memory, and prunes old SQLite cache announcements. Runs in the
    /// background, never inside a request; on PostgreSQL only one replica
    /// purges at a time (an advisory lock), so purges cannot deadlock one
    /// another, and revocations (new rows, of live tokens) never touch the
    /// rows a purge deletes.
    pub async fn purge_expired_revocations(&self, now: OffsetDateTime) -> Result<u64, Error> {
        let now = to_micros(now);
        self.cache.forget_expired(now);
        let txn = self.write().await?;
        if txn.get_database_backend() == DbBackend::Postgres {
            let try_lock = Query::select()
                .expr(Func::cust("pg_try_advisory_xact_lock").arg(PURGE_LOCK))
                .to_owned();
            let locked = txn
                .query_one(&try_lock)
                .await
                .map_err(db_error)?
                .and_then(|row| row.try_get_by_index::<bool>(0).ok())
                .unwrap_or(false);
            if !locked {
                return Ok(0);
            }
        }
        let deleted = revoked_token::Entity::delete_many()
            .filter(revoked_token::Column::ExpireTime.lte(now))
            .exec(&txn)
            .await
            .map_err(db_error)?
            .rows_affected;
        super::shared_cache::prune_announcements(&txn)
            .await
            .map_err(db_error)?;
        commit(txn).await?;
        Ok(deleted)
    }

    /// How many revocations this replica holds in memory.
    #[cfg(feature = "test-support")]
    pub fn revocations_held(&self) -> usize {
        self.cache.revocations_held()
    }

    /// Replaces a secret's hash with `upgraded`, if it is still `current`
    /// (another request may have replaced it first), and tells every
    /// replica to read the application again. `false` if nothing changed.
    pub async fn replace_secret_hash(
        &self,
        client_id: ClientId,
        secret_id: Uuid,
        current: &str,
        upgraded: &str,
    ) -> Result<bool, Error> {
        let txn = self.write().await?;
        let replaced = application_secret::Entity::update_many()
            .col_expr(application_secret::Column::Phc, Expr::value(upgraded))
            .filter(application_secret::Column::Id.eq(secret_id.to_string()))
            .filter(application_secret::Column::Phc.eq(current))
            .exec(&txn)
            .await
            .map_err(db_error)?
            .rows_affected;
        if replaced == 0 {
            return Ok(false);
        }
        self.commit_change(txn, Change::Application(client_id))
            .await?;
        Ok(true)
    }

    /// How many stored secrets have hashes of other parameters than
    /// today's (see [`credential::is_current_hash`]).
    pub async fn password_grade_hashes(&self) -> Result<u64, Error> {
        application_secret::Entity::find()
            .filter(
                application_secret::Column::Phc
                    .not_like(format!("{}%", credential::CURRENT_PHC_PREFIX)),
            )
            .count(&self.db)
            .await
            .map_err(db_error)
    }

    /// Records when `credential` was last used.
    pub async fn touch_credential(
        &self,
        credential: Credential,
        when: OffsetDateTime,
    ) -> Result<(), Error> {
        match credential {
            Credential::Secret(id) => {
                touch::<application_secret::Entity>(
                    &self.db,
                    application_secret::Column::Id,
                    application_secret::Column::LastUseTime,
                    id,
                    when,
                )
                .await
            }
            Credential::Key(id) => {
                touch::<application_key::Entity>(
                    &self.db,
                    application_key::Column::Id,
                    application_key::Column::LastUseTime,
                    id,
                    when,
                )
                .await
            }
            Credential::Federated(id) => {
                touch::<federated_credential::Entity>(
                    &self.db,
                    federated_credential::Column::Id,
                    federated_credential::Column::LastUseTime,
                    id,
                    when,
                )
                .await
            }
        }
    }
}

/// A credential that authenticated a client, by its ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Secret(Uuid),
    Key(Uuid),
    Federated(Uuid),
}

impl Credential {
    pub fn id(self) -> Uuid {
        match self {
            Self::Secret(id) | Self::Key(id) | Self::Federated(id) => id,
        }
    }
}

/// Sets the last-use time of the row of `E` whose `id_column` is `id`.
async fn touch<E: EntityTrait>(
    db: &sea_orm::DatabaseConnection,
    id_column: E::Column,
    last_use_column: E::Column,
    id: Uuid,
    when: OffsetDateTime,
) -> Result<(), Error> {
    E::update_many()
        .col_expr(last_use_column, Expr::value(to_micros(when)))
        .filter(id_column.eq(id.to_string()))
        .exec(db)
        .await
        .map_err(db_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_hash() {
        let secret = StoredSecret {
            id: Uuid::nil(),
            phc: "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA".into(),
            expire_time: None,
        };
        let shown = format!("{secret:?}");
        assert!(shown.contains(&Uuid::nil().to_string()) && shown.contains("REDACTED"));
        assert!(!shown.contains("argon2id"), "{shown}");

        // Nor the secret about to be stored, nor a rotation holding it.
        let new = crate::store::NewSecret {
            id: "id-1".into(),
            phc: "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA".into(),
            description: "CI".into(),
            expire_time: None,
        };
        let rotation = crate::store::RotateSecret {
            secret: new,
            keep_existing: true,
            grace_period: time::Duration::ZERO,
            revoke_tokens: None,
        };
        let shown = format!("{rotation:?}");
        assert!(
            shown.contains("id-1") && shown.contains("REDACTED"),
            "{shown}"
        );
        assert!(!shown.contains("argon2id"), "{shown}");
    }
}
