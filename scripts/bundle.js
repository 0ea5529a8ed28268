#!/usr/bin/env node
// Bundles the compiled CLI (packages/*/dist after `tsc -b`) into packages/cli/dist/bundle/
// with esbuild, so that a command loads a few files instead of ~100 modules (each a
// resolution, a package.json read, a compile): docs/benchmarks.md, "Fixed cost of a command".
//
// Two CommonJS files, each compiled from V8's code cache beside it by packages/cli/bin/strata.js
// (which writes the cache on a first run; V8 itself rejects a cache of another file or V8):
// - **strata.cjs**: the command table (scripts/commandTable.js, packages/cli/src/tableMain.ts):
//   each command's paths, and the help and version answered from it with nothing else loaded.
// - **lib-<hash>.cjs**: the rest of the command line (clipanion, StrataCli, each command's
//   module) and the store, union and registry packages (with LevelDB's JavaScript, tar and
//   the rest), each evaluated when first imported: a command evaluates its own module and
//   the packages it uses. Named by its content, so that a strata process started before a
//   rebuild still loads the files it was built with.
// CommonJS because Node starts its ES module loader only for a module that needs one
// (~9 ms), and because only a script (vm.Script) can be compiled from a code cache on
// Node 20; together they take ~15-40 ms off a command (docs/benchmarks.md). Node 20's vm
// loses the import() callback of a script compiled from a cache, so each `import()` of
// the bundle becomes a call of a function the loader passes in.
// - **worker-<name>-<hash>.mjs**: each worker thread of the packages (the import's hashing
//   threads, the layer pack's and the checkout's writers), its module and what it imports in
//   one ES module, which the packages' files start instead of the compiled module (`findWorkers`).
// - Native and wasm packages (BLAKE3, xattr, zstd, hash-wasm, LevelDB's binding) stay
//   outside: each is imported by a path relative to the bundle, resolved from the package
//   that uses it; an addon whose loader only picks a file is required through a shim that
//   loads that file directly (`addonShim`).
// - `import.meta.url` of a bundled module is replaced by its original file's URL (relative
//   to the bundle, so the tree may move), so `createRequire` and worker URLs resolve as
//   they do unbundled.
// - clipanion and typanion ship ES modules beside their CommonJS (`.mjs`, not named in
//   package.json): bundled from those, the parts strata does not use are left out.
// packages/cli/bin/strata.js runs the bundle only when it is newer than every package's
// build, so a `tsc -b` without this step never runs stale code.
import {spawnSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {createRequire} from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';
import {commandTable} from './commandTable.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const outdir = path.join(root, 'packages', 'cli', 'dist', 'bundle');
// Packages that load native addons (or wasm) by their own paths stay outside the bundle.
// LevelDB's JavaScript (level, classic-level, abstract-level: ~40 CommonJS modules) is
// bundled; only classic-level's binding.js, which loads the addon from its own directory, stays out.
const EXTERNAL = /^(@napi-rs\/[^/]+|@mongodb-js\/zstd|hash-wasm)(\/.*)?$/;
const isLevelBinding = args => args.path === './binding' && /[/\\]classic-level[/\\]/.test(args.importer);
const LIB_PACKAGES = ['store', 'union', 'registry'];

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.error('bundle: esbuild is not installed (a dev dependency); strata runs unbundled');
  process.exit(0);
}

/** A relative import specifier from `dir` to `file`. */
const relative = (dir, file) => {
  const rel = path.relative(dir, file).split(path.sep).join('/');
  return rel.startsWith('.') ? rel : `./${rel}`;
};

/**
 * A native addon's package loads its addon through a loader that searches for this
 * platform's build (napi-rs: platform packages, their package.json files, a musl check;
 * classic-level: node-gyp-build's prebuilds): ~3 ms of CPU per addon in every command that
 * uses it, ~1 ms when the addon file is required directly. So where the loader's exports are
 * exactly the addon file it picked on this machine, the bundle requires a shim
 * (addon-<hash>.cjs) that loads that file, and the loader itself only if the file no longer
 * loads (node_modules moved to another platform) or NAPI_RS_NATIVE_LIBRARY_PATH names
 * another (napi-rs's own override, which its loader reads). Other packages (zstd's, which wraps its
 * addon; hash-wasm) are imported as they are. Returns the shim's path, or undefined.
 */
const shims = new Map();
function addonShim(loader) {
  if (shims.has(loader)) return shims.get(loader);
  const require = createRequire(loader);
  const before = new Set(Object.keys(require.cache));
  let shim;
  try {
    const exports = require(loader);
    const added = Object.keys(require.cache).filter(f => !before.has(f) && f.endsWith('.node'));
    if (added.length === 1 && require.cache[added[0]].exports === exports) {
      shim = path.join(outdir, `addon-${createHash('sha256').update(loader).digest('hex').slice(0, 12)}.cjs`);
      const at = file => JSON.stringify(relative(outdir, file));
      fs.mkdirSync(outdir, {recursive: true});
      fs.writeFileSync(shim, [
        `'use strict';`,
        `// ${path.relative(root, loader)}: the addon its loader picked here when strata was bundled (scripts/bundle.js).`,
        '// napi-rs loaders take NAPI_RS_NATIVE_LIBRARY_PATH first: with it set, the loader decides.',
        `const direct = () => { try { return process.env.NAPI_RS_NATIVE_LIBRARY_PATH ? undefined : require(${at(added[0])}); } catch { return undefined; } };`,
        `module.exports = direct() ?? require(${at(loader)});`,
        '',
      ].join('\n'));
    }
  } catch {
    // A package that does not load here is left to fail where strata uses it, as before.
  }
  shims.set(loader, shim);
  return shim;
}

/**
 * clipanion builds its default context when it loads: `process.stdin` (Node makes the stream
 * on first use: 2-10 ms) and a colour depth from the tty module (~3 ms), in every command,
 * `--help` included. In the bundle the context is made when a command runs, with no stdin
 * (BaseCommand's `stdin` falls back to `process.stdin`, so only commands that read it make
 * it) and the colour depth of stdout when it is a terminal (where tty is loaded anyway).
 * The bin sets a context of its own (packages/cli/src/stdio.ts), whose streams are made only
 * when a command needs them. The text replaced is clipanion 3.2.1's; a clipanion that differs fails the bundle here.
 */
const CLIPANION_CONTEXT = /Cli\.defaultContext = \{\s*env: process\.env,\s*stdin: process\.stdin,\s*stdout: process\.stdout,\s*stderr: process\.stderr,\s*colorDepth: getDefaultColorDepth\(\),\s*\};/;
const CLIPANION_PLATFORM = "import { getCaptureActivator, getDefaultColorDepth } from '../platform';";
function lazyContext(source) {
  if (!CLIPANION_CONTEXT.test(source) || !source.includes(CLIPANION_PLATFORM)) throw new Error('bundle: clipanion\'s Cli.defaultContext is not the one scripts/bundle.js knows (clipanion 3.2.1); update lazyContext');
  return source.replace(CLIPANION_PLATFORM, "import { getCaptureActivator } from '../platform/node.mjs';").replace(CLIPANION_CONTEXT, [
    // strata's bin sets its own (packages/cli/src/stdio.ts: streams made on first use).
    'let strataContext;',
    "Object.defineProperty(Cli, 'defaultContext', {configurable: true, set: context => { strataContext = context; }, get: () => strataContext ?? ({",
    '  env: process.env, stdout: process.stdout, stderr: process.stderr,',
    '  colorDepth: process.stdout.isTTY ? process.stdout.getColorDepth() : 1,',
    '})});',
  ].join('\n'));
}

/**
 * classic-level 3.0.0 requires `fs/promises` when it loads, for one call: `fsp.mkdir` of the
 * index directory in every open. Node loads `fs/promises` with 15 internal modules (readline
 * among them: ~1.5 ms) that a command opening a store need not otherwise use (ps, images:
 * test/addons.test.ts). In the bundle that mkdir is `fs.mkdirSync` (the same call; a few
 * microseconds on the main thread), and the require is gone. The text replaced is classic-level
 * 3.0.0's; one that differs fails the bundle here.
 */
const LEVEL_FSP = "const fsp = require('fs/promises')\n";
const LEVEL_MKDIR = '      await fsp.mkdir(this[kLocation], { recursive: true })\n';
function levelWithoutFsPromises(source) {
  if (source.split(LEVEL_FSP).length !== 2 || source.split(LEVEL_MKDIR).length !== 2 || source.split('fsp').length !== 3) throw new Error('bundle: classic-level\'s use of fs/promises is not the one scripts/bundle.js knows (classic-level 3.0.0); update levelWithoutFsPromises');
  return source.replace(LEVEL_FSP, '').replace(LEVEL_MKDIR, "      require('fs').mkdirSync(this[kLocation], { recursive: true })\n");
}

/**
 * A package's face (`packages/NAME/dist/src/index.js`) re-exports what its modules define:
 * importing it evaluates every module of the package (`@strata/store`: 95 modules, 630 KB,
 * registry's too), where `strata init` needs the 37 behind `Store`. So in the packages' file
 * an import of named exports of a package (`import {A} from '@strata/store'`, `const {A} =
 * await import('@strata/store')`) imports a module of those names alone (`strata-pick:store:A`),
 * which re-exports each from the module that defines it: only those modules and what they
 * import are evaluated. Another import of a package (`import * as`, a namespace) takes the
 * whole face. The face must be re-exports only (it is: "the face of @strata/store"), so the
 * values are the same objects either way; anything else in it fails the bundle here.
 */
const faces = new Map();
function faceOf(pkg) {
  if (faces.has(pkg)) return faces.get(pkg);
  const file = fs.realpathSync(path.join(root, 'packages', pkg, 'dist', 'src', 'index.js'));
  const source = fs.readFileSync(file, 'utf8');
  const names = new Map();
  const rest = source.replace(/^export \{([^}]*)\} from '(\.[^']+)';$/gm, (_, list, rel) => {
    for (const item of list.split(',').map(x => x.trim()).filter(Boolean)) {
      const [name, as = name] = item.split(/\s+as\s+/);
      names.set(as, `export {${name} as ${as}} from ${JSON.stringify(path.resolve(path.dirname(file), rel))};`);
    }
    return '';
  }).replace(/^export \* as (\w+) from '(\.[^']+)';$/gm, (_, as, rel) => {
    names.set(as, `export * as ${as} from ${JSON.stringify(path.resolve(path.dirname(file), rel))};`);
    return '';
  }).replace(/^\/\/.*$/gm, '').trim();
  if (rest !== '') throw new Error(`bundle: ${path.relative(root, file)} holds more than re-exports (${JSON.stringify(rest.slice(0, 60))}); update faceOf`);
  faces.set(pkg, names);
  return names;
}
/** The names an import clause or a destructuring takes (`A, B as c` / `A, B: c`), or undefined for any other form. */
function takenNames(list) {
  const names = [];
  for (const item of list.split(',').map(x => x.trim()).filter(Boolean)) {
    const m = /^(\w+)(?:\s*(?:as\s+|:\s*)\w+)?$/.exec(item);
    if (!m) return undefined;
    names.push(m[1]);
  }
  return names.length > 0 ? [...new Set(names)].sort() : undefined;
}
/** A module's imports of named exports of a package, as imports of `strata-pick:` modules (faceOf). */
function pickImports(source) {
  const pick = (whole, pkg, list, form) => {
    const names = takenNames(list);
    return names && faceOf(pkg) ? form(`strata-pick:${pkg}:${names.join(',')}`) : whole;
  };
  return source
    .replace(/\bimport (\{[^}]*\}) from '@strata\/(\w+)';/g, (whole, clause, pkg) => pick(whole, pkg, clause.slice(1, -1), id => `import ${clause} from '${id}';`))
    .replace(/\b(const|let) (\{[^}]*\}) = await import\('@strata\/(\w+)'\)/g, (whole, decl, pattern, pkg) => pick(whole, pkg, pattern.slice(1, -1), id => `${decl} ${pattern} = await import('${id}')`));
}
/** The module behind `strata-pick:PKG:A,B`: each name re-exported from its module (faceOf). */
function pickModule(id) {
  const [, pkg, list] = id.split(':');
  const face = faceOf(pkg);
  return list.split(',').map(name => {
    const line = face.get(name);
    if (!line) throw new Error(`bundle: @strata/${pkg} exports no ${name}`);
    return line;
  }).join('\n');
}

/**
 * A package's worker threads (the import's hashing threads, the layer pack's writer, the
 * checkout's writers) each run a file of the bundle of their own (`worker-<name>-<hash>.mjs`:
 * the thread's module and what it imports, in one ES module), not the package's compiled
 * modules: a thread that loads ~20 modules through Node's ES module loader took ~70-100 ms
 * of CPU to be ready (~40 ms more than one module of the same code) and ~70 ms more wall
 * while the import waited for it (docs/benchmarks.md, "The command's process: the import").
 * ES modules, as the threads' modules use top-level await. A worker is found by the one form
 * the packages start it with, `new Worker(new URL('./NAME.js', import.meta.url)`; any other
 * `new Worker(` fails the bundle here, so no thread is left loading the compiled modules
 * unseen. Named by content, as the packages' files are.
 */
const WORKER_START = /new Worker\(new URL\((['"])(\.\/[\w.-]+\.js)\1, import\.meta\.url\)/g;
/** The workers of the packages' compiled modules: the source of each, by the module that starts it. */
function findWorkers() {
  const found = new Set();
  for (const pkg of LIB_PACKAGES) {
    const dist = path.join(root, 'packages', pkg, 'dist', 'src');
    for (const name of fs.readdirSync(dist, {recursive: true})) {
      if (!name.endsWith('.js')) continue;
      // tsc never removes the output of a source that moved or went: only what a source compiles to counts.
      if (!fs.existsSync(path.join(root, 'packages', pkg, 'src', name.replace(/\.js$/, '.ts')))) continue;
      const file = path.join(dist, name);
      const source = fs.readFileSync(file, 'utf8');
      const starts = source.split('new Worker(').length - 1;
      const known = [...source.matchAll(WORKER_START)];
      if (known.length !== starts) throw new Error(`bundle: ${path.relative(root, file)} starts a Worker otherwise than new Worker(new URL('./NAME.js', import.meta.url)); update findWorkers`);
      for (const [, , rel] of known) found.add(fs.realpathSync(path.resolve(path.dirname(file), rel)));
    }
  }
  return [...found].sort();
}
/** The bundle's file of each worker's module (absolute path -> file name), set before the packages' files are built. */
const workerFiles = new Map();
/** A module's `new Worker(new URL('./NAME.js', import.meta.url)` as a start of the bundle's file of that worker. */
function bundledWorkers(source, file) {
  return source.replace(WORKER_START, (_, q, rel) => {
    const name = workerFiles.get(fs.realpathSync(path.resolve(path.dirname(file), rel)));
    if (!name) throw new Error(`bundle: ${path.relative(root, file)} starts ${rel}, which is no worker bundle.js built`);
    return `new Worker(new URL(__strataUrl(${JSON.stringify(`./${name}`)}))`;
  });
}

/**
 * The plugin of every build; `dir` is where the build's files go, `front` whether it is the
 * entry's (strata.cjs), `ofWorkers` whether it is the workers' (their modules' own starts of
 * workers, as packSink.js in the layer pack's worker, are never run there: left as they are).
 */
const keepPlaces = (dir, front, ofWorkers = false) => ({
  name: 'strata-keep-places',
  setup(build) {
    build.onResolve({filter: /^(clipanion|typanion)$/}, args => {
      const main = createRequire(args.importer).resolve(args.path);
      return {path: fs.realpathSync(main.replace(/\.js$/, '.mjs'))};
    });
    const outside = args => {
      const file = fs.realpathSync(createRequire(args.importer).resolve(args.path));
      return {path: relative(dir, addonShim(file) ?? file), external: true};
    };
    build.onResolve({filter: EXTERNAL}, outside);
    build.onResolve({filter: /^\.\/binding$/}, args => (isLevelBinding(args) ? outside(args) : undefined));
    // The entry reaches the commands through the packages' file (`commands`, scripts/commandTable.js).
    if (front) build.onResolve({filter: /^@strata\/(store|union|registry|commands|command\/\d+)$/}, args => ({path: args.path, external: true}));
    build.onResolve({filter: /^\.\/addon-[0-9a-f]{12}\.cjs$/}, args => ({path: args.path, external: true}));
    build.onLoad({filter: /[/\\]clipanion[/\\]lib[/\\]advanced[/\\]Cli\.mjs$/}, async args => ({contents: lazyContext(await fs.promises.readFile(args.path, 'utf8')), loader: 'js'}));
    build.onLoad({filter: /[/\\]classic-level[/\\]index\.js$/}, async args => ({contents: levelWithoutFsPromises(await fs.promises.readFile(args.path, 'utf8')), loader: 'js'}));
    if (!front) {
      build.onResolve({filter: /^strata-pick:/}, args => ({path: args.path, namespace: 'strata-pick'}));
      build.onLoad({filter: /.*/, namespace: 'strata-pick'}, args => ({contents: pickModule(args.path), loader: 'js', resolveDir: root}));
    }
    build.onLoad({filter: /[/\\]packages[/\\][^/\\]+[/\\]dist[/\\].*\.js$/}, async args => {
      const read = await fs.promises.readFile(args.path, 'utf8');
      const source = front ? read : ofWorkers ? pickImports(read) : bundledWorkers(pickImports(read), args.path);
      if (!source.includes('import.meta.url')) return source === read ? undefined : {contents: source, loader: 'js'};
      const rel = JSON.stringify(relative(dir, args.path));
      // An addon loaded on first use (`createRequire(import.meta.url)('NAME')`) through its shim.
      const lazyAddons = source.replace(/createRequire\(import\.meta\.url\)\((['"])([^'"]+)\1\)/g, (call, _, name) => {
        const shim = addonShim(fs.realpathSync(createRequire(args.path).resolve(name)));
        return shim ? `require(${JSON.stringify(relative(dir, shim))})` : call;
      });
      return {contents: lazyAddons.replaceAll('import.meta.url', `__strataUrl(${rel})`), loader: 'js'};
    });
  },
});

const started = Date.now();
const shared = {
  bundle: true, platform: 'node', target: 'node20', format: 'cjs', logLevel: 'warning', write: false, charset: 'ascii',
  // What `import.meta.url` of a bundled module becomes: its original file's URL. A name of the
  // file's top level, as a module's own `require` may shadow Node's.
  // `__strataBuiltin`: one object per Node builtin (see `viaLoader`), loading it on first use.
  banner: {js: [
    "const __strataUrl = rel => require('node:url').pathToFileURL(require('node:path').join(__dirname, rel)).href;",
    // A builtin is required when first used, not when a module that imports it starts: most
    // commands never touch crypto, child_process, worker_threads or zlib (~30 of Node's
    // internal modules compiled on load). `ns`: the ES namespace form (a default import).
    'const __strataLazy = load => {',
    '  let real;',
    '  const get = () => (real ??= load());',
    '  return new Proxy({}, {',
    '    get: (_, k) => get()[k], has: (_, k) => k in get(), ownKeys: () => Reflect.ownKeys(get()),',
    '    getOwnPropertyDescriptor: (_, k) => { const d = Reflect.getOwnPropertyDescriptor(get(), k); return d && {...d, configurable: true}; },',
    '  });',
    '};',
    'const __strataBuiltins = new Map();',
    'const __strataBuiltin = (id, ns) => {',
    '  const key = ns ? `ns:${id}` : id;',
    '  let m = __strataBuiltins.get(key);',
    '  if (!m) __strataBuiltins.set(key, m = __strataLazy(() => (ns ? __toESM(require(id), 1) : require(id))));',
    '  return m;',
    '};',
  ].join('\n')},
};
// The command table (scripts/commandTable.js): the entry, and the commands' package.
const cliSrc = path.join(root, 'packages', 'cli', 'dist', 'src');
const table = await commandTable(cliSrc);
// The packages and the commands, each evaluated only when first imported (esbuild keeps
// a module that is only imported dynamically lazy): one file of every command (for what
// can mean several: help, usage errors, options first), and one per command with that
// command's module alone and what it reaches. One build of all of them (esbuild reads
// and parses each module once); no code is shared between the files, so each is whole.
// A command's own file is what a command reads: `ps` ~0.4 MB instead of 1.1, and V8's
// code cache of a file holds its top-level code (every module's hoisted functions: ~230
// KB of the 1.1 MB file's ~470 KB cache for ps) besides what the command ran.
// The workers' files first: the packages' files name them (bundledWorkers).
const workerSources = findWorkers();
const workers = await esbuild.build({
  ...shared,
  format: 'esm',
  entryPoints: workerSources.map(file => ({in: file, out: `worker-${path.basename(file, '.js')}`})),
  outdir,
  outExtension: {'.js': '.mjs'},
  // An ES module has no require, __dirname nor the CommonJS banner's helpers: what the
  // plugin's rewrites use (`__strataUrl`, `require` of an addon's shim), from its own URL.
  banner: {js: [
    "import {createRequire as __strataCreateRequire} from 'node:module';",
    'const require = __strataCreateRequire(import.meta.url);',
    'const __strataUrl = rel => new URL(rel, import.meta.url).href;',
  ].join('\n')},
  plugins: [keepPlaces(outdir, false, true)],
});
if (workers.outputFiles.length !== workerSources.length) throw new Error('bundle: esbuild wrote other files than one per worker');
const workerOutputs = workerSources.map(file => {
  const out = workers.outputFiles.find(f => f.path === path.join(outdir, `worker-${path.basename(file, '.js')}.mjs`));
  if (!out) throw new Error(`bundle: esbuild wrote no file for the worker ${path.relative(root, file)}`);
  const name = `worker-${path.basename(file, '.js')}-${createHash('sha256').update(out.contents).digest('hex').slice(0, 16)}.mjs`;
  workerFiles.set(file, name);
  return [name, out.text];
});
const entries = new Map([['lib', `export const packages = {${LIB_PACKAGES.map(p => `${p}: () => import('@strata/${p}')`).join(', ')},\n${table.loaders}};`]]);
table.keys.forEach((key, i) => {
  if (!/^[a-z]+(-[a-z]+)*$/.test(key)) throw new Error(`bundle: command ${i}'s path (${key}) is not lower-case words`);
  entries.set(`cmd-${key}`, `export const packages = {\n${table.loadersOf(i)}};`);
});
const lib = await esbuild.build({
  ...shared,
  entryPoints: [...entries.keys()].map(name => ({in: `strata-entry:${name}`, out: name})),
  outdir, // written under their content's names, below
  plugins: [keepPlaces(outdir, false), {
    name: 'strata-entries',
    setup(build) {
      // Named as a file beside the command line's modules: what they import resolves from there.
      build.onResolve({filter: /^strata-entry:/}, args => ({path: path.join(cliSrc, `${args.path.slice('strata-entry:'.length)}.entry`), namespace: 'strata-entry'}));
      build.onLoad({filter: /.*/, namespace: 'strata-entry'}, args => ({contents: entries.get(path.basename(args.path, '.entry')), loader: 'js', resolveDir: cliSrc}));
    },
  }],
});
// The entry: group help from the table, the rest from the packages' files.
const cli = await esbuild.build({
  ...shared,
  stdin: {contents: table.entry, resolveDir: cliSrc, sourcefile: 'strata-table.js'},
  outfile: path.join(outdir, 'strata.cjs'),
  plugins: [keepPlaces(outdir, true)],
});
const [cliOut] = cli.outputFiles;
if (lib.outputFiles.length !== entries.size || cli.outputFiles.length !== 1 || !cliOut) throw new Error('bundle: esbuild wrote other files than strata.cjs and the packages\' files');
const outputOf = name => lib.outputFiles.find(f => f.path === path.join(outdir, `${name}.js`)) ?? (() => { throw new Error(`bundle: esbuild wrote no ${name}.js`); })();
// The packages' file is named by its content, so a strata process that started before a
// rebuild still finds the packages its command line was built with.
const named = new Map([...entries.keys()].map(name => [name, `${name}-${createHash('sha256').update(outputOf(name).contents).digest('hex').slice(0, 16)}.cjs`]));
const libName = named.get('lib');
const commandFiles = table.keys.map(key => named.get(`cmd-${key}`));
// Node 20's vm loses the import() callback of a script compiled from a code cache, so every
// import() of the bundle is the loader's: `__strataPackage(LIB, NAME)` for a package,
// `__strataImport(SPECIFIER)` for the rest (a file beside the bundle: the wasm fallback of BLAKE3; a builtin).
// And a module's `import * as fs from 'node:fs'` is esbuild's `__toESM(require("node:fs"), 1)`,
// a copy of every property of the builtin as a getter, made anew in each of ~80 modules
// (~4,000 getters, a few ms of every command): one copy per builtin serves them all. Named
// imports (`import_node_crypto = require("node:crypto")`) go through it too, so that each
// builtin loads when it is first used: `strata diff` loads 43 of Node's internal modules
// instead of 70 (no crypto, child_process, worker_threads, zlib): ~5 ms of CPU less for
// diff and ps, ~10 ms for ls (25 runs each, load 1–4).
const viaLoader = text => text
  .replace(/__toESM\(require\("(node:[\w/]+)"\), 1\)/g, '__strataBuiltin("$1", true)')
  .replace(/\b(import_\w+) = require\("(node:[\w/]+)"\);/g, '$1 = __strataBuiltin("$2");')
  .replace(/\bimport\("@strata\/command\/(\d+)"\)/g, (_, i) => `__strataPackage(${JSON.stringify(commandFiles[Number(i)])}, "commands")`)
  .replace(/\bimport\("@strata\/(\w+)"\)/g, (_, name) => `__strataPackage(${JSON.stringify(libName)}, ${JSON.stringify(name)})`)
  .replace(/\bimport\(("[^"\n]+")\)/g, '__strataImport($1)');

// Replace the bundle under running strata processes safely: the packages' new file is
// written beside the old, the command line renamed into place last; files no build has
// written for ten minutes go (with their code caches).
fs.mkdirSync(outdir, {recursive: true});
// Each file starts with its build id (`// strata build <hash of the rest>`): the loader names
// the file's code caches by it. V8 checks a cache against the source's length only, so a
// cache that a process of another build wrote (at its exit, after this build replaced the
// file) must never be found under this build's names.
const entry = path.join(outdir, 'strata.cjs');
const written = new Set([...shims.values()].filter(Boolean));
const ids = new Set();
const outputs = [
  ...workerOutputs.map(([name, text]) => [path.join(outdir, name), text, false]),
  ...[...named].map(([name, file]) => [path.join(outdir, file), outputOf(name).text, true]),
  [entry, cliOut.text, true],
];
for (const [file, text, viaOurLoader] of outputs) {
  written.add(file);
  // ASCII only: one non-ASCII character makes V8 hold the whole file as a two-byte string
  // (twice the memory, a slower read). esbuild escapes code (charset: ascii) and keeps
  // comments as they are: there an escape is as good.
  const body = (viaOurLoader ? viaLoader(text) : text).replace(/[^\x00-\x7f]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (/[^\x00-\x7f]/.test(body)) throw new Error('bundle: a non-ASCII character is left');
  const id = createHash('sha256').update(body).digest('hex').slice(0, 16);
  ids.add(`${path.basename(file)}.${id}`);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `// strata build ${id}\n${body}`);
  fs.renameSync(tmp, file);
}
// What no build has written for ten minutes goes (older builds' packages and code caches:
// `<file>.<id>[.<command>].cache`); a strata process of an older build may still be running.
for (const name of fs.readdirSync(outdir)) {
  const file = path.join(outdir, name);
  const st = fs.statSync(file);
  const ours = written.has(file) || [...ids].some(id => name.startsWith(`${id}.`) && name.endsWith('.cache'));
  if (st.isFile() && !ours && Date.now() - st.mtimeMs > 10 * 60_000) fs.rmSync(file, {force: true});
}
// The first runs write the code caches (packages/cli/bin/strata.js keeps one per command, and
// a default per file from the first process that loads it): the commands run most often,
// so that they find their own even where the user may not write this directory.
const bin = path.join(root, 'packages', 'cli', 'bin', 'strata.js');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bundle-'));
try {
  const store = path.join(scratch, 'store');
  const src = path.join(scratch, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'hello'), 'hello\n');
  const run = (...args) => spawnSync(process.execPath, [bin, ...args], {stdio: 'ignore', env: {...process.env, NO_COLOR: '1'}});
  run('--help');
  run('init', '--store', store);
  run('ps', '--store', store);
  run('import', src, '--tag', 'warm:1', '--store', store);
  run('images', '--store', store);
  run('create', 'warm:1', '--name', 'warm', '--store', store);
  run('diff', 'warm', '--store', store);
  run('commit', 'warm', '--store', store);
  // A usage error clipanion answers registers every command: last, so that the packages'
  // file's default cache (the first process's: a command's own cache starts from it) is init's.
  run('--bogus');
} finally {
  fs.rmSync(scratch, {recursive: true, force: true});
}
console.error(`bundle: packages/cli/dist/bundle in ${Date.now() - started} ms`);
