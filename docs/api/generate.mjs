// `npm run docs:api`: the API reference, made from the doc comments of the emitted .d.ts files,
// into docs/api/reference/ (Markdown, one page per item). Exit 1 on any warning, so CI keeps the
// comments clean.
//
// API Extractor reads declarations with its own bundled TypeScript (the project compiles with
// TypeScript 7, which TypeDoc does not support yet) and takes one entry point, so every entry
// point of package.json "exports" is re-exported from one generated file: '.' as it is, each
// subpath as a namespace of that name ('vgpu-dirty/protocol' is `protocol`). Types shared by two
// entry points then link to one page instead of being reported as missing. API Documenter turns
// the model into Markdown.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const out = join(root, 'docs/api/reference');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

/**
 * Types the public API uses that no entry point exports, each with the reason it stays so.
 * A new one fails the build: export it, or add it here with its reason.
 */
const NOT_EXPORTED = {
  SurfaceLayout: "device/layout.ts: the geometry fields of a surface, a Pick of the protocol's DefineSurface",
  Box: 'src/driver/surface.ts: an internal record of the surface upload planner',
  Libc: 'src/native/libc.ts: the koffi bindings behind linuxLibc(); callers only pass it back',
};

/**
 * Citations the reference must not carry: material that is not part of this repository. Section
 * signs are fine after a document of the repository (docs/protocol.md §6.5, §6.14) or an RFC.
 */
const OUTSIDE_CITATION = /kernel-semantics|peer-lessons|seed thread|§\s?\d/;
const CITABLE = /(?:docs\/[\w-]+\.md|RFC \d+) §[\d.]+(?:,? ?§[\d.]+)*/g;

let warnings = 0;
const warn = (line) => {
  warnings++;
  process.stderr.write(`docs:api: ${line}\n`);
};

// 1. One declaration file that exports every entry point.
const entry = join(root, 'dist/api-docs-entry.d.ts');
const namespaceOf = (subpath) => subpath.slice(2).replace(/\W(\w)/g, (_, c) => c.toUpperCase());
const subpaths = Object.keys(pkg.exports).filter((s) => s !== '.');
const lines = [
  '/**',
  ` * ${pkg.description}`,
  ' *',
  ` * @remarks The entry point '${pkg.name}' is documented at the top level; each other entry point is a namespace here: ${subpaths.map((s) => `\`${namespaceOf(s)}\` is '${pkg.name}/${s.slice(2)}'`).join(', ')}.`,
  ' *',
  ' * @packageDocumentation',
  ' */',
];
for (const [subpath, target] of Object.entries(pkg.exports)) {
  const from = `./${relative(join(root, 'dist'), join(root, target.types)).replace(/\.d\.ts$/, '.js')}`;
  if (subpath === '.') lines.push(`export * from '${from}';`);
  else lines.push(`/** The entry point '${pkg.name}/${subpath.slice(2)}': \`import { … } from '${pkg.name}/${subpath.slice(2)}'\`. */`, `export * as ${namespaceOf(subpath)} from '${from}';`);
}
writeFileSync(entry, `${lines.join('\n')}\n`);

// 2. The API model.
const model = mkdtempSync(join(tmpdir(), 'vgpu-api-'));
try {
  const config = ExtractorConfig.prepare({
    configObject: {
      projectFolder: root,
      mainEntryPointFilePath: entry,
      compiler: {
        overrideTsconfig: {
          compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, skipLibCheck: true, types: ['node'] },
          files: [entry],
        },
      },
      apiReport: { enabled: false },
      docModel: { enabled: true, apiJsonFilePath: join(model, `${pkg.name}.api.json`) },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      messages: {
        compilerMessageReporting: { default: { logLevel: 'warning' } },
        // The project marks no release stages (@public, @beta, …) and names nothing with a
        // leading underscore: those two rules do not apply.
        extractorMessageReporting: {
          default: { logLevel: 'warning' },
          'ae-missing-release-tag': { logLevel: 'none' },
          'ae-internal-missing-underscore': { logLevel: 'none' },
        },
        tsdocMessageReporting: { default: { logLevel: 'warning' } },
      },
    },
    configObjectFullPath: join(root, 'api-extractor.json'),
    packageJsonFullPath: join(root, 'package.json'),
  });
  const result = Extractor.invoke(config, {
    localBuild: true,
    messageCallback: (m) => {
      m.handled = true;
      if (m.logLevel === 'none' || m.category === 'console' || m.logLevel === 'verbose' || m.logLevel === 'info') return;
      const symbol = /The symbol "(\w+?)(?:_\d+)?" needs to be exported/.exec(m.text)?.[1];
      if (m.messageId === 'ae-forgotten-export' && symbol !== undefined && symbol in NOT_EXPORTED) return;
      const where = m.sourceFilePath ? `${relative(root, m.sourceFilePath)}:${m.sourceFileLine}: ` : '';
      warn(`${where}${m.text} (${m.messageId})`);
    },
  });
  if (!result.succeeded) warn(`API Extractor failed with ${result.errorCount} error(s)`);

  // 3. Markdown.
  const documenterPkg = createRequire(import.meta.url).resolve('@microsoft/api-documenter/package.json');
  const documenter = join(dirname(documenterPkg), JSON.parse(readFileSync(documenterPkg, 'utf8')).bin['api-documenter']);
  const r = spawnSync(process.execPath, [documenter, 'markdown', '-i', model, '-o', out], { encoding: 'utf8' });
  if (r.status !== 0) warn(`API Documenter exited with ${r.status}: ${r.stderr}`);
  for (const line of `${r.stdout}\n${r.stderr}`.split('\n')) if (/warning|error/i.test(line)) warn(line.trim());
} finally {
  rmSync(model, { recursive: true, force: true });
  rmSync(entry, { force: true });
}

// 4. The reference stands alone.
const pages = readdirSync(out).filter((f) => f.endsWith('.md'));
for (const page of pages) {
  const text = readFileSync(join(out, page), 'utf8').replace(CITABLE, '');
  const m = OUTSIDE_CITATION.exec(text);
  if (m !== null) warn(`${page}: cites material outside the repository: …${text.slice(Math.max(0, m.index - 60), m.index + 20).replace(/\s+/g, ' ')}…`);
}

process.stdout.write(`docs:api: ${pages.length} pages in ${relative(root, out)}/, ${warnings} warning(s)\n`);
process.exitCode = warnings === 0 ? 0 : 1;
