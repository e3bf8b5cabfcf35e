// Sequential latency of each unary RPC through the generated TypeScript SDK
// (protoc-gen-es, spoken over gRPC by @connectrpc/connect-node), as a Node
// service would call it: one client on one transport, per-call headers.
//
// Compiled inside a copy of gen/typescript (the imports are relative to it).
// Reads EXTAPPS_URL, EXTAPPS_{ADMIN,INTROSPECT,SIGNIN}_KEY,
// EXTAPPS_ORGANIZATION and EXTAPPS_ROUNDS; prints `typescript RPC MICROS`.
import { randomBytes } from "node:crypto";

import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { ApplicationType } from "./extapps/v1/application_pb.js";
import { ExternalApplications } from "./extapps/v1/external_applications_pb.js";

function env(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

const baseUrl = env("EXTAPPS_URL").replace(/\/$/, "");
const admin = env("EXTAPPS_ADMIN_KEY");
const introspect = env("EXTAPPS_INTROSPECT_KEY");
const signin = env("EXTAPPS_SIGNIN_KEY");
const parent = `organizations/${env("EXTAPPS_ORGANIZATION")}`;
const rounds = Number.parseInt(env("EXTAPPS_ROUNDS"), 10);
const redirect = "http://127.0.0.1/callback";

const client = createClient(ExternalApplications, createGrpcTransport({ baseUrl }));

function as(key: string) {
  return { headers: { authorization: `Bearer ${key}` }, timeoutMs: 30_000 };
}

async function timed<T>(rpc: string, call: () => Promise<T>): Promise<T> {
  const start = process.hrtime.bigint();
  const response = await call().catch((error: unknown) => {
    throw new Error(`${rpc}: ${error instanceof Error ? error.message : String(error)}`);
  });
  const micros = (process.hrtime.bigint() - start) / 1000n;
  console.log(`typescript ${rpc} ${micros}`);
  return response;
}

async function accessToken(clientId: string, secret: string): Promise<string> {
  const response = await fetch(`${baseUrl}/oauth2/token`, {
    method: "POST",
    headers: {
      authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString("base64")}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: "grant_type=client_credentials",
  });
  const body = (await response.json()) as { access_token?: string };
  if (response.status !== 200 || !body.access_token) {
    throw new Error(`token endpoint answered ${response.status}: ${JSON.stringify(body)}`);
  }
  return body.access_token;
}

async function authorizationRequest(clientId: string): Promise<string> {
  const query = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: redirect,
    scope: "OR.Jobs",
    state: "s1",
  });
  // The redirect is the answer under test, not something to follow.
  const response = await fetch(`${baseUrl}/oauth2/authorize?${query}`, { redirect: "manual" });
  await response.arrayBuffer();
  const location = response.headers.get("location");
  if (response.status !== 303 || !location) {
    throw new Error(`authorize answered ${response.status}`);
  }
  const id = new URL(location).searchParams.get("authorization_request");
  if (!id) {
    throw new Error(`authorize redirected without authorization_request: ${location}`);
  }
  return `authorizationRequests/${id}`;
}

async function cycle(round: number): Promise<void> {
  await timed("ListResources", () => client.listResources({}, as(admin)));
  const registered = (
    await timed("RegisterApplication", () =>
      client.registerApplication(
        {
          parent,
          application: {
            displayName: `latency typescript ${round} ${randomBytes(4).toString("hex")}`,
            type: ApplicationType.CONFIDENTIAL,
            grants: [{ resource: "OR", userScopes: ["OR.Jobs"], applicationScopes: ["OR.Jobs.Read"] }],
            redirectUrls: [redirect],
          },
        },
        as(admin),
      ),
    )
  ).application;
  if (!registered) {
    throw new Error("RegisterApplication answered no application");
  }
  const { name, clientId } = registered;
  await timed("GetApplication", () => client.getApplication({ name }, as(admin)));
  await timed("ListApplications", () => client.listApplications({ parent, pageSize: 10 }, as(admin)));
  await timed("UpdateApplication", () =>
    client.updateApplication(
      {
        application: { name, displayName: `${registered.displayName} renamed` },
        updateMask: { paths: ["display_name"] },
      },
      as(admin),
    ),
  );
  await timed("UpdateApplicationScopes", () =>
    client.updateApplicationScopes(
      {
        name,
        grants: [
          { resource: "OR", userScopes: ["OR.Jobs", "OR.Queues"], applicationScopes: ["OR.Jobs.Read", "OR.Queues"] },
        ],
      },
      as(admin),
    ),
  );
  const { clientSecret } = await timed("GenerateApplicationSecret", () =>
    client.generateApplicationSecret({ name }, as(admin)),
  );

  const token = await accessToken(clientId, clientSecret);
  const { active } = await timed("IntrospectToken", () => client.introspectToken({ token }, as(introspect)));
  if (!active) {
    throw new Error("a fresh access token is not active");
  }

  const request = await authorizationRequest(clientId);
  await timed("GetAuthorizationRequest", () => client.getAuthorizationRequest({ name: request }, as(signin)));
  const subject = `user-${round}`;
  await timed("AcceptAuthorizationRequest", () =>
    client.acceptAuthorizationRequest({ name: request, subject, scopes: ["OR.Jobs"] }, as(signin)),
  );
  const declined = await authorizationRequest(clientId);
  await timed("RejectAuthorizationRequest", () => client.rejectAuthorizationRequest({ name: declined }, as(signin)));
  await timed("ListUserAuthorizations", () => client.listUserAuthorizations({ subject }, as(signin)));
  await timed("RevokeUserAuthorization", () =>
    client.revokeUserAuthorization({ subject, application: name }, as(signin)),
  );

  await timed("ListAuditEvents", () => client.listAuditEvents({ parent, pageSize: 10 }, as(admin)));
  await timed("DeleteApplication", () => client.deleteApplication({ name }, as(admin)));
}

async function main(): Promise<void> {
  // Opens the connection, so that no timed call pays for it.
  await client.listResources({}, as(admin));
  for (let round = 1; round <= rounds; round++) {
    await cycle(round);
  }
}

main().catch((error: unknown) => {
  console.error(`typescript latency client: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
