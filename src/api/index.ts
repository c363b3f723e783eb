/** Public entry of the API layer: what the CLI (and tests) may use. */
export { openAuditLog, type AuditLog, type AuditOutcome, type AuditRecord } from './audit.js';
export { ROLES, USER_NAME, type Principal, type Role } from './authz.js';
export { initCertsDir, initPki, issueUserFiles, loadCa } from './cert-store.js';
export {
  createCa,
  Eku,
  issue,
  issueServer,
  type Issuer,
  type LeafOptions,
  type PemPair,
} from './certs.js';
export { DEV_CLIENTS } from './dev-certs.js';
export { connect, createClient, DEFAULT_ADDRESS } from './client.js';
export { DEFAULT_CONNECTION_POLICY, type ConnectionPolicy } from './connection-policy.js';
export { CloseReason } from './connection-stats.js';
export { createServer, parseAddress, type JobworkerServer, type ServerOptions } from './server.js';
export { toStatus } from './status-map.js';
export { clientCredentials, loadIdentity, type TlsIdentity } from './tls.js';
