//! The caller key, attached to every call.

use tonic::{
    Request, Status,
    metadata::{AsciiMetadataValue, errors::InvalidMetadataValue},
    service::Interceptor,
};

/// Adds `authorization: Bearer <key>` to every call. The header is marked
/// sensitive (never indexed by HTTP/2 compression) and `Debug` hides the key.
#[derive(Clone)]
pub struct BearerAuth(AsciiMetadataValue);

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerAuth([REDACTED])")
    }
}

impl BearerAuth {
    pub fn new(key: &str) -> Result<Self, InvalidMetadataValue> {
        let mut value: AsciiMetadataValue = format!("Bearer {key}").parse()?;
        value.set_sensitive(true);
        Ok(Self(value))
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}
