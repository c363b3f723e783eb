/**
 * The client side, for jobctl and tests: typed JobService clients over mTLS.
 * The server name is verified against the CA-signed server certificate; the
 * development certificate carries localhost, 127.0.0.1 and ::1.
 */
import { JobServiceClient } from '../gen/jobworker/v1/job_service.js';
import { clientCredentials, loadIdentity, type TlsIdentity } from './tls.js';

/** Default address of jobworkerd. */
export const DEFAULT_ADDRESS = 'localhost:50051';

/**
 * A JobService client for `address` ("host:port"). Dialing a literal IP is
 * checked against the IP SANs, but Node prints DEP0123 for it; when `address`
 * is an IP the TLS name is taken as "localhost" (the dev certificate's DNS SAN).
 */
export function createClient(address: string, identity: TlsIdentity): JobServiceClient {
  const host = address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const isIp = /^[\d.]+$/.test(host) || host.includes(':');
  return new JobServiceClient(address, clientCredentials(identity), {
    ...(isIp
      ? { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' }
      : {}),
  });
}

/** A client authenticated with `<certsDir>/<user>.crt|key`, trusting `<certsDir>/ca.crt`. */
export async function connect(
  address: string,
  certsDir: string,
  user: string,
): Promise<JobServiceClient> {
  return createClient(address, await loadIdentity(certsDir, user));
}
