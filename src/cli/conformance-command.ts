import { type CommandSpec, UsageError, type Values, WS_URL } from './options.js';
import { ALL_CASES, formatResult, formatSummary, runConformance } from '../conformance/index.js';

export const CONFORMANCE: CommandSpec = {
  name: 'conformance',
  summary: 'check any device against docs/protocol.md, case by case',
  positionals: [{ name: 'ws://HOST:PORT', description: 'the device to check (not needed with --list)' }],
  description: `Checks a device that claims to speak docs/protocol.md, over the wire only, case by case: handshake and versions, every op, encoding strictness, sequence numbers, fence order and failure accounting, atomicity of rejected commands, every error and close code, limits, seen, readback bounds, isolation between sessions, backpressure from a slow reader. Each case has a stable id that the spec cites (docs/protocol.md §14). Run it against a device nobody else uses (device-wide limits are measured); small limits and timeouts make it fast.

Prints one line per case — PASS, FAIL or N-A (a feature the device does not announce, or a credential not given), the id, the spec section, and what differed — then a summary.`,
  options: [
    { name: 'token', type: 'string', value: 'T', description: "the device's driver token" },
    { name: 'control-token', type: 'string', value: 'T', description: 'its control token (control cases are N-A without it)' },
    { name: 'only', type: 'string', value: 'PREFIX[,PREFIX…]', description: 'only cases whose id starts with one of these' },
    { name: 'json', type: 'flag', description: 'one JSON object: device, welcome, results, summary' },
    { name: 'list', type: 'flag', description: 'list the cases (id, section, title) and exit' },
  ],
  epilogue: 'Exit codes: 0 every case passed or was N-A, 1 a case failed, 2 bad arguments.',
  run: (args, positionals, io) => conformanceCommand(args, positionals[0], io.out),
};

async function conformanceCommand(a: Values, url: string | undefined, out: (line: string) => void): Promise<number> {
  if (a.list) {
    for (const c of ALL_CASES) out(`${c.id.padEnd(30)} §${c.section.padEnd(5)} ${c.title}`);
    return 0;
  }
  if (url === undefined) throw new UsageError('conformance needs the device URL, e.g. ws://127.0.0.1:8080');
  if (!WS_URL.validate(url)) throw new UsageError(`the device URL must be ${WS_URL.accepts}, got '${url}'`);
  const only = typeof a.only === 'string' ? a.only.split(',').map((p) => p.trim()).filter((p) => p !== '') : undefined;
  if (only !== undefined && !ALL_CASES.some((c) => only.some((p) => c.id.startsWith(p)))) {
    throw new UsageError(`--only ${a.only} matches no case (see --list)`);
  }
  const json = a.json === true;
  const report = await runConformance({
    url,
    token: a.token as string | undefined,
    controlToken: a['control-token'] as string | undefined,
    only,
    onResult: json ? undefined : (r) => out(formatResult(r)),
  });
  if (json) out(JSON.stringify(report, null, 2));
  else out(formatSummary(report));
  return report.summary.fail > 0 ? 1 : 0;
}
