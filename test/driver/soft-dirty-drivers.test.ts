// clear_refs clears the soft-dirty bits of a whole process, whichever driver's BOs they belong to:
// a scan by one soft-dirty driver must read the bits of every other soft-dirty driver's BOs mapped
// there before it clears them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_STRATEGIES, Driver, Machine, strategyMachineOptions } from '../../src/index.js';
import { startDevice } from '../../device/index.js';

const PS = 4096;
const softDirty = BUILTIN_STRATEGIES['soft-dirty'];

async function twoDrivers() {
  const machine = new Machine({ cpus: 2, memoryBytes: 16 << 20, ...strategyMachineOptions(softDirty) });
  const devices = [await startDevice({ port: 0, host: '127.0.0.1' }), await startDevice({ port: 0, host: '127.0.0.1' })];
  const drivers: Driver[] = [];
  const close = async () => {
    for (const d of drivers) await d.close();
    for (const dev of devices) await dev.close();
  };
  try {
    for (const dev of devices) drivers.push(await Driver.connect({ machine, url: dev.url, strategy: softDirty, capacityPages: 1024, connect: { timeoutMs: 5000 } }));
  } catch (e) {
    await close();
    throw e;
  }
  return { machine, a: drivers[0]!, b: drivers[1]!, close };
}

test('soft-dirty, two drivers on one machine: one driver\'s scan keeps the other driver\'s bits in the same process', async () => {
  const { machine, a, b, close } = await twoDrivers();
  try {
    const boA = a.createBo(4 * PS);
    a.createBufferResource(boA);
    const boB = b.createBo(4 * PS);
    b.createBufferResource(boB);
    const mm = machine.createMm();
    const va = a.mmap(mm, boA);
    const vb = b.mmap(mm, boB);
    await a.flush();
    await b.flush();
    const cpu = machine.cpus[0]!;
    cpu.write8(mm, vb.start + PS + 7, 0x5a); // B's BO
    cpu.write8(mm, va.start + 2 * PS, 0x33); // A's BO
    await a.flush(); // A's scan: clear_refs of the whole process
    await b.flush();
    assert.deepEqual((await b.verifyCoherent(boB)).differing, [], 'B\'s write survived A\'s clear_refs');
    assert.deepEqual((await a.verifyCoherent(boA)).differing, []);
    // And the other way round, once more.
    cpu.write8(mm, va.start + 3 * PS, 0x44);
    await b.flush(); // B's scan clears A's bit
    await a.flush();
    assert.deepEqual((await a.verifyCoherent(boA)).differing, [], 'A\'s write survived B\'s clear_refs');
  } finally {
    await close();
  }
});

test('soft-dirty: a destroyed BO leaves the machine\'s harvest; the other driver\'s scans go on', async () => {
  const { machine, a, b, close } = await twoDrivers();
  try {
    const gone = a.createBo(4 * PS);
    const boB = b.createBo(4 * PS);
    b.createBufferResource(boB);
    const mm = machine.createMm();
    a.mmap(mm, gone);
    const vb = b.mmap(mm, boB);
    await b.flush();
    a.destroyBo(gone);
    machine.cpus[0]!.write8(mm, vb.start, 1);
    await b.flush();
    assert.deepEqual((await b.verifyCoherent(boB)).differing, []);
  } finally {
    await close();
  }
});
