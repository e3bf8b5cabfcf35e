// node-oidc-provider comparison peer for the extapps-load HTTP benchmark.
//
// One process, in-memory (default MemoryAdapter), OAuth 2.0 client_credentials
// grant + RFC 7662 introspection, opaque access tokens, one static client
// (and, given PEER_CLIENT_JWKS, a second one authenticating by private_key_jwt).
// Nothing is logged per request. Run: `node provider.mjs` (env PORT, default 50181).

import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const HOST = '127.0.0.1';
const PORT = Number.parseInt(process.env.PORT ?? '50181', 10);
const ISSUER = `http://${HOST}:${PORT}`;

const SCOPES = ['OR.Jobs.Read', 'OR.Queues'];
const ACCESS_TOKEN_TTL = 60 * 60; // one hour

// A throwaway signing key so the provider does not fall back to (and warn about)
// its built-in development keys. Not used by client_credentials/introspection.
const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ format: 'jwk' });

// The private_key_jwt client's public keys (a JWKS, JSON), when the
// assertion benchmark passes them: `PEER_CLIENT_JWKS`.
const clientJwks = process.env.PEER_CLIENT_JWKS ? JSON.parse(process.env.PEER_CLIENT_JWKS) : null;

const configuration = {
  clients: [
    {
      client_id: 'bench',
      client_secret: 'bench-secret-0123456789abcdef0123456789abcdef',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: SCOPES.join(' '),
    },
    ...(clientJwks ? [{
      client_id: 'bench-jwt',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: clientJwks,
      scope: SCOPES.join(' '),
    }] : []),
  ],
  // Declaring the scopes makes the provider enforce the client's scope allow-list
  // (requesting a scope outside `client.scope` -> invalid_scope).
  scopes: ['openid', ...SCOPES],
  jwks: { keys: [{ ...signingKey, alg: 'RS256', use: 'sig', kid: 'bench' }] },
  cookies: { keys: ['bench-cookie-key-0123456789abcdef'] },
  ttl: {
    AccessToken: ACCESS_TOKEN_TTL,
    ClientCredentials: ACCESS_TOKEN_TTL,
  },
  features: {
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Same policy as the library default (any authenticated confidential client
      // may introspect), defined here only to silence the one-time NOTICE.
      allowedPolicy: async (ctx, client, token) => !(
        client.clientAuthMethod === 'none' && token.clientId !== client.clientId
      ),
    },
    // resourceIndicators stays at its default (enabled, defaultResource() ->
    // undefined): a client_credentials request without a `resource` parameter
    // gets no resource server, hence an opaque ClientCredentials token that is
    // stored in the adapter and found by introspection.
    devInteractions: { enabled: false },
    userinfo: { enabled: false },
    rpInitiatedLogout: { enabled: false },
  },
};

const provider = new Provider(ISSUER, configuration);
provider.proxy = false;

const server = createServer(provider.callback());
server.listen(PORT, HOST, () => {
  console.log(`listening on ${ISSUER}`);
});

const shutdown = () => server.close(() => process.exit(0));
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
