// The package as a user gets it: pack, install the tarball into a scratch project, import every
// entry point from JavaScript and from strict TypeScript, and run the binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repo = resolve('.');
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string; exports: Record<string, unknown> };
const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, { version: string }> };
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Run a command; on failure the error says what it printed (tsc's diagnostics go to stdout). */
function run(cmd: string, args: string[], cwd: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const { stdout, stderr } = e as { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed:\n${stdout ?? ''}${stderr ?? ''}`);
  }
}

test('the packed tarball installs into a scratch project: every entry imports from JS and strict TS, and the binary runs', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-dirty-pack-'));
  try {
    const [packed] = JSON.parse(run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], repo)) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const shipped = packed!.files.map((f) => f.path);
    for (const f of ['LICENSE', 'CHANGELOG.md', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/main.js', 'dist/protocol/index.js', 'dist/device/index.js', 'src/index.ts']) {
      assert.ok(shipped.includes(f), `the tarball lacks ${f}`);
    }
    assert.ok(!shipped.some((f) => f.startsWith('dist/test/') || f.startsWith('test/') || f.startsWith('dist/bench/')), 'tests and benchmarks stay out');

    const app = join(dir, 'app');
    run('mkdir', ['-p', app], dir);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
    const typesNode = lock.packages['node_modules/@types/node']!.version;
    run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', join(dir, packed!.filename), `@types/node@${typesNode}`], app);

    // Every entry point of package.json's exports, imported by its public name.
    const entries = Object.keys(pkg.exports).map((k) => `vgpu-dirty${k.slice(1)}`);
    assert.deepEqual([...entries].sort(), ['vgpu-dirty', 'vgpu-dirty/device', 'vgpu-dirty/native', 'vgpu-dirty/protocol', 'vgpu-dirty/testing', 'vgpu-dirty/trace']);
    const js = run(process.execPath, ['--input-type=module', '-e', `
      const counts = [];
      for (const name of ${JSON.stringify(entries)}) counts.push(name + ':' + Object.keys(await import(name)).length);
      const core = await import('vgpu-dirty');
      const protocol = await import('vgpu-dirty/protocol');
      const device = await import('vgpu-dirty/device');
      console.log(typeof core.Driver, typeof core.Machine, typeof protocol.Encoder, typeof device.startDevice);
      console.log(counts.join(' '));
    `], app);
    const [types, counts] = js.trim().split('\n');
    assert.equal(types, 'function function function function');
    for (const c of counts!.split(' ')) assert.ok(Number(c.split(':')[1]) > 0, `${c}: the entry exports nothing`);
    // A shipped trace is found by name from the installed package.
    const shippedTrace = run(process.execPath, ['--input-type=module', '-e', `
      const { resolveTrace } = await import('vgpu-dirty/trace');
      console.log(resolveTrace('database'));
    `], app);
    assert.match(shippedTrace.trim(), /node_modules\/vgpu-dirty\/bench\/traces\/database\.vgtrace\.gz$/);

    writeFileSync(join(app, 'consumer.ts'), `
      import { Driver, Machine, DeviceError, type FlushResult } from 'vgpu-dirty';
      import { Encoder, type Welcome } from 'vgpu-dirty/protocol';
      import { startDevice, type Device } from 'vgpu-dirty/device';
      import { startTestRig, waitFor } from 'vgpu-dirty/testing';
      import { probeLinuxWp } from 'vgpu-dirty/native';
      import { TraceDecoder, type TraceEvent } from 'vgpu-dirty/trace';
      export const others: [typeof startTestRig, typeof waitFor, typeof probeLinuxWp, TraceDecoder | null, TraceEvent | null] = [startTestRig, waitFor, probeLinuxWp, null, null];
      export async function use(): Promise<FlushResult> {
        const device: Device = await startDevice({ port: 0 });
        const driver = await Driver.connect({ machine: new Machine({ cpus: 1 }), url: device.url });
        const welcome: Welcome | null = driver.conn.welcome;
        void new Encoder(); void welcome; void DeviceError;
        try { return await driver.flush(); } finally { await driver.close(); await device.close(); }
      }
    `);
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', types: ['node'], noEmit: true, skipLibCheck: false },
      files: ['consumer.ts'],
    }));
    run(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', app], app); // throws with the diagnostics on error

    assert.equal(run(npm, ['exec', '--offline', '--', 'vgpu-dirty', '--version'], app).trim(), pkg.version);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
