//! Hostile input beyond the token endpoint: gRPC request messages that do
//! not decode, and forged caller keys from one address.

use extapps_server::domain::caller::Role;
use reqwest::StatusCode;

use crate::support::harness::{Backend, TestServer};
use crate::support::oauth_http::http;

crate::on_both_backends!(
    undecodable_messages_are_invalid_arguments,
    forged_caller_keys_close_the_source_but_not_for_known_keys,
    grpc_sources_behind_a_proxy_are_told_apart,
);

/// Sends raw bytes as a request message, and reads none back.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ();
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, _: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        Ok(Some(()))
    }
}

async fn undecodable_messages_are_invalid_arguments(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.key(Some("acme"), Role::Admin, &[]).await;
    let mut grpc = tonic::client::Grpc::new(server.channel());
    // A field 1 (`parent`, a string) whose length runs past the message.
    for garbage in [vec![0x0a, 0xff, 0x01, b'x'], vec![0xff; 16]] {
        grpc.ready().await.unwrap();
        let mut request = tonic::Request::new(garbage);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
        let status = grpc
            .unary(
                request,
                "/extapps.v1.ExternalApplications/ListApplications"
                    .parse()
                    .unwrap(),
                RawCodec,
            )
            .await
            .unwrap_err();
        let report = extapps_client::ErrorReport::from(&status);
        assert_eq!(report.code, tonic::Code::InvalidArgument, "{status:?}");
        assert_eq!(report.reason.as_deref(), Some("VALIDATION_FAILED"));
        assert!(report.violation("request").is_some());
    }
    // An unknown method of a known service is UNIMPLEMENTED, not 404.
    grpc.ready().await.unwrap();
    let status = grpc
        .unary(
            tonic::Request::new(Vec::new()),
            "/extapps.v1.ExternalApplications/NoSuchMethod"
                .parse()
                .unwrap(),
            RawCodec,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
}

async fn forged_caller_keys_close_the_source_but_not_for_known_keys(backend: Backend) {
    let server = TestServer::start_with(backend, crate::support::client_auth::budget(3, 0)).await;
    let admin_key = server.key(Some("acme"), Role::Admin, &[]).await;
    let mut admin = server.client(&admin_key);
    let list = || pb_list();
    admin.list_applications(list()).await.unwrap();
    // Well-formed keys nobody holds (prefix and checksum are public).
    let forged = forged_key;
    for i in 0..3 {
        let status = server
            .client(&forged(i))
            .list_applications(list())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    }
    // The address has spent its failures: the next forged key is refused
    // before any lookup, with a reason a client can act on.
    let status = server
        .client(&forged(9))
        .list_applications(list())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        extapps_client::ErrorReport::from(&status).reason.as_deref(),
        Some("TOO_MANY_FAILURES")
    );
    // The same over HTTP introspection.
    let response = http()
        .post(format!("{}/oauth2/introspect", server.url))
        .bearer_auth(forged(10))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // A key that authenticated before still works from that address.
    admin.list_applications(list()).await.unwrap();
    server.clock.advance(time::Duration::seconds(20));
    let status = server
        .client(&forged(11))
        .list_applications(list())
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        tonic::Code::Unauthenticated,
        "allowed to fail again"
    );
}

fn pb_list() -> extapps_client::v1::ListApplicationsRequest {
    extapps_client::v1::ListApplicationsRequest {
        parent: "organizations/acme".into(),
        page_size: 10,
        page_token: String::new(),
    }
}

/// A well-formed caller key (prefix and checksum right) that nobody holds.
fn forged_key(i: u8) -> String {
    let signed = format!("extapps_key_{}", (b'A' + i % 26) as char) + &"B".repeat(42);
    format!("{signed}{:08x}", crc32fast::hash(signed.as_bytes()))
}

/// Behind a trusted proxy, gRPC calls are charged to the address the proxy
/// forwards, as OAuth requests are: one address's failures do not close
/// the others.
async fn grpc_sources_behind_a_proxy_are_told_apart(backend: Backend) {
    let server = TestServer::start_with(backend, crate::support::client_auth::budget(2, 1)).await;
    let call = |address: &'static str, key: String| {
        let mut client = server.client(&key);
        async move {
            let mut request = tonic::Request::new(pb_list());
            request
                .metadata_mut()
                .insert("x-forwarded-for", address.parse().unwrap());
            client.list_applications(request).await.unwrap_err().code()
        }
    };
    for i in 0..2 {
        assert_eq!(
            call("192.0.2.1", forged_key(i)).await,
            tonic::Code::Unauthenticated
        );
    }
    assert_eq!(
        call("192.0.2.1", forged_key(3)).await,
        tonic::Code::ResourceExhausted
    );
    assert_eq!(
        call("192.0.2.2", forged_key(4)).await,
        tonic::Code::Unauthenticated,
        "another address behind the same proxy is not closed"
    );
}
