// Runs the vgpu-dirty CLI in a child process without blocking this one (an in-process device
// may be serving it meanwhile).
import { spawn } from 'node:child_process';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export const CLI = 'dist/src/cli/main.js';

export function runCli(args: readonly string[], timeoutMs = 60_000): Promise<CliRun> {
  return runScript(CLI, args, timeoutMs);
}

/** Runs a Node script of dist/ with arguments; killed after `timeoutMs`. */
export function runScript(script: string, args: readonly string[], timeoutMs: number): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}
