/**
 * The manifests in deploy/ cannot be run here (no cluster, no Nomad): this
 * parses the DaemonSet with Debian's python3-yaml and checks the settings
 * the server needs, so that an edit that breaks them fails here. The Nomad
 * job has no offline parser and is not checked.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { guard } from '../helpers/guards.js';

const python = '/usr/bin/python3';
const manifest = fileURLToPath(
  new URL('../../../deploy/kubernetes-daemonset.yaml', import.meta.url),
);

function hasYaml(): boolean {
  return spawnSync(python, ['-c', 'import yaml'], { stdio: 'ignore' }).status === 0;
}

interface Container {
  args: string[];
  securityContext: { privileged: boolean };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface Volume {
  name: string;
  hostPath?: { path: string };
  secret?: { secretName: string; defaultMode: number };
}

test(
  'the DaemonSet parses and runs a privileged jobworkerd with its state on the host and certificates from a Secret',
  {
    skip: guard(hasYaml(), `requires ${python} with PyYAML (apt-get install python3-yaml)`),
  },
  () => {
    const parsed = spawnSync(
      python,
      [
        '-c',
        'import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))',
        manifest,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(parsed.status, 0, parsed.stderr);
    const [doc, ...rest] = JSON.parse(parsed.stdout) as {
      kind: string;
      spec: {
        template: { spec: { hostNetwork: boolean; containers: Container[]; volumes: Volume[] } };
      };
    }[];
    assert.equal(rest.length, 0);
    assert.equal(doc?.kind, 'DaemonSet');
    const pod = doc.spec.template.spec;
    assert.equal(pod.hostNetwork, true);
    const [server] = pod.containers;
    assert.ok(server !== undefined);
    assert.equal(server.securityContext.privileged, true);
    const flag = (name: string) => server.args[server.args.indexOf(name) + 1];
    assert.equal(server.args[0], 'serve');
    const mountOf = (path: string | undefined) =>
      server.volumeMounts.find((m) => m.mountPath === path);
    const volumeOf = (path: string | undefined) =>
      pod.volumes.find((v) => v.name === mountOf(path)?.name);
    assert.equal(volumeOf(flag('--state-dir'))?.hostPath?.path, flag('--state-dir'));
    assert.equal(volumeOf('/var/lib/jobworker-uids')?.hostPath?.path, '/var/lib/jobworker-uids');
    const certs = volumeOf(flag('--certs'));
    assert.equal(mountOf(flag('--certs'))?.readOnly, true);
    assert.equal(certs?.secret?.defaultMode, 0o400);
  },
);
