// Runs conformance cases against a device URL, one at a time, each bounded in time, and
// reports one result per case. Every connection a case opens is cut when the case ends.
import type { Feature, Hello, Welcome } from '../../protocol/index.js';
import { NotApplicable, type Case, type Ctx } from './case.js';
import { ALL_CASES } from './cases/index.js';
import { WireClient } from './client.js';

export type Status = 'PASS' | 'FAIL' | 'N-A';

export interface CaseResult {
  id: string;
  section: string;
  title: string;
  status: Status;
  /** What differed (FAIL), why not applicable (N-A), empty on PASS. */
  detail: string;
  ms: number;
}

export interface Report {
  device: string;
  /** The probe session's welcome, undefined when no session could be opened. */
  welcome: Welcome | undefined;
  results: CaseResult[];
  summary: { pass: number; fail: number; na: number; total: number };
}

export interface SuiteOptions {
  url: string;
  token?: string;
  controlToken?: string;
  /** Run only the cases whose id starts with one of these (default: all). */
  only?: readonly string[];
  /** Called with each result as it is known. */
  onResult?: (r: CaseResult) => void;
}

const DEFAULT_CASE_TIMEOUT_MS = 20_000;

export async function runConformance(o: SuiteOptions, cases: readonly Case[] = ALL_CASES): Promise<Report> {
  const selected = cases.filter((c) => o.only === undefined || o.only.length === 0 || o.only.some((p) => c.id.startsWith(p)));
  const results: CaseResult[] = [];
  const record = (r: CaseResult): void => {
    results.push(r);
    o.onResult?.(r);
  };
  let welcome: Welcome | undefined;
  try {
    const probe = await WireClient.session(o.url, { token: o.token, name: 'conformance probe' });
    welcome = probe.welcome!;
    await probe.close();
  } catch (e) {
    const detail = `cannot open a session: ${(e as Error).message}${o.token === undefined ? ' (does the device need --token?)' : ''}`;
    for (const c of selected) record({ id: c.id, section: c.section, title: c.title, status: 'FAIL', detail, ms: 0 });
    return report(o.url, undefined, results);
  }
  for (const c of selected) record(await runCase(c, o, welcome));
  return report(o.url, welcome, results);
}

async function runCase(c: Case, o: SuiteOptions, welcome: Welcome): Promise<CaseResult> {
  const base = { id: c.id, section: c.section, title: c.title };
  const features = new Set(welcome.features);
  const missing = (c.needs ?? []).filter((n) => (n === 'token' ? o.token === undefined : !features.has(n)));
  if (missing.length > 0) {
    const why = missing.map((n) => (n === 'token' ? 'no --token given' : `feature '${n}' not announced`)).join(', ');
    return { ...base, status: 'N-A', detail: why, ms: 0 };
  }
  const clients: WireClient[] = [];
  const track = async (p: Promise<WireClient>): Promise<WireClient> => {
    const client = await p;
    clients.push(client);
    return client;
  };
  const ctx: Ctx = {
    url: o.url,
    token: o.token,
    controlToken: o.controlToken,
    welcome,
    offers: (f: Feature) => features.has(f),
    session: (hello: Partial<Hello> = {}) => track(WireClient.session(o.url, { token: o.token, name: c.id, ...hello })),
    connect: () => track(WireClient.open(o.url)),
  };
  const t0 = performance.now();
  const limit = c.timeoutMs ?? DEFAULT_CASE_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`case did not finish within ${limit} ms`)), limit);
  });
  try {
    await Promise.race([c.run(ctx), timeout]);
    return { ...base, status: 'PASS', detail: '', ms: performance.now() - t0 };
  } catch (e) {
    const na = e instanceof NotApplicable;
    return { ...base, status: na ? 'N-A' : 'FAIL', detail: (e as Error).message, ms: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
    for (const client of clients) client.terminate();
    await Promise.all(clients.map((client) => client.closed));
  }
}

function report(device: string, welcome: Welcome | undefined, results: CaseResult[]): Report {
  const count = (s: Status): number => results.filter((r) => r.status === s).length;
  return { device, welcome, results, summary: { pass: count('PASS'), fail: count('FAIL'), na: count('N-A'), total: results.length } };
}

/** One line per case: status, id, section, and what differed or why it did not apply. */
export function formatResult(r: CaseResult): string {
  const note = r.status === 'PASS' ? r.title : r.detail;
  return `${r.status.padEnd(4)}  ${r.id.padEnd(30)} §${r.section.padEnd(5)} ${note}`;
}

export function formatSummary(rep: Report): string {
  const { pass, fail, na, total } = rep.summary;
  return `${total} cases: ${pass} passed, ${fail} failed, ${na} not applicable — ${fail === 0 ? 'CONFORMS' : 'DOES NOT CONFORM'} (${rep.device})`;
}
