// README's library example must run as printed and print what its comments say.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

test('the README library example runs and prints the recorded pages its comment promises', () => {
  const readme = readFileSync('README.md', 'utf8');
  const code = /```js\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(code, 'README has a js example');
  const promised = /console\.log\(cleaned, bitmap\.toArray\(\), range\);\s*\/\/ (.*)/.exec(code)?.[1];
  assert.ok(promised, 'the example states its output');
  const file = '.readme-example.test.mjs'; // inside the package, so 'vgpu-dirty' resolves to itself
  writeFileSync(file, code);
  try {
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.split('\n')[0], promised.trim());
  } finally {
    rmSync(file, { force: true });
  }
});

test('the README driver example runs against an embedded device and reports a coherent BO', () => {
  const readme = readFileSync('README.md', 'utf8');
  const code = /## Driver example\n\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(code, 'README has the driver example');
  const file = '.readme-driver.test.mjs';
  writeFileSync(file, code);
  try {
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ok: true, differing: \[\]/);
  } finally {
    rmSync(file, { force: true });
  }
});

test('the README vgpu-dirty/testing example runs as printed', () => {
  const readme = readFileSync('README.md', 'utf8');
  const code = /## Testing with `vgpu-dirty\/testing`[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(code, 'README has the testing example');
  const file = '.readme-testing.test.mjs';
  writeFileSync(file, `${code}\nconsole.log('done');\n`);
  try {
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'done');
  } finally {
    rmSync(file, { force: true });
  }
});
