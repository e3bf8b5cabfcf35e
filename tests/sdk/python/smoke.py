"""Smoke test of the Python SDK generated from proto/ (grpcio-tools).

Runs the administrator's cycle against a live server: list resources,
register, inspect, rotate the secret, see a validation error with its field
violation, delete. Exits non-zero on the first thing that is not as expected.

    python smoke.py HOST:PORT KEY ORGANIZATION
"""

import sys

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from extapps.v1 import application_pb2, external_applications_pb2 as api
from extapps.v1 import external_applications_pb2_grpc as api_grpc


def main(target: str, key: str, organization: str) -> None:
    metadata = (("authorization", f"Bearer {key}"),)
    stub = api_grpc.ExternalApplicationsStub(grpc.insecure_channel(target))

    resources = stub.ListResources(api.ListResourcesRequest(), metadata=metadata).resources
    assert "OR" in [r.id for r in resources], resources

    registered = stub.RegisterApplication(
        api.RegisterApplicationRequest(
            parent=f"organizations/{organization}",
            application=application_pb2.Application(
                display_name="Python SDK smoke",
                type=application_pb2.APPLICATION_TYPE_CONFIDENTIAL,
                grants=[application_pb2.ResourceGrant(resource="OR", application_scopes=["OR.Jobs.Read"])],
            ),
        ),
        metadata=metadata,
    )
    assert registered.client_secret.startswith("extapps_cs_"), registered
    name = registered.application.name

    fetched = stub.GetApplication(api.GetApplicationRequest(name=name), metadata=metadata).application
    assert fetched.display_name == "Python SDK smoke", fetched
    assert fetched.type == application_pb2.APPLICATION_TYPE_CONFIDENTIAL
    assert len(fetched.secrets) == 1

    rotated = stub.GenerateApplicationSecret(
        api.GenerateApplicationSecretRequest(name=name, etag=fetched.etag), metadata=metadata
    )
    assert rotated.client_secret.startswith("extapps_cs_")
    assert rotated.client_secret != registered.client_secret

    try:
        stub.RegisterApplication(
            api.RegisterApplicationRequest(
                parent=f"organizations/{organization}",
                application=application_pb2.Application(type=application_pb2.APPLICATION_TYPE_CONFIDENTIAL),
            ),
            metadata=metadata,
        )
        raise AssertionError("an application without a name was registered")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
        status = rpc_status.from_call(error)
        fields = []
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                fields += [v.field for v in bad_request.field_violations]
        assert "application.display_name" in fields, fields

    stub.DeleteApplication(api.DeleteApplicationRequest(name=name), metadata=metadata)
    try:
        stub.GetApplication(api.GetApplicationRequest(name=name), metadata=metadata)
        raise AssertionError("a deleted application is still there")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND, error

    print("python sdk: ok")


if __name__ == "__main__":
    main(*sys.argv[1:4])
