"""Sequential latency of each unary RPC through the generated Python SDK
(grpcio), as a Python service would call it: one channel, per-call metadata.

Reads EXTAPPS_URL, EXTAPPS_{ADMIN,INTROSPECT,SIGNIN}_KEY, EXTAPPS_ORGANIZATION
and EXTAPPS_ROUNDS; prints `python RPC MICROS` per call.
"""

import base64
import http.client
import json
import os
import secrets
import sys
import time
import urllib.parse

import grpc

from extapps.v1 import application_pb2 as app
from extapps.v1 import external_applications_pb2 as api
from extapps.v1 import external_applications_pb2_grpc as api_grpc
from extapps.v1 import signin_pb2 as signin
from google.protobuf import field_mask_pb2

URL = urllib.parse.urlsplit(os.environ["EXTAPPS_URL"])
ADMIN = os.environ["EXTAPPS_ADMIN_KEY"]
INTROSPECT = os.environ["EXTAPPS_INTROSPECT_KEY"]
SIGNIN = os.environ["EXTAPPS_SIGNIN_KEY"]
PARENT = "organizations/" + os.environ["EXTAPPS_ORGANIZATION"]
ROUNDS = int(os.environ["EXTAPPS_ROUNDS"])
REDIRECT = "http://127.0.0.1/callback"

stub = api_grpc.ExternalApplicationsStub(grpc.insecure_channel(URL.netloc))


def call(rpc, request, key):
    metadata = (("authorization", f"Bearer {key}"),)
    method = getattr(stub, rpc)
    start = time.perf_counter_ns()
    try:
        response = method(request, metadata=metadata)
    except grpc.RpcError as error:
        raise RuntimeError(f"{rpc}: {error.code().name}: {error.details()}") from None
    micros = (time.perf_counter_ns() - start) // 1000
    print(f"python {rpc} {micros}", flush=True)
    return response


def http_request(method, path, body=None, headers=None):
    connection = http.client.HTTPConnection(URL.hostname, URL.port)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("Location"), response.read()
    finally:
        connection.close()


def access_token(client_id, secret):
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    status, _, body = http_request(
        "POST",
        "/oauth2/token",
        body="grant_type=client_credentials",
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    if status != 200:
        raise RuntimeError(f"token endpoint answered {status}: {body!r}")
    return json.loads(body)["access_token"]


def authorization_request(client_id):
    query = urllib.parse.urlencode(
        {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "OR.Jobs", "state": "s1"}
    )
    status, location, body = http_request("GET", "/oauth2/authorize?" + query)
    if status != 303 or not location:
        raise RuntimeError(f"authorize answered {status}: {body!r}")
    found = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query).get("authorization_request")
    if not found:
        raise RuntimeError(f"authorize redirected without authorization_request: {location}")
    return "authorizationRequests/" + found[0]


def cycle(round_number):
    call("ListResources", api.ListResourcesRequest(), ADMIN)
    registered = call(
        "RegisterApplication",
        api.RegisterApplicationRequest(
            parent=PARENT,
            application=app.Application(
                display_name=f"latency python {round_number} {secrets.token_hex(4)}",
                type=app.APPLICATION_TYPE_CONFIDENTIAL,
                grants=[app.ResourceGrant(resource="OR", user_scopes=["OR.Jobs"], application_scopes=["OR.Jobs.Read"])],
                redirect_urls=[REDIRECT],
            ),
        ),
        ADMIN,
    ).application
    name, client_id = registered.name, registered.client_id
    call("GetApplication", api.GetApplicationRequest(name=name), ADMIN)
    call("ListApplications", api.ListApplicationsRequest(parent=PARENT, page_size=10), ADMIN)
    call(
        "UpdateApplication",
        api.UpdateApplicationRequest(
            application=app.Application(name=name, display_name=registered.display_name + " renamed"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        ADMIN,
    )
    call(
        "UpdateApplicationScopes",
        api.UpdateApplicationScopesRequest(
            name=name,
            grants=[
                app.ResourceGrant(
                    resource="OR",
                    user_scopes=["OR.Jobs", "OR.Queues"],
                    application_scopes=["OR.Jobs.Read", "OR.Queues"],
                )
            ],
        ),
        ADMIN,
    )
    secret = call("GenerateApplicationSecret", api.GenerateApplicationSecretRequest(name=name), ADMIN).client_secret

    token = access_token(client_id, secret)
    if not call("IntrospectToken", api.IntrospectTokenRequest(token=token), INTROSPECT).active:
        raise RuntimeError("a fresh access token is not active")

    request = authorization_request(client_id)
    call("GetAuthorizationRequest", signin.GetAuthorizationRequestRequest(name=request), SIGNIN)
    subject = f"user-{round_number}"
    call(
        "AcceptAuthorizationRequest",
        signin.AcceptAuthorizationRequestRequest(name=request, subject=subject, scopes=["OR.Jobs"]),
        SIGNIN,
    )
    declined = authorization_request(client_id)
    call("RejectAuthorizationRequest", signin.RejectAuthorizationRequestRequest(name=declined), SIGNIN)
    call("ListUserAuthorizations", signin.ListUserAuthorizationsRequest(subject=subject), SIGNIN)
    call(
        "RevokeUserAuthorization",
        signin.RevokeUserAuthorizationRequest(subject=subject, application=name),
        SIGNIN,
    )

    call("ListAuditEvents", api.ListAuditEventsRequest(parent=PARENT, page_size=10), ADMIN)
    call("DeleteApplication", api.DeleteApplicationRequest(name=name), ADMIN)


def main():
    # Opens the connection, so that no timed call pays for it.
    stub.ListResources(api.ListResourcesRequest(), metadata=(("authorization", f"Bearer {ADMIN}"),))
    for round_number in range(1, ROUNDS + 1):
        cycle(round_number)


if __name__ == "__main__":
    try:
        main()
    except Exception as error:
        sys.exit(f"python latency client: {error}")
