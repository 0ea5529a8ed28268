#!/usr/bin/env node
// Runs the bundled CLI (scripts/bundle.js) when it is newer than the build of every
// package it holds, else the compiled modules: a `tsc -b` without a new bundle never runs
// stale code. CommonJS (bin/package.json), as the bundle is: Node then never starts its ES
// module loader. See docs/benchmarks.md for what the bundle saves.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist');
const bundle = path.join(dist, 'bundle');
const mtime = file => fs.statSync(file, {throwIfNoEntry: false})?.mtimeMs;
const built = mtime(path.join(bundle, 'strata.cjs'));
const builds = [path.join(dist, 'tsconfig.tsbuildinfo'), ...['store', 'union', 'registry'].map(p => path.join(__dirname, '..', '..', p, 'dist', 'tsconfig.tsbuildinfo'))].map(mtime);
const fresh = built !== undefined && builds.every(b => b === undefined || b <= built);

/**
 * Code caches are kept per command (docs/design.md, "The fixed cost of a command"): each
 * holds the functions that command ran, so it deserialises what it needs and compiles
 * nothing. The key is the command's path joined by `-` (`ps`, `image-inspect`), or `help`
 * for what is no command (help, usage errors); a file's default cache, from the first
 * process that loaded it, serves a command that has no cache of its own yet (strata.cjs and
 * the file of every command: a command's own file runs under its key alone).
 */
const KEY = /^[a-z]+(-[a-z]+)*$/;
/** The key the command line reported (`__strataRan`) once it knew which command runs. */
let ran;
/** The files of the bundle this process loaded, by name: the key of the cache read ('' the default, undefined none), whether V8 took it, the script, its exports. */
const loaded = new Map();

if (fresh) {
  process.once('exit', writeCaches);
  load('strata.cjs', guessKeys(process.argv.slice(2)));
} else {
  import(require('node:url').pathToFileURL(path.join(dist, 'src', 'bin.js')).href);
}

/**
 * The keys the command line's cache is looked up by before it runs, from argv's leading
 * words: `image inspect X` tries `image-inspect`, then `image`; no words, `help`. Only
 * words that can be a command's (lower-case letters); a wrong guess costs a failed open.
 */
function guessKeys(argv) {
  const words = [];
  for (const a of argv.slice(0, 2)) {
    if (!/^[a-z]+$/.test(a)) break;
    words.push(a);
  }
  if (argv.length === 0 || argv[0].startsWith('-')) return ['help'];
  return words.length === 2 ? [words.join('-'), words[0]] : words;
}

/** The bundle's report of what runs: the key of its code caches (KEY), before the packages load. */
function reportRun(key) {
  if (typeof key === 'string' && KEY.test(key)) ran = key;
}

/** The bundle's import() of a package (`@strata/NAME`, in the packages' file the bundle names). */
function importPackage(file, name) {
  const exports = loaded.get(file)?.exports ?? load(file, ran === undefined ? guessKeys(process.argv.slice(2)) : [ran]);
  return exports.packages[name]();
}

/** The bundle's import() of anything else: a path relative to the bundle, or a builtin (`node:…`). */
function importFile(specifier) {
  return import(specifier.startsWith('.') ? require('node:url').pathToFileURL(path.join(bundle, specifier)).href : specifier);
}

/** A cache's file: `<file>.<build id>.<key>.cache`, `<file>.<build id>.cache` the default. */
function cacheFile(file, id, key) {
  return `${file}.${id}${key ? `.${key}` : ''}.cache`;
}

/**
 * Runs one CommonJS file of the bundle and returns its exports. It is compiled from the
 * V8 code cache of the first of `keys` that has one, else the file's default cache, else
 * from source. The caches are named by the build id on the file's first line (scripts/bundle.js):
 * V8 itself checks a cache against the source's length, its own version and flags, so a
 * cache of another build is never looked for, and a damaged one just costs the compile.
 */
function load(name, keys) {
  const vm = require('node:vm');
  const Module = module.constructor;
  const file = path.join(bundle, name);
  const source = fs.readFileSync(file, 'utf8');
  const id = /^\/\/ strata build ([0-9a-f]+)\n/.exec(source)?.[1];
  let cachedData, key;
  for (const k of id === undefined ? [] : [...keys, '']) {
    try {
      cachedData = fs.readFileSync(cacheFile(file, id, k));
      key = k;
      break;
    } catch {}
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname, __strataPackage, __strataImport, __strataRan) {${source}\n})`;
  const script = new vm.Script(wrapped, {filename: file, cachedData});
  const entry = {id, key, accepted: cachedData !== undefined && !script.cachedDataRejected, script, exports: undefined};
  loaded.set(name, entry);
  const mod = new Module(file, null);
  mod.filename = file;
  entry.exports = mod.exports;
  script.runInThisContext()(mod.exports, Module.createRequire(file), mod, file, bundle, importPackage, importFile, reportRun);
  return entry.exports = mod.exports;
}

/**
 * At exit, the caches this process should leave: the file's default where it had none or
 * V8 refused it (not for a command's own file), and the command's own (`ran`) where it has
 * none or V8 refused it. Each is
 * written under a temporary name and renamed into place; a directory this user cannot
 * write just goes without (one failed open). A command that found its own cache and had
 * it taken does nothing here.
 */
function writeCaches() {
  for (const [name, {id, key, accepted, script}] of loaded) {
    if (id === undefined) continue;
    const file = path.join(bundle, name);
    const targets = [];
    // A command's own file (cmd-*) runs under that command's key: a default beside it would be a copy.
    if ((key === undefined && !name.startsWith('cmd-')) || (key === '' && !accepted)) targets.push('');
    if (ran !== undefined && (key === ran ? !accepted : !fs.existsSync(cacheFile(file, id, ran)))) targets.push(ran);
    let data;
    for (const target of targets) {
      const dest = cacheFile(file, id, target);
      const tmp = `${dest}.tmp-${process.pid}`;
      let fd;
      try {
        fd = fs.openSync(tmp, 'wx'); // before serialising: an unwritable directory costs one failed open
        fs.writeSync(fd, data ??= script.createCachedData());
        fs.closeSync(fd);
        fs.renameSync(tmp, dest);
      } catch {
        if (fd !== undefined) fs.rmSync(tmp, {force: true});
        return;
      }
    }
  }
}
