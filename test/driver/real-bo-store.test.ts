// A RealBoStore owns the real memory it is given from the start: refusing it (its page size is not
// the machine's) closes it, so refusals leak no memfd, userfaultfd, pagemap fd or mapping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { InvalidArgumentError, RealBoStore } from '../../src/index.js';
import { LinuxWpMemory, probeLinuxWp } from '../../src/native/index.js';

const probe = await probeLinuxWp();
const openFds = () => readdirSync('/proc/self/fd').length;

test('a refused RealBoStore (page size) closes its real memory: no fd leaks', async (t) => {
  if (!probe.ok) {
    t.skip(`real memory unavailable: ${probe.reason}`);
    return;
  }
  const make = await LinuxWpMemory.maker();
  const sample = make({ pages: 1 });
  const wrongPageSize = 2 * sample.pageSize;
  sample.close();
  const refuse = () => assert.throws(() => new RealBoStore(make({ pages: 4 }), wrongPageSize), InvalidArgumentError);
  refuse(); // the first one may open what the process keeps for good
  const before = openFds();
  for (let i = 0; i < 20; i++) refuse();
  assert.equal(openFds() - before, 0, 'fds opened by 20 refused stores');
});
