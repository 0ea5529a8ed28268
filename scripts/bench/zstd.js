#!/usr/bin/env node
// zstd in strata's export and import paths, against the way strata did it before (a pipe
// through the `zstd` program, single-threaded, level 3), in the same run and on the same
// bytes: a generated 64 MiB tar-like stream (compressible text and incompressible blocks)
// fed in 64 KiB chunks as a file stream would be. Prints MiB/s, output size, and the ratio
// binding / program (> 1: the binding is faster). `npm run bench -- zstd [MiB] [RUNS]`.
import {spawn} from 'node:child_process';
import {readFileSync} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {Readable, Writable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {prng, root} from './_common.js';

const {createCompressor} = await import(path.join(root, 'packages', 'store', 'dist', 'src', 'oci', 'compress.js'));
const {decompress} = await import(path.join(root, 'packages', 'store', 'dist', 'src', 'oci', 'decompress.js'));
const MIB = Number(process.argv[2] ?? 64);
const RUNS = Number(process.argv[3] ?? 3);

const rand = prng(7);
const input = Buffer.alloc(MIB << 20);
const words = Buffer.from('strata layer store content addressed tree blob image tar entry ');
for (let at = 0; at < input.length; at += 4096) {
  if (rand() < 0.25) for (let j = at; j < Math.min(at + 4096, input.length); j += 4) input.writeUInt32LE((rand() * 2 ** 32) >>> 0, j);
  else words.copy(input, at, 0, Math.min(words.length, input.length - at)), input.copyWithin(at + words.length, at, Math.min(at + 4096 - words.length, input.length - words.length));
}
const chunks = () => Readable.from((function* () { for (let i = 0; i < input.length; i += 65536) yield input.subarray(i, i + 65536); })());

/** A stage through a program, as strata's compressor and decompressor were. */
function program(args) {
  const child = spawn('zstd', args, {stdio: ['pipe', 'pipe', 'ignore']});
  return {stage: child, run: src => new Promise((resolve, reject) => {
    const out = [];
    child.stdout.on('data', d => out.push(d));
    child.on('error', reject);
    child.on('close', code => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`zstd exit ${code}`))));
    src.pipe(child.stdin);
  })};
}

async function collect(stream) {
  const out = [];
  await pipeline(stream, new Writable({write(c, _e, cb) { out.push(c); cb(); }}));
  return Buffer.concat(out);
}

/** CPU seconds of finished children (cutime + cstime of /proc/self/stat, in 1/100 s). */
const childCpu = () => { const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' '); return (Number(f[13]) + Number(f[14])) / 100; };
/** Wall seconds, and CPU seconds of this process (every thread) and its children: on a busy machine CPU time is the fairer figure. */
const time = async fn => {
  const t = process.hrtime.bigint(), u = process.cpuUsage(), c = childCpu();
  const v = await fn();
  const du = process.cpuUsage(u);
  return [Number(process.hrtime.bigint() - t) / 1e9, v, (du.user + du.system) / 1e6 + childCpu() - c];
};
const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = {};
const add = (k, [s, , cpu], v) => { const r = (rows[k] ??= {t: [], cpu: [], v}); r.t.push(s); r.cpu.push(cpu); };
let packed, programPacked;
for (let r = 0; r < RUNS; r++) {
  const a = await time(() => collect(chunks().pipe(createCompressor('zstd'))));
  add('compress: binding, 4 MiB frames', a, a[1].length);
  packed = a[1];
  const b = await time(() => program(['-q', '-c', '-3', '--single-thread']).run(chunks()));
  add('compress: zstd program (before)', b, b[1].length);
  programPacked = b[1];
  const slices = buf => Readable.from((function* () { for (let i = 0; i < buf.length; i += 65536) yield buf.subarray(i, i + 65536); })());
  add('decompress: binding, strata frames', await time(() => collect(decompress(slices(packed), 'zstd'))), input.length);
  add('decompress: binding, one big frame', await time(() => collect(decompress(slices(programPacked), 'zstd'))), input.length);
  add('decompress: zstd program (before)', await time(() => program(['-dc']).run(slices(programPacked))), input.length);
}
console.log(`zstd bench: ${MIB} MiB in 64 KiB chunks, ${RUNS} runs, medians, load ${os.loadavg()[0].toFixed(1)}`);
for (const [k, {t, cpu, v}] of Object.entries(rows)) console.log(`${k.padEnd(36)} wall ${median(t).toFixed(3)} s (${(MIB / median(t)).toFixed(0).padStart(4)} MiB/s)  cpu ${median(cpu).toFixed(2)} s  ${k.startsWith('compress') ? `${(v / 2 ** 20).toFixed(2)} MiB out` : ''}`);
const m = (k, f = 't') => median(rows[k][f]);
for (const f of ['t', 'cpu'])
  console.log(`program/binding ${f === 't' ? 'wall' : 'cpu'}: compress ${(m('compress: zstd program (before)', f) / m('compress: binding, 4 MiB frames', f)).toFixed(2)}, decompress ${(m('decompress: zstd program (before)', f) / m('decompress: binding, strata frames', f)).toFixed(2)} (one big frame: ${(m('decompress: zstd program (before)', f) / m('decompress: binding, one big frame', f)).toFixed(2)})`);
