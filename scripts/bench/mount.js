#!/usr/bin/env node
// The first mount of an image: building its EROFS metadata image and then the two mounts
// (erofs, overlay over objects/ as a data-only lower), against `ostree checkout -H` of the
// same tree into a fresh directory: the peer's way to give a process a root without
// copying file data. Same run, same files: each tree is imported into a strata store and
// committed to a bare ostree repo once (both kept under .bench/mount/), then each side is
// timed RUNS times (median). The image is built both ways research/mounts.md weighs:
//   B: every inline (LevelDB) blob, up to 16 KiB, in the image;
//   C: blobs up to 64 B in the image, the other inline ones spilled to objects/small/
//      (timed from scratch, and "again": a second image once the spilled files exist).
//   npm run bench -- mount [5k|100k ...] [--runs N]
import {spawnSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import * as fs from 'node:fs';
import {loadavg} from 'node:os';
import * as path from 'node:path';
import {fmtBytes, prng, scratch, store as S, time} from './_common.js';

const argv = process.argv.slice(2);
const runsAt = argv.indexOf('--runs');
const RUNS = runsAt >= 0 ? Number(argv.splice(runsAt, 2)[1]) : 3;
const only = argv.length > 0 ? argv : ['5k', '100k'];
// 5k: about a debootstrap minbase rootfs (5,237 files, 120 MB): small files mostly, some large.
// 100k: many small files, 20 per directory (the research's 100k tree, with real bytes).
const TREES = {
  '5k': {files: 5000, perDir: 25, minSize: 16, maxSize: 256 * 1024},
  '100k': {files: 100_000, perDir: 20, minSize: 16, maxSize: 24 * 1024},
};
const has = prog => spawnSync('sh', ['-c', `command -v ${prog}`]).status === 0;
if (!has('ostree')) {
  console.error('bench: ostree is not installed (npm run setup installs it as root)');
  process.exit(1);
}
const root = process.getuid?.() === 0;

/** Generates the tree once (kept under .bench/): log-uniform sizes, random bytes, a few symlinks, fixed mtimes. */
function generate(dir, spec, rand) {
  let made = 0;
  for (let d = 0; made < spec.files; d++) {
    const sub = path.join(dir, `d${d % 50}`, `dir${d}`);
    fs.mkdirSync(sub, {recursive: true});
    for (let i = 0; i < spec.perDir && made < spec.files; i++, made++) {
      const size = Math.round(spec.minSize * (spec.maxSize / spec.minSize) ** rand());
      fs.writeFileSync(path.join(sub, `f${i}.${i % 3 ? 'txt' : 'bin'}`), randomBytes(size), {mode: i % 7 ? 0o644 : 0o755});
    }
    if (d % 10 === 0) fs.symlinkSync(`../dir${d}/f0.bin`, path.join(sub, 'link'));
  }
  spawnSync('sh', ['-c', `find "${dir}" -exec touch -h -d @1700000000 {} +`]);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Wall and CPU (user + system) seconds of an in-process step. */
async function timed(fn) {
  const cpu = process.cpuUsage();
  const {seconds, value} = await time(fn);
  const c = process.cpuUsage(cpu);
  return {seconds, cpu: (c.user + c.system) / 1e6, value};
}

/** Wall and CPU seconds of a command, as /usr/bin/time reports them. */
function timedCommand(cmd, args) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', cmd, ...args], {encoding: 'utf8'});
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const [wall, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return {seconds: wall, cpu: user + sys};
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, {encoding: 'utf8'});
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const base = await scratch('mount');
console.log(`load average ${loadavg().map(l => l.toFixed(1)).join(' ')}; ${RUNS} runs each, medians`);
const rows = [];
for (const name of only) {
  const spec = TREES[name];
  if (!spec) throw new Error(`unknown tree ${name} (5k or 100k)`);
  const dir = path.join(base, name);
  const tree = path.join(dir, 'tree');
  if (!fs.existsSync(path.join(dir, 'tree.done'))) {
    fs.rmSync(dir, {recursive: true, force: true});
    fs.mkdirSync(tree, {recursive: true});
    generate(tree, spec, prng(name.length * 7919));
    fs.writeFileSync(path.join(dir, 'tree.done'), '');
  }
  const storeDir = path.join(dir, 'store');
  const repo = path.join(dir, 'repo');
  if (!fs.existsSync(path.join(dir, 'imported.json'))) {
    fs.rmSync(storeDir, {recursive: true, force: true});
    fs.rmSync(repo, {recursive: true, force: true});
    const s = await S.Store.open(storeDir, {create: true});
    const {layer} = await S.importDirectory(s, tree);
    await s.close();
    run('ostree', ['init', '--repo', repo, '--mode=bare']);
    run('ostree', ['commit', '--repo', repo, '--branch=bench', '--no-xattrs', tree]);
    fs.writeFileSync(path.join(dir, 'imported.json'), JSON.stringify({tree: layer.id}));
  }
  const {tree: digest} = JSON.parse(fs.readFileSync(path.join(dir, 'imported.json'), 'utf8'));
  const s = await S.Store.open(storeDir);
  const fresh = () => {
    fs.rmSync(path.join(storeDir, 'meta'), {recursive: true, force: true});
    fs.rmSync(path.join(storeDir, 'objects', 'small'), {recursive: true, force: true});
    spawnSync('sync');
  };
  const strata = [], rebuild = [], ostree = [], mounts = [], inlineAll = [];
  let build, optionB;
  for (let r = 0; r < RUNS; r++) {
    fresh();
    const b = await timed(() => S.buildMetaImage(s, digest, {inlineMax: 64}));
    strata.push(b);
    build = b.value;
    // A second image in the same store finds the spilled files in place.
    fs.rmSync(path.join(storeDir, 'meta'), {recursive: true, force: true});
    rebuild.push(await timed(() => S.buildMetaImage(s, digest, {inlineMax: 64})));

    const out = path.join(dir, 'checkout');
    fs.rmSync(out, {recursive: true, force: true});
    spawnSync('sync');
    ostree.push(timedCommand('ostree', ['checkout', '--repo', repo, '-H', 'bench', out]));
    fs.rmSync(out, {recursive: true, force: true});

    fresh();
    const bb = await timed(() => S.buildMetaImage(s, digest, {inlineMax: S.INLINE_MAX}));
    inlineAll.push(bb);
    optionB = bb.value;
    if (root) mounts.push(mountOnce(optionB.path, optionB.objects, dir));
  }
  fresh();
  await s.close();
  const med = (xs, k) => median(xs.map(x => x[k]));
  rows.push({name, build, optionB, mount: mounts.length ? median(mounts) : undefined,
    strata: med(strata, 'seconds'), strataCpu: med(strata, 'cpu'), rebuild: med(rebuild, 'seconds'), rebuildCpu: med(rebuild, 'cpu'),
    ostree: med(ostree, 'seconds'), ostreeCpu: med(ostree, 'cpu'), inlineAll: med(inlineAll, 'seconds'), inlineAllCpu: med(inlineAll, 'cpu')});
}

function mountOnce(image, objects, dir) {
  const meta = path.join(dir, 'm-meta');
  const merged = path.join(dir, 'm-merged');
  fs.mkdirSync(meta, {recursive: true});
  fs.mkdirSync(merged, {recursive: true});
  const start = process.hrtime.bigint();
  run('mount', ['-t', 'erofs', '-o', 'ro,loop', image, meta]);
  run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,redirect_dir=nofollow,index=off,metacopy=off,lowerdir=${meta}::${objects}`, merged]);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  run('umount', [merged]);
  run('umount', [meta]);
  return seconds;
}

const pair = (w, c) => `${w.toFixed(2)} (${c.toFixed(2)})`;
const ratio = (a, ac, r) => `${(a / r.ostree).toFixed(2)} (${(ac / r.ostreeCpu).toFixed(2)})`;
console.log('\nseconds as wall (cpu); ratios are strata / ostree checkout -H');
console.log('| tree | files | ostree -H | B: image | B: build | B / ostree | C: image | C: spilled | C: build | C / ostree | C again | C again / ostree | mounts |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const b = r.build;
  console.log(`| ${r.name} | ${b.inlined + b.redirected + b.spilledRefs} | ${pair(r.ostree, r.ostreeCpu)} | ${fmtBytes(r.optionB.bytes)} | ${pair(r.inlineAll, r.inlineAllCpu)} | ${ratio(r.inlineAll, r.inlineAllCpu, r)} | ${fmtBytes(b.bytes)} | ${b.spilledRefs} | ${pair(r.strata, r.strataCpu)} | ${ratio(r.strata, r.strataCpu, r)} | ${pair(r.rebuild, r.rebuildCpu)} | ${ratio(r.rebuild, r.rebuildCpu, r)} | ${r.mount === undefined ? '-' : r.mount.toFixed(3)} |`);
}
console.log('\nmounts: mount -t erofs (loop) + mount -t overlay of the B image, util-linux processes included.');
