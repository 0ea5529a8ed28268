#!/usr/bin/env node
// Runs the bundled CLI (scripts/bundle.js) when it is newer than the build of every
// package it holds, else the compiled modules: a `tsc -b` without a new bundle never runs
// stale code. CommonJS (bin/package.json), as the bundle is: Node then never starts its ES
// module loader. See docs/benchmarks.md for what the bundle saves.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const {pathToFileURL} = require('node:url');

const dist = path.join(__dirname, '..', 'dist');
/** The packages' files of the bundle (lib-<content hash>.cjs) this process has loaded, by name. */
const libs = new Map();
const bundle = path.join(dist, 'bundle');
const mtime = file => fs.statSync(file, {throwIfNoEntry: false})?.mtimeMs;
const built = mtime(path.join(bundle, 'strata.cjs'));
const builds = [path.join(dist, 'tsconfig.tsbuildinfo'), ...['store', 'union', 'registry'].map(p => path.join(__dirname, '..', '..', p, 'dist', 'tsconfig.tsbuildinfo'))].map(mtime);
if (built !== undefined && builds.every(b => b === undefined || b <= built)) load('strata.cjs');
else import(pathToFileURL(path.join(dist, 'src', 'bin.js')).href);

/** The bundle's import() of a package (`@strata/NAME`, in the packages' file the bundle names). */
function importPackage(file, name) {
  if (!libs.has(file)) libs.set(file, load(file));
  return libs.get(file).packages[name]();
}

/** The bundle's import() of anything else: a path relative to the bundle, or a builtin (`node:…`). */
function importFile(specifier) {
  return import(specifier.startsWith('.') ? pathToFileURL(path.join(bundle, specifier)).href : specifier);
}

/**
 * Runs one CommonJS file of the bundle and returns its exports. It is compiled from V8's
 * code cache beside it when V8 takes the cache (same file, same V8 and flags), else from
 * source; then the cache is written for the next run (a temporary name renamed into place;
 * a directory this user cannot write just goes without).
 */
function load(name) {
  const vm = require('node:vm');
  const Module = require('node:module');
  const file = path.join(bundle, name);
  const cacheFile = `${file}.cache`;
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {}
  const wrapped = `(function (exports, require, module, __filename, __dirname, __strataPackage, __strataImport) {${fs.readFileSync(file, 'utf8')}\n})`;
  const script = new vm.Script(wrapped, {filename: file, cachedData});
  if (cachedData === undefined || script.cachedDataRejected) {
    process.once('exit', () => {
      const tmp = `${cacheFile}.tmp-${process.pid}`;
      let fd;
      try {
        fd = fs.openSync(tmp, 'wx'); // before serialising: an unwritable directory costs one failed open
        fs.writeSync(fd, script.createCachedData());
        fs.closeSync(fd);
        fs.renameSync(tmp, cacheFile);
      } catch {
        if (fd !== undefined) fs.rmSync(tmp, {force: true});
      }
    });
  }
  const module = new Module(file, null);
  module.filename = file;
  script.runInThisContext()(module.exports, Module.createRequire(file), module, file, bundle, importPackage, importFile);
  return module.exports;
}
