import assert from 'node:assert/strict';
import { test } from 'node:test';
import { peerGroup } from './listener.js';

test('a handshake budget counts an IPv4 address, or an IPv6 /64', () => {
  const rows: [string, string][] = [
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:db8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1', 'fe80:0:0:0::/64'],
  ];
  for (const [address, group] of rows) assert.equal(peerGroup(address), group, address);
});
