import test from 'ava';
import {IMPORT_INTERRUPT_BUDGET, tierUpLater} from '../src/import/lateTierUp.js';

// Node 20's V8 (11.3) is the one whose own budget strata knows and restores; elsewhere
// tierUpLater must leave V8's flags alone.
const knownV8 = process.versions.v8.startsWith('11.3.');
const raised = `--interrupt-budget=${IMPORT_INTERRUPT_BUDGET}`;
const own = '--interrupt-budget=67584';

test('overlapping imports raise the budget once and restore V8\'s own only when the last lets go', t => {
  const set: string[] = [];
  const flags = (f: string) => { set.push(f); };
  const first = tierUpLater(flags, []);
  const second = tierUpLater(flags, []);
  t.deepEqual(set, knownV8 ? [raised] : []);
  first();
  first(); // a second release of the same hold changes nothing
  t.deepEqual(set, knownV8 ? [raised] : [], 'still held by the second import');
  second();
  t.deepEqual(set, knownV8 ? [raised, own] : []);
  const third = tierUpLater(flags, []);
  third();
  t.deepEqual(set, knownV8 ? [raised, own, raised, own] : [], 'a later import raises it again');
});

test('a process started with its own --interrupt-budget keeps it', t => {
  const set: string[] = [];
  const release = tierUpLater(f => { set.push(f); }, ['--interrupt-budget=1000']);
  release();
  t.deepEqual(set, []);
});
