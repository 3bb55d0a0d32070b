// Bundle the widget front ends into single ESM files for anywidget's `_esm`.
// Run by `make js` (npm ci + this script); the output is not checked in.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.join(here, '..', 'workbench', 'widgets', 'static');

await build({
  entryPoints: { scatter: path.join(here, 'scatter.js'), gallery: path.join(here, 'gallery.js'),
    charts: path.join(here, 'charts.js') },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  sourcemap: false,
  outdir,
  legalComments: 'eof',
  logLevel: 'info',
});
