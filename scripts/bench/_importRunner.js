// A process that runs one build's library imports for the import bench (import.js), one per
// line it reads: {"dir", "storeDir", "create"} -> {"seconds", "cpu", "mainCpu", "layer",
// "newBytes"}. One runner per build, started once: its main thread warms up over the runs as
// the bench's own did, and what one build sets for its process (V8's flags: a directory
// import raises the interrupt budget, store/src/import/lateTierUp.ts) never reaches the other.
// Usage (from import.js): node _importRunner.js PATH/TO/store/dist/src/index.js
import * as fs from 'node:fs';
import {createInterface} from 'node:readline';

const S = await import(process.argv[2]);

/** CPU milliseconds of this process's main thread so far (/proc: Node 20 has no per-thread clock). */
function mainThreadMs() {
  const fields = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in ticks of 10 ms
}

process.stdout.write(`${JSON.stringify({ready: true, hash: S.hashBackend()})}\n`);
for await (const line of createInterface({input: process.stdin})) {
  const {dir, storeDir, create} = JSON.parse(line);
  const cpu0 = process.cpuUsage(), main0 = mainThreadMs(), start = process.hrtime.bigint();
  const store = await S.Store.open(storeDir, create ? {create: true} : {});
  const r = await S.importDirectory(store, dir);
  await store.close();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({seconds, cpu: (used.user + used.system) / 1e6, mainCpu: (mainThreadMs() - main0) / 1000, layer: r.layer.id, newBytes: r.newBytes})}\n`);
}
