import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** A file of the dashboard page: its URL path and its bytes. */
export interface Asset {
  path: string;
  type: string;
  body: Buffer;
}

/**
 * The page's files: the project's own (src/ui/page/, shipped as they are, see
 * package.json "files") and uPlot's build from node_modules. Nothing comes from
 * anywhere else, so the page works offline. Read once: a missing file fails
 * here, at start, not in front of a viewer.
 */
export function loadAssets(): Map<string, Asset> {
  // dist/src/ui/assets.js -> src/ui/page/ (the static files are not compiled)
  const pageDir = fileURLToPath(new URL('../../../src/ui/page/', import.meta.url));
  const require = createRequire(import.meta.url);
  const files: Array<[path: string, file: string, type: string]> = [
    ['/', `${pageDir}index.html`, 'text/html; charset=utf-8'],
    ['/dashboard.css', `${pageDir}dashboard.css`, 'text/css; charset=utf-8'],
    ['/views.js', `${pageDir}views.js`, 'text/javascript; charset=utf-8'],
    ['/live.js', `${pageDir}live.js`, 'text/javascript; charset=utf-8'],
    ['/report.js', `${pageDir}report.js`, 'text/javascript; charset=utf-8'],
    ['/vendor/uPlot.iife.min.js', require.resolve('uplot/dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8'],
    ['/vendor/uPlot.min.css', require.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8'],
  ];
  return new Map(files.map(([path, file, type]) => [path, { path, type, body: readFileSync(file) }]));
}
