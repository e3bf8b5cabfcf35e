"""An application without a shared secret, through an independent OAuth
client library: the administrator registers a public key with the Python SDK
and deletes the application's secret; authlib's PrivateKeyJWT then signs the
client assertions (RFC 7523) with which the application gets tokens and
revokes one. Exits non-zero on the first thing that is not as expected.

    python private_key_jwt.py HOST:PORT KEY ORGANIZATION INTROSPECT_KEY
"""

import json
import sys

import grpc
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from joserfc.jwk import ECKey, OKPKey

from extapps.v1 import application_pb2, external_applications_pb2 as api
from extapps.v1 import external_applications_pb2_grpc as api_grpc


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):
    """authlib's PrivateKeyJWT, with assertions that live two minutes: its
    default of an hour is more than the server accepts (5 minutes)."""

    def sign(self, auth, token_endpoint):
        return private_key_jwt_sign(
            auth.client_secret,
            client_id=auth.client_id,
            token_endpoint=token_endpoint,
            alg=self.alg,
            expires_in=120,
        )


def main(target: str, key: str, organization: str, introspect_key: str) -> None:
    metadata = (("authorization", f"Bearer {key}"),)
    stub = api_grpc.ExternalApplicationsStub(grpc.insecure_channel(target))
    base = f"http://{target}"
    token_endpoint = f"{base}/oauth2/token"

    server_metadata = requests.get(f"{base}/.well-known/oauth-authorization-server", timeout=30).json()
    assert "private_key_jwt" in server_metadata["token_endpoint_auth_methods_supported"], server_metadata
    assert "ES256" in server_metadata["token_endpoint_auth_signing_alg_values_supported"]

    registered = stub.RegisterApplication(
        api.RegisterApplicationRequest(
            parent=f"organizations/{organization}",
            application=application_pb2.Application(
                display_name="Python private_key_jwt",
                type=application_pb2.APPLICATION_TYPE_CONFIDENTIAL,
                grants=[application_pb2.ResourceGrant(resource="OR", application_scopes=["OR.Jobs.Read"])],
            ),
        ),
        metadata=metadata,
    )
    client_id = registered.application.client_id
    name = registered.application.name

    keys = {"ES256": ECKey.generate_key("P-256"), "EdDSA": OKPKey.generate_key("Ed25519")}
    for alg, private in keys.items():
        public = private.as_dict(private=False)
        added = stub.AddApplicationKey(
            api.AddApplicationKeyRequest(name=name, jwk=json.dumps(public), description=f"authlib {alg}"),
            metadata=metadata,
        )
        assert added.key.algorithm == alg, added.key
        assert added.key.thumbprint == private.thumbprint(), (added.key.thumbprint, private.thumbprint())

    # No shared secret left: the keys are the application's only credentials.
    without_secret = stub.DeleteApplicationSecret(
        api.DeleteApplicationSecretRequest(name=registered.application.secrets[0].name), metadata=metadata
    ).application
    assert len(without_secret.secrets) == 0 and len(without_secret.keys) == 2, without_secret

    for alg, private in keys.items():
        # authlib signs for revocation too when told to (it would send the
        # key as a Basic secret otherwise); the token endpoint is the
        # assertions' audience either way.
        assertions = ShortLivedPrivateKeyJWT(token_endpoint, alg=alg)
        session = OAuth2Session(
            client_id,
            private,
            token_endpoint_auth_method=assertions,
            revocation_endpoint_auth_method=assertions,
        )
        token = session.fetch_token(token_endpoint, grant_type="client_credentials")
        assert token["token_type"] == "Bearer" and token["scope"] == "OR.Jobs.Read", token
        # Each assertion is new (its own jti): a second token comes as well.
        again = session.fetch_token(token_endpoint, grant_type="client_credentials")
        assert again["access_token"] != token["access_token"]

        def active(access_token: str) -> bool:
            answer = requests.post(
                f"{base}/oauth2/introspect",
                headers={"Authorization": f"Bearer {introspect_key}"},
                data={"token": access_token},
                timeout=30,
            ).json()
            return answer["active"]

        assert active(token["access_token"])
        revoked = session.revoke_token(f"{base}/oauth2/revoke", token["access_token"])
        assert revoked.status_code == 200, revoked.text
        # A 200 is also the answer for a token revocation does not know
        # (RFC 7009): the token itself must have ended, and only it.
        assert not active(token["access_token"])
        assert active(again["access_token"])

    # A key the application does not hold is refused.
    stranger = OAuth2Session(
        client_id,
        ECKey.generate_key("P-256"),
        token_endpoint_auth_method=ShortLivedPrivateKeyJWT(token_endpoint, alg="ES256"),
    )
    try:
        stranger.fetch_token(token_endpoint, grant_type="client_credentials")
        raise AssertionError("a stranger's key got a token")
    except Exception as error:  # authlib raises OAuthError
        assert "invalid_client" in str(error), error

    listed = stub.GetApplication(api.GetApplicationRequest(name=name), metadata=metadata).application
    assert all(k.HasField("last_use_time") for k in listed.keys), listed.keys

    print("python private_key_jwt: ok")


if __name__ == "__main__":
    main(*sys.argv[1:5])
