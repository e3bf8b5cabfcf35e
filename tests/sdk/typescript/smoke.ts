// Smoke test of the TypeScript SDK generated from proto/ (protoc-gen-es
// through buf.gen.yaml), spoken over gRPC by @connectrpc/connect-node.
//
// Runs the administrator's cycle against a live server: list resources,
// register, inspect, rotate the secret, see a validation error with its field
// violation, delete. Exits non-zero on the first thing that is not as expected.
//
// It is compiled inside the generated gen/typescript directory (the imports
// below are relative to it), then run:
//
//   node smoke.js HOST:PORT KEY ORGANIZATION
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { ApplicationSchema, ApplicationType, ResourceGrantSchema } from "./extapps/v1/application_pb.js";
import { ExternalApplications } from "./extapps/v1/external_applications_pb.js";
import { BadRequestSchema } from "./google/rpc/error_details_pb.js";

function check(ok: boolean, what: string): asserts ok {
  if (!ok) {
    throw new Error(what);
  }
}

/** The call's refusal, or a failure if the call went through. */
async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("the call was expected to fail");
}

async function main(target: string, key: string, organization: string): Promise<void> {
  const client = createClient(
    ExternalApplications,
    createGrpcTransport({
      baseUrl: `http://${target}`,
      interceptors: [
        (next) => (request) => {
          request.header.set("authorization", `Bearer ${key}`);
          return next(request);
        },
      ],
    }),
  );

  const { resources } = await client.listResources({});
  check(
    resources.some((resource) => resource.id === "OR"),
    `resource OR not listed: ${resources.map((r) => r.id)}`,
  );

  const registered = await client.registerApplication({
    parent: `organizations/${organization}`,
    application: create(ApplicationSchema, {
      displayName: "TypeScript SDK smoke",
      type: ApplicationType.CONFIDENTIAL,
      grants: [create(ResourceGrantSchema, { resource: "OR", applicationScopes: ["OR.Jobs.Read"] })],
    }),
  });
  check(registered.clientSecret.startsWith("extapps_cs_"), "no secret at registration");
  const name = registered.application?.name ?? "";

  const fetched = (await client.getApplication({ name })).application;
  check(fetched?.displayName === "TypeScript SDK smoke", `display name: ${fetched?.displayName}`);
  check(fetched.type === ApplicationType.CONFIDENTIAL, `type: ${fetched.type}`);
  check(fetched.secrets.length === 1, `secrets: ${fetched.secrets.length}`);

  const rotated = await client.generateApplicationSecret({ name, etag: fetched.etag });
  check(rotated.clientSecret.startsWith("extapps_cs_"), "no secret on rotation");
  check(rotated.clientSecret !== registered.clientSecret, "rotation returned the old secret");

  const invalid = await refusal(
    client.registerApplication({
      parent: `organizations/${organization}`,
      application: create(ApplicationSchema, { type: ApplicationType.CONFIDENTIAL }),
    }),
  );
  check(invalid.code === Code.InvalidArgument, `nameless registration: ${invalid.message}`);
  const fields = invalid
    .findDetails(BadRequestSchema)
    .flatMap((badRequest) => badRequest.fieldViolations.map((violation) => violation.field));
  check(fields.includes("application.display_name"), `field violations: ${fields}`);

  await client.deleteApplication({ name });
  const gone = await refusal(client.getApplication({ name }));
  check(gone.code === Code.NotFound, `deleted application: ${gone.message}`);

  console.log("typescript sdk: ok");
}

const [target, key, organization] = process.argv.slice(2);
main(target, key, organization).catch((error: unknown) => {
  console.error(`typescript sdk: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
