import { parseArgs, UsageError } from './args.js';
import { ALL_CASES, formatResult, formatSummary, runConformance } from '../conformance/index.js';

export const CONFORMANCE_HELP = `vgpu-dirty conformance <ws://HOST:PORT> [--token T] [--control-token T]
                       [--only PREFIX[,PREFIX…]] [--json] [--list]

Checks a device that claims to speak docs/protocol.md, over the wire only, case
by case: handshake and versions, every op, encoding strictness, sequence
numbers, fence order and failure accounting, atomicity of rejected commands,
every error and close code, limits, seen, readback bounds, isolation between
sessions, backpressure from a slow reader. Each case has a stable id that the
spec cites (docs/protocol.md §14). Run it against a device nobody else uses
(device-wide limits are measured); small limits and timeouts make it fast.

Prints one line per case — PASS, FAIL or N-A (a feature the device does not
announce, or a credential not given), the id, the spec section, and what
differed — then a summary.
  --token T          the device's driver token
  --control-token T  its control token (control cases are N-A without it)
  --only P           only cases whose id starts with P (comma-separated)
  --json             one JSON object: device, welcome, results, summary
  --list             list the cases (id, section, title) and exit

Exit codes: 0 every case passed or was N-A, 1 a case failed, 2 bad arguments.`;

export async function conformanceCommand(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const [first, ...rest] = argv;
  const url = first !== undefined && !first.startsWith('--') ? first : undefined;
  const a = parseArgs(url === undefined ? argv : rest, {
    token: { type: 'string' },
    'control-token': { type: 'string' },
    only: { type: 'string' },
    json: { type: 'flag' },
    list: { type: 'flag' },
    help: { type: 'flag' },
  });
  if (a.help) {
    out(CONFORMANCE_HELP);
    return 0;
  }
  if (a.list) {
    for (const c of ALL_CASES) out(`${c.id.padEnd(30)} §${c.section.padEnd(5)} ${c.title}`);
    return 0;
  }
  if (url === undefined) throw new UsageError('conformance needs the device URL, e.g. ws://127.0.0.1:8080');
  if (!/^wss?:\/\/./.test(url)) throw new UsageError(`the device URL must be a ws:// URL, got '${url}'`);
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
