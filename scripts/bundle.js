#!/usr/bin/env node
// Bundles the compiled CLI (packages/*/dist after `tsc -b`) into packages/cli/dist/bundle/
// with esbuild, so that a command loads a few files instead of ~100 modules (each a
// resolution, a package.json read, a compile): docs/benchmarks.md, "Fixed cost of a command".
//
// - Code splitting keeps every lazy `import()` lazy: the store and union are chunks that
//   only commands opening a store load, so `--help` loads neither LevelDB nor BLAKE3.
//   (A single-file bundle hoists them to the top: slower than no bundle.)
// - Native and wasm packages (BLAKE3, xattr, zstd, hash-wasm, LevelDB's binding) stay
//   outside: each is imported by a path relative to the bundle, resolved from the package
//   that uses it.
// - `import.meta.url` of a bundled module is replaced by its original file's URL (relative
//   to the bundle, so the tree may move), so `createRequire` and worker URLs resolve as
//   they do unbundled.
// packages/cli/bin/strata.js runs the bundle only when it is newer than every package's
// build, so a `tsc -b` without this step never runs stale code.
import {createRequire} from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const outdir = path.join(root, 'packages', 'cli', 'dist', 'bundle');
// Packages that load native addons (or wasm) by their own paths stay outside the bundle.
// LevelDB's JavaScript (level, classic-level, abstract-level: ~40 CommonJS modules) is
// bundled; only classic-level's binding.js, which loads the addon from its own directory, stays out.
const EXTERNAL = /^(@napi-rs\/[^/]+|@mongodb-js\/zstd|hash-wasm)(\/.*)?$/;
const isLevelBinding = args => args.path === './binding' && /[/\\]classic-level[/\\]/.test(args.importer);

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.error('bundle: esbuild is not installed (a dev dependency); strata runs unbundled');
  process.exit(0);
}

/** A relative import specifier from the bundle directory to `file`. */
const fromBundle = file => {
  const rel = path.relative(outdir, file).split(path.sep).join('/');
  return rel.startsWith('.') ? rel : `./${rel}`;
};

const keepPlaces = {
  name: 'strata-keep-places',
  setup(build) {
    // clipanion and typanion ship ES modules beside their CommonJS (`.mjs`, not named in
    // package.json): bundled as ESM, the parts strata does not use are left out.
    build.onResolve({filter: /^(clipanion|typanion)$/}, args => {
      const main = createRequire(args.importer).resolve(args.path);
      return {path: fs.realpathSync(main.replace(/\.js$/, '.mjs'))};
    });
    const outside = args => ({path: fromBundle(fs.realpathSync(createRequire(args.importer).resolve(args.path))), external: true});
    build.onResolve({filter: EXTERNAL}, outside);
    build.onResolve({filter: /^\.\/binding$/}, args => (isLevelBinding(args) ? outside(args) : undefined));
    build.onLoad({filter: /[/\\]packages[/\\][^/\\]+[/\\]dist[/\\].*\.js$/}, async args => {
      const source = await fs.promises.readFile(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      const url = `new URL(${JSON.stringify(fromBundle(args.path))}, import.meta.url).href`;
      return {contents: source.replaceAll('import.meta.url', url), loader: 'js'};
    });
  },
};

const started = Date.now();
const result = await esbuild.build({
  entryPoints: {strata: path.join(root, 'packages', 'cli', 'dist', 'src', 'bin.js')},
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // CommonJS dependencies (clipanion, tar-stream) call require() for Node's builtins.
  banner: {js: "import {createRequire as __strataRequire} from 'node:module'; const require = __strataRequire(import.meta.url);"},
  plugins: [keepPlaces],
  logLevel: 'warning',
  write: false,
});
// Replace the bundle under running strata processes safely: chunks are named by their
// content, so new ones are written beside the old; the entry is renamed into place last;
// chunks no entry has named for ten minutes go.
fs.mkdirSync(outdir, {recursive: true});
const entry = path.join(outdir, 'strata.js');
const written = new Set();
for (const f of [...result.outputFiles].sort((a, b) => (a.path === entry) - (b.path === entry))) {
  written.add(f.path);
  const tmp = `${f.path}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, f.contents);
  fs.renameSync(tmp, f.path);
}
for (const name of fs.readdirSync(outdir)) {
  const file = path.join(outdir, name);
  if (!written.has(file) && Date.now() - fs.statSync(file).mtimeMs > 10 * 60_000) fs.rmSync(file, {force: true});
}
if (!written.has(entry)) throw new Error('bundle: esbuild wrote no strata.js');
console.error(`bundle: packages/cli/dist/bundle in ${Date.now() - started} ms`);
