//! The two types of application (SPEC section 2 rule 2; RFC 6749 section
//! 2.1): one that can keep a secret, and one that cannot.

use serde::{Deserialize, Serialize};

/// Whether an application can keep a secret (RFC 6749 section 2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationType {
    Confidential,
    NonConfidential,
}

impl ApplicationType {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationType::Confidential => "confidential",
            ApplicationType::NonConfidential => "non_confidential",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "confidential" => Some(ApplicationType::Confidential),
            "non_confidential" => Some(ApplicationType::NonConfidential),
            _ => None,
        }
    }
}
