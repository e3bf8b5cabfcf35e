//! A user's view of what they authorized, for the sign-in front end: the
//! applications a user has live grants for, and taking one back (every
//! access and refresh token of it ends at once, on every replica).

use crate::domain::user_grant::UserAuthorizationRecord;
use crate::domain::{
    Error, Reason, Violations,
    audit::{AuditAction, NewAuditEvent},
    authorization,
    caller::{Caller, Role},
    names::{ApplicationName, OrganizationId},
    page_token::checked_page_size,
};
use crate::service::Service;
use crate::store::UserGrantsOf;

impl Service {
    /// `ListUserAuthorizations`.
    pub async fn list_user_authorizations(
        &self,
        caller: &Caller,
        subject: &str,
        page_size_value: i32,
        page_token: &str,
    ) -> Result<(Vec<UserAuthorizationRecord>, String), Error> {
        caller.require_role(&[Role::Signin], "ListUserAuthorizations")?;
        let mut violations = Violations::default();
        if let Err(why) = authorization::check_subject(subject) {
            violations.push("subject", why);
        }
        let limit = violations.check(checked_page_size(page_size_value));
        violations.into_result()?;
        let limit = limit.ok_or(Error::Internal)?;
        let query = format!(
            "user-authorizations\n{subject}\n{}",
            caller
                .organization
                .as_ref()
                .map(OrganizationId::as_str)
                .unwrap_or_default()
        );
        let page = self
            .seals
            .page_tokens
            .request::<String>(query, limit, page_token)?;
        let records = self
            .store
            .list_user_authorizations(
                subject,
                caller.organization.as_ref(),
                page.after.as_deref(),
                page.rows_to_read(),
                self.clock.now(),
            )
            .await?;
        self.seals
            .page_tokens
            .page(&page, records, |record| record.client_id.to_string())
    }

    /// `RevokeUserAuthorization`.
    pub async fn revoke_user_authorization(
        &self,
        caller: &Caller,
        subject: &str,
        application: &str,
    ) -> Result<(), Error> {
        caller.require_role(&[Role::Signin], "RevokeUserAuthorization")?;
        let mut violations = Violations::default();
        if let Err(why) = authorization::check_subject(subject) {
            violations.push("subject", why);
        }
        let application = violations.check(ApplicationName::parse("application", application));
        violations.into_result()?;
        let application = application.ok_or(Error::Internal)?;
        let not_found = || Error::NotFound {
            reason: Reason::UserAuthorizationNotFound,
            message: "this user has no live authorization of this application".into(),
        };
        if !caller.sees(&application.organization) {
            return Err(not_found());
        }
        let state = self
            .store
            .client_state(application.client_id, self.clock.now())
            .await?
            .filter(|s| s.organization == application.organization)
            .ok_or_else(not_found)?;
        let now = self.clock.now();
        let ended = self
            .store
            .revoke_user_grants(
                UserGrantsOf::User {
                    client_id: application.client_id,
                    subject,
                },
                now + self.tokens.ttl,
                |count| NewAuditEvent {
                    organization: Some(state.organization.clone()),
                    application: Some(application.client_id),
                    actor: caller.key_id.clone(),
                    action: AuditAction::UserAuthorizationRevoked,
                    before: None,
                    after: None,
                    details: [
                        ("subject".to_owned(), subject.to_owned()),
                        ("grants".to_owned(), count.to_string()),
                    ]
                    .into(),
                },
                now,
            )
            .await?;
        if ended == 0 {
            return Err(not_found());
        }
        Ok(())
    }
}
