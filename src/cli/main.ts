#!/usr/bin/env node
// The `vgpu-dirty` executable: wires the process's streams and exit code to runCli.
import { VgpuError } from '../core/index.js';
import { runCli } from './commands.js';
import { stderrTerminal } from './progress.js';

// A reader that goes away early (`vgpu-dirty check | head`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

runCli(process.argv.slice(2), { out: (line) => void process.stdout.write(`${line}\n`), err: stderrTerminal }).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // An expected outcome with a typed cause (device unreachable or refused, ...): one line.
    if (err instanceof VgpuError) process.stderr.write(`vgpu-dirty: ${err.message}\n`);
    else process.stderr.write(`vgpu-dirty: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
