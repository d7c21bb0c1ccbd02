// `npm run mutate [-- --only FILE] [--limit N] [--jobs N] [--json PATH] [--survivors PATH] [--list]`:
// mutation testing of the dirty-tracking code. Each mutant is one small
// change to the compiled JavaScript of a target file (a comparison flipped,
// && for ||, min for max, ++ for --, true for false, a call statement
// deleted), reported at its TypeScript line through the source map. A mutant
// is killed by the first of two stages that fails on it:
//   1. the checker: every known-bug scenario must fail planted and hold fixed,
//      and a set of core and driver scenarios must hold (vgpu-dirty check, in
//      a child process, a few seconds);
//   2. the unit tests of the target file (node --test).
// A mutant that hangs is killed by a timeout. Written by hand rather than with
// StrykerJS: the checker stage runs in-process against compiled output, and
// only the target files are mutated.
//
// The compiled tree is copied to dist-mutant-<job>/ (one per parallel job);
// dist/ is never touched. Needs a build (npm run mutate builds first).
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const TARGETS = {
  'src/core/dirty-helpers.ts': [
    'test/core/helpers.test.js', 'test/core/tlb-race-cases.test.js', 'test/core/vivt.test.js', 'test/core/guarantees.property.test.js',
    'test/core/bad-input.test.js', 'test/check/reduction.test.js',
  ],
  'src/core/cpu.ts': [
    'test/core/access.test.js', 'test/core/bad-input.test.js', 'test/core/tlb-race-cases.test.js', 'test/core/vivt.test.js',
    'test/core/guarantees.property.test.js', 'test/core/mm.test.js', 'test/check/reduction.test.js',
  ],
  'src/driver/dirty-tracker.ts': ['test/driver/tracker.test.js', 'test/driver/reservation.test.js', 'test/driver/e2e.test.js'],
  // The tracker's record (transfer, clear, mark) since the strategy contract split it out of dirty-tracker.ts.
  'src/driver/strategies/record.ts': ['test/driver/tracker.test.js', 'test/driver/strategy-semantics.test.js', 'test/driver/e2e.test.js'],
  'src/driver/writeback.ts': ['test/driver/e2e.test.js', 'test/driver/fault-recovery.test.js', 'test/driver/bounds.test.js'],
};
const CHILD_TIMEOUT_MS = 120_000;

// ---- the checker stage, run in a child against one compiled tree ---------------------

async function checkerStage(distDir) {
  const check = await import(join(process.cwd(), distDir, 'src/check/index.js'));
  const { BUGS, buildScenario, explore } = check;
  const holds = [
    ['x86 clean-record', {}], ['sw-dirty clean-record', { arch: 'sw-dirty' }], ['vivt strict-tlb-first', { arch: 'vivt', helper: 'strict-tlb-first' }],
    ['nested wp', { helper: 'wp-clean', nestedWp: true, writes: 1 }], ['reads', { helper: 'wp-clean', reads: true }],
    ['offsets', { helper: 'clean-record', offsets: true, pages: 3 }], ['flush ceiling 0', { flushCeiling: 0 }],
    ['driver pagetable switch', { driver: 'pagetable', switchAfter: 0, rounds: 2, offsets: true }],
    ['driver mkwrite switch', { driver: 'mkwrite', switchAfter: 0, rounds: 2, offsets: true, pages: 3 }],
    ['driver munmap', { driver: 'pagetable', munmap: true, rounds: 2 }], ['driver two resources', { driver: 'pagetable', resources: 2, rounds: 2 }],
    ['driver reads', { driver: 'mkwrite', reads: true, offsets: true }], ['driver flush ceiling', { driver: 'pagetable', flushCeiling: 0, offsets: true }],
  ];
  const runs = [];
  for (const b of BUGS) {
    if (b.kind !== 'variants') continue;
    runs.push([`check --bug ${b.id}`, b.buggy, 'fails', b.bound ?? 2], [`check --bug ${b.id} --fixed`, b.fixed, 'holds', b.bound ?? 2]);
  }
  for (const [name, o] of holds) runs.push([`check ${name}`, o, 'holds', 2]);
  for (const [name, options, want, bound] of runs) {
    let verdict;
    try {
      verdict = explore(buildScenario(options), { bound, maxInterleavings: 200_000 }).verdict;
    } catch (e) {
      verdict = `threw ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
    }
    if (verdict !== want) return `${name}: ${verdict}, expected ${want}`;
  }
  return null;
}

// ---- mutants ----------------------------------------------------------------------

/** Offsets of code (not comments, strings or templates) in JS source: a boolean per character. */
function codeMask(src) {
  const code = new Uint8Array(src.length);
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    const n = src[i + 1];
    if (c === '/' && n === '/') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && n === '*') {
      i = src.indexOf('*/', i + 2) + 2;
    } else if (c === "'" || c === '"' || c === '`') {
      const q = c;
      for (i++; i < src.length && src[i] !== q; i++) if (src[i] === '\\') i++;
      i++;
    } else {
      code[i++] = 1;
    }
  }
  return code;
}

const OPERATORS = [
  { name: 'flip equality', re: /(?<![=!])(===|!==)(?!=)/g, to: (m) => (m === '===' ? '!==' : '===') },
  { name: 'boundary', re: /(?<![<>=!])(<=|>=|<(?![<=])|>(?![>=]))(?!=)/g, to: (m) => ({ '<=': '<', '>=': '>', '<': '<=', '>': '>=' })[m] },
  { name: 'logical', re: /(&&|\|\|)(?!=)/g, to: (m) => (m === '&&' ? '||' : '&&') },
  { name: 'min/max', re: /Math\.(min|max)\(/g, to: (m) => (m === 'Math.min(' ? 'Math.max(' : 'Math.min(') },
  { name: 'off by one', re: /([+-]) 1\b/g, to: (m) => (m[0] === '+' ? '- 1' : '+ 1') },
  { name: 'increment', re: /(\+\+|--)/g, to: (m) => (m === '++' ? '--' : '++') },
  { name: 'boolean', re: /\b(true|false)\b/g, to: (m) => (m === 'true' ? 'false' : 'true') },
];

/** A call statement on a line of its own: deleting it is a mutant. */
const CALL_STATEMENT = /^(\s*)((?:this\.|[\w$]+\.)[\w$.\[\]!?]*\(.*\));\s*$/;

function mutantsOf(file, src) {
  const code = codeMask(src);
  const out = [];
  for (const op of OPERATORS) {
    for (const m of src.matchAll(op.re)) {
      const at = m.index;
      if (!code[at]) continue;
      // The arrow of a function or a generic is not a comparison.
      if (op.name === 'boundary' && (src[at + m[0].length] === '>' || src[at - 1] === '=' || /[\w$]<$/.test(src.slice(at - 1, at + 1)) && src[at] === '<' && /^[A-Z]/.test(src[at + 1] ?? ''))) continue;
      out.push({ file, at, len: m[0].length, from: m[0], to: op.to(m[0]), op: op.name });
    }
  }
  let offset = 0;
  for (const line of src.split('\n')) {
    const m = CALL_STATEMENT.exec(line);
    if (m && code[offset + m[1].length] && !/^\s*(super|console)\b/.test(line)) {
      out.push({ file, at: offset + m[1].length, len: m[2].length + 1, from: `${m[2]};`, to: ';', op: 'delete call' });
    }
    offset += line.length + 1;
  }
  return out.sort((a, b) => a.at - b.at);
}

/** Source-map line lookup: generated 0-based line → original 1-based line. */
function lineMapper(map) {
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const lines = [];
  let origLine = 0;
  for (const group of map.mappings.split(';')) {
    let first = -1;
    for (const seg of group.split(',')) {
      if (seg === '') continue;
      const vals = [];
      let v = 0;
      let shift = 0;
      for (const ch of seg) {
        const d = B64.indexOf(ch);
        v += (d & 31) << shift;
        if (d & 32) shift += 5;
        else {
          vals.push(v & 1 ? -(v >> 1) : v >> 1);
          v = 0;
          shift = 0;
        }
      }
      if (vals.length >= 3) {
        origLine += vals[2];
        if (first < 0) first = origLine;
      }
    }
    lines.push(first);
  }
  return (genLine) => {
    for (let l = genLine; l >= 0; l--) if (lines[l] >= 0) return lines[l] + 1;
    return 0;
  };
}

// ---- running -----------------------------------------------------------------------

function runChild(args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, timedOut: signal === 'SIGKILL', out });
    });
  });
}

/** Stage 1 then stage 2 on the tree in distDir; what killed the mutant, or null. */
async function judge(distDir, tests) {
  const c = await runChild(['test/mutate.mjs', '--child', distDir]);
  if (c.timedOut) return 'timeout (checker stage)';
  if (c.code !== 0) return c.out.trim().split('\n').pop() || `checker stage exit ${c.code}`;
  const t = await runChild(['--test', '--test-timeout=60000', ...tests.map((f) => join(distDir, f))]);
  if (t.timedOut) return 'timeout (unit tests)';
  if (t.code === 0) return null;
  const failed = /^not ok \d+ - (.*)$/m.exec(t.out.replace(/^ +/gm, ''));
  return `test: ${failed ? failed[1] : `exit ${t.code}`}`;
}

async function main() {
  const { values } = parseArgs({
    options: { only: { type: 'string' }, limit: { type: 'string' }, jobs: { type: 'string' }, json: { type: 'string' }, list: { type: 'boolean' }, survivors: { type: 'string' }, child: { type: 'string' } },
  });
  if (values.child !== undefined) {
    const failure = await checkerStage(values.child);
    if (failure !== null) {
      console.log(failure);
      process.exit(1);
    }
    return;
  }
  if (!existsSync('dist/src/core/dirty-helpers.js')) throw new Error('no build: run npm run build first');
  const files = Object.keys(TARGETS).filter((f) => values.only === undefined || f.includes(values.only));
  let mutants = files.flatMap((f) => {
    const js = f.replace(/^src\//, 'src/').replace(/\.ts$/, '.js');
    const src = readFileSync(join('dist', js), 'utf8');
    const toLine = lineMapper(JSON.parse(readFileSync(join('dist', `${js}.map`), 'utf8')));
    return mutantsOf(f, src).map((m) => ({ ...m, js, line: toLine(src.slice(0, m.at).split('\n').length - 1) }));
  });
  if (values.survivors !== undefined) {
    // Only what survived an earlier run (its --json file): after adding tests, see what they kill.
    const key = (m) => `${m.file}:${m.line}:${m.op}:${m.from}:${m.to}`;
    const left = new Map();
    for (const r of JSON.parse(readFileSync(values.survivors, 'utf8'))) if (!r.killed) left.set(key(r), (left.get(key(r)) ?? 0) + 1);
    mutants = mutants.filter((m) => {
      const n = left.get(key(m)) ?? 0;
      if (n > 0) left.set(key(m), n - 1);
      return n > 0;
    });
  }
  const limit = values.limit === undefined ? Infinity : Number(values.limit);
  if (mutants.length > limit) {
    const step = mutants.length / limit;
    mutants = Array.from({ length: limit }, (_, i) => mutants[Math.floor(i * step)]);
  }
  if (values.list) {
    for (const m of mutants) console.log(`${m.file}:${m.line} ${m.op} '${m.from}' → '${m.to}'`);
    return;
  }
  const jobs = Math.max(1, Number(values.jobs ?? Math.min(2, availableParallelism())));
  const trees = Array.from({ length: jobs }, (_, i) => `dist-mutant-${i}`);
  for (const t of trees) {
    rmSync(t, { recursive: true, force: true });
    cpSync('dist', t, { recursive: true });
  }
  try {
    process.stderr.write(`mutate: checking the unmutated build first\n`);
    for (const f of files) {
      const why = await judge(trees[0], TARGETS[f]);
      if (why !== null) throw new Error(`the unmutated build fails for ${f}: ${why}`);
    }
    process.stderr.write(`mutate: ${mutants.length} mutants of ${files.join(', ')} on ${jobs} job(s)\n`);
    const results = new Array(mutants.length);
    let next = 0;
    let done = 0;
    const t0 = Date.now();
    await Promise.all(trees.map(async (tree) => {
      for (;;) {
        const i = next++;
        if (i >= mutants.length) return;
        const m = mutants[i];
        const path = join(tree, m.js);
        const original = readFileSync(path, 'utf8');
        writeFileSync(path, original.slice(0, m.at) + m.to + original.slice(m.at + m.len));
        try {
          const killedBy = await judge(tree, TARGETS[m.file]);
          results[i] = { file: m.file, line: m.line, op: m.op, from: m.from, to: m.to, killed: killedBy !== null, killedBy };
        } finally {
          writeFileSync(path, original);
        }
        done++;
        const r = results[i];
        process.stderr.write(`[${done}/${mutants.length} ${Math.round((Date.now() - t0) / 1000)}s] ${r.file}:${r.line} ${r.op} '${r.from}' → '${r.to}': ${r.killed ? `killed by ${r.killedBy}` : 'SURVIVED'}\n`);
      }
    }));
    const killed = results.filter((r) => r.killed).length;
    console.log(`| file:line | mutation | killed by |`);
    console.log(`| --- | --- | --- |`);
    for (const r of results) console.log(`| ${r.file}:${r.line} | ${r.op}: \`${r.from.slice(0, 60)}\` → \`${r.to}\` | ${r.killed ? r.killedBy : '**survived**'} |`);
    console.log('');
    for (const f of files) {
      const mine = results.filter((r) => r.file === f);
      const k = mine.filter((r) => r.killed).length;
      console.log(`${f}: ${k}/${mine.length} killed (${mine.length ? ((100 * k) / mine.length).toFixed(1) : '—'} %)`);
    }
    const byChecker = results.filter((r) => r.killed && !r.killedBy.startsWith('test:') && !r.killedBy.startsWith('timeout (unit')).length;
    console.log(`total: ${killed}/${results.length} killed (${((100 * killed) / results.length).toFixed(1)} %); ${byChecker} by the checker stage, ${killed - byChecker} by unit tests`);
    if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(results, null, 2) + '\n');
  } finally {
    for (const t of trees) rmSync(t, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`mutate: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
