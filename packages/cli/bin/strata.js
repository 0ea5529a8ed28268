#!/usr/bin/env node
// Runs the bundled CLI (scripts/bundle.js) when it is newer than the build of every
// package it holds, else the compiled modules: a `tsc -b` without a new bundle never runs
// stale code. Four stat calls; see docs/benchmarks.md for what the bundle saves.
import {statSync} from 'node:fs';

const mtime = rel => statSync(new URL(rel, import.meta.url), {throwIfNoEntry: false})?.mtimeMs;
const bundle = mtime('../dist/bundle/strata.js');
const builds = ['../dist/tsconfig.tsbuildinfo', '../../store/dist/tsconfig.tsbuildinfo', '../../union/dist/tsconfig.tsbuildinfo'].map(mtime);
const fresh = bundle !== undefined && builds.every(b => b === undefined || b <= bundle);
await import(fresh ? '../dist/bundle/strata.js' : '../dist/src/bin.js');
