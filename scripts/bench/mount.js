#!/usr/bin/env node
// The first mount of an image: building its EROFS metadata image (and the small-blob pack
// its inline blobs need), then the mounts (erofs image and pack, overlay over objects/ and
// the pack as data-only lowers), through strata's own mountContainer (what `strata mount`
// does, without the CLI's process start), against `ostree checkout -H` of the same tree
// into a fresh directory: the peer's way to give a process a root without copying file
// data. Same run, same files: each tree is imported into a strata store and committed to
// a bare ostree repo once (both kept under .bench/mount/), then each side is timed RUNS
// times (median), ostree right after each mount so that both see the same load.
// The image is built at several thresholds: blobs up to N bytes go into the image (up to
// 2 KiB beside their inode, larger ones in a block of their own), the other inline
// (LevelDB, <= 16 KiB) blobs into a pack (strata's default N is META_INLINE_MAX); 16384
// keeps every inline blob in the image (research option B). Each is timed from scratch
// ("first": no image, no pack) and "again" (a second image once the pack exists).
// Then the same first mount as users make it, `strata mount` as a process of its own (Node's
// start, a cold index cache and cold code included), at strata's cut, against ostree again.
// Without root, only the builds are timed.
// With --compare DIR (a checkout of another commit, installed and built), that build's first
// mount at its default cut is timed in the same loop, build and ours taking turns, each
// with a store handle of its own (as a `strata mount` process has), and its `strata mount`
// beside ours: before and after in one run, against the same ostree.
//   npm run bench -- mount [5k|100k ...] [--runs N] [--inline 64,2048,...] [--compare DIR]
import {spawnSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import * as fs from 'node:fs';
import {loadavg} from 'node:os';
import * as path from 'node:path';
import {fmtBytes, prng, root as repoRoot, scratch, store as S, time} from './_common.js';

const U = await import(path.join(repoRoot, 'packages', 'union', 'dist', 'src', 'index.js'));
/** Another build's store and union packages and CLI (--compare DIR). */
async function otherBuild(dir) {
  const load = pkg => import(path.join(dir, 'packages', pkg, 'dist', 'src', 'index.js')).catch(err => {
    throw new Error(`bench: --compare ${dir} has no built ${pkg} package (${err.message})`);
  });
  return {S: await load('store'), U: await load('union'), cli: path.join(dir, 'node_modules', '.bin', 'strata')};
}

const argv = process.argv.slice(2);
const runsAt = argv.indexOf('--runs');
const RUNS = runsAt >= 0 ? Number(argv.splice(runsAt, 2)[1]) : 3;
const inlineAt = argv.indexOf('--inline');
// Sizes up to which blobs go into the image; the rest of the inline (LevelDB) blobs go into a pack.
const THRESHOLDS = inlineAt >= 0 ? argv.splice(inlineAt, 2)[1].split(',').map(Number) : [...new Set([S.META_INLINE_MAX, 2048, S.INLINE_MAX])];
const compareAt = argv.indexOf('--compare');
const COMPARE = compareAt >= 0 ? path.resolve(argv.splice(compareAt, 2)[1]) : undefined;
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
const STRATA = process.env.STRATA_BIN ?? path.join(repoRoot, 'node_modules', '.bin', 'strata');

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
function timedCommand(cmd, args, env = process.env) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', cmd, ...args], {encoding: 'utf8', env});
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const [wall, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return {seconds: wall, cpu: user + sys};
}

function run(cmd, args, env = process.env) {
  const r = spawnSync(cmd, args, {encoding: 'utf8', env});
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
  /** The peer: `ostree checkout -H` of the tree into a fresh directory, timed (removed after). */
  const ostreeCheckout = () => {
    const out = path.join(dir, 'checkout');
    fs.rmSync(out, {recursive: true, force: true});
    spawnSync('sync');
    const timing = timedCommand('ostree', ['checkout', '--repo', repo, '-H', 'bench', out]);
    fs.rmSync(out, {recursive: true, force: true});
    return timing;
  };
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
  let s = await S.Store.open(storeDir);
  const image = await s.putImage({layers: [digest], config: {}});
  const container = root ? await U.createContainer(s, {image, name: 'bench'}) : undefined;
  // The layer's pack is written when the layer is stored (import, commit: layerPacks.ts),
  // so it is part of the import, not of a first mount: written here once per build (timed,
  // and printed with the import's figures; each build writes its own form of it) and put
  // back after each fresh() as that build's import left it. A build without layer packs
  // (--compare an older one) gets none.
  const savedFor = new Map(); // a build's store package -> the directory holding its layer pack's files
  const saveLayerPack = async (SS, handle, label) => {
    if (!SS.writeLayerPack) return undefined;
    for (const sub of ['meta', 'packs']) fs.rmSync(path.join(storeDir, sub), {recursive: true, force: true});
    spawnSync('sync');
    const t = await timed(() => SS.writeLayerPack(handle, digest));
    const saved = path.join(dir, `layer-packs-${label}`);
    fs.rmSync(saved, {recursive: true, force: true});
    fs.mkdirSync(saved);
    for (const f of fs.readdirSync(path.join(storeDir, 'packs'))) fs.linkSync(path.join(storeDir, 'packs', f), path.join(saved, f));
    savedFor.set(SS, saved);
    return t;
  };
  const t = await saveLayerPack(S, s, 'this');
  const layerPack = t && {seconds: t.seconds, cpu: t.cpu, bytes: t.value ? fs.statSync(S.layerPackOf?.(s, digest) ?? S.packPath(s, t.value)).size : 0};
  if (COMPARE && container) {
    await s.close();
    const other = await otherBuild(COMPARE);
    const theirs = await other.S.Store.open(storeDir);
    await saveLayerPack(other.S, theirs, 'compare');
    await theirs.close();
    s = await S.Store.open(storeDir);
  }
  /** The store without images or packs, but the layer pack of build `SS` (this one's by default) as its import left it. */
  const fresh = (SS = S) => {
    for (const sub of ['meta', 'packs', path.join('objects', 'small')]) fs.rmSync(path.join(storeDir, sub), {recursive: true, force: true});
    const saved = savedFor.get(SS);
    if (saved) {
      fs.mkdirSync(path.join(storeDir, 'packs'));
      for (const f of fs.readdirSync(saved)) fs.linkSync(path.join(saved, f), path.join(storeDir, 'packs', f));
    }
    spawnSync('sync');
  };
  const perThreshold = [];
  for (const inlineMax of THRESHOLDS) {
    let build;
    // strata's first mount: the image's build at this threshold, then its mounts, as `strata mount` makes them.
    const layers = new U.ContainerLayers(s, async (st, tree) => {
      build = await S.buildMetaImage(st, tree, {inlineMax});
      return {path: build.path, packs: build.packs};
    });
    const mountOnce = async () => {
      if (container) await U.mountContainer(layers, container);
      else build = await S.buildMetaImage(s, digest, {inlineMax});
    };
    // Not timed: unmounting an overlay syncs its upper's filesystem (docs/benchmarks.md, "Starting containers").
    const unmount = () => { if (container) U.unmountContainer(s, container); };
    const first = [], again = [], ostree = [];
    let firstBuild;
    for (let r = 0; r < RUNS; r++) {
      fresh();
      first.push(await timed(mountOnce));
      unmount();
      firstBuild = build;
      // A second image in the same store finds the pack in place.
      fs.rmSync(path.join(storeDir, 'meta'), {recursive: true, force: true});
      again.push(await timed(mountOnce));
      unmount();
      // The peer right after, so that both see the same load.
      ostree.push(ostreeCheckout());
    }
    const med = (xs, k) => median(xs.map(x => x[k]));
    perThreshold.push({inlineMax, build: firstBuild, first: med(first, 'seconds'), firstCpu: med(first, 'cpu'), again: med(again, 'seconds'), againCpu: med(again, 'cpu'),
      ostree: med(ostree, 'seconds'), ostreeCpu: med(ostree, 'cpu')});
  }
  // Before and after in one run: the other build's first mount and ours, taking turns,
  // each with a store handle of its own, then ostree.
  let compared;
  if (COMPARE && container) {
    await s.close();
    const other = await otherBuild(COMPARE);
    const builds = [['this', S, U], ['compare', other.S, other.U]];
    const times = {this: [], compare: [], ostree: []};
    for (let r = 0; r < RUNS; r++) {
      for (const [label, SS, UU] of r % 2 ? [...builds].reverse() : builds) {
        fresh(SS);
        const st = await SS.Store.open(storeDir);
        const c = await st.getContainer(container.id);
        const layers = new UU.ContainerLayers(st, async (x, tree) => {
          const b = await SS.ensureMetaImage(x, tree);
          return {path: b.path, packs: b.packs};
        });
        times[label].push(await timed(() => UU.mountContainer(layers, c)));
        UU.unmountContainer(st, c);
        await st.close();
      }
      times.ostree.push(ostreeCheckout());
    }
    const med = (xs, k) => median(xs.map(x => x[k]));
    compared = Object.fromEntries(Object.entries(times).map(([k, xs]) => [k, {seconds: med(xs, 'seconds'), cpu: med(xs, 'cpu')}]));
    s = await S.Store.open(storeDir);
  }
  fresh();
  await s.close();
  // The same first mount as users make it: `strata mount` in a process of its own (Node's
  // start, the CLI, a cold index cache and cold code), at strata's cut, against ostree again.
  let cli;
  if (container) {
    const env = {...process.env, STRATA_STORE: storeDir};
    const mounts = [], theirs = [], ostree = [];
    const other = COMPARE ? await otherBuild(COMPARE) : undefined;
    const otherCli = other?.cli;
    for (let r = 0; r < RUNS; r++) {
      for (const [bin, into] of otherCli ? (r % 2 ? [[otherCli, theirs], [STRATA, mounts]] : [[STRATA, mounts], [otherCli, theirs]]) : [[STRATA, mounts]]) {
        fresh(bin === STRATA ? S : other.S);
        into.push(timedCommand(bin, ['mount', 'bench'], env));
        run(bin, ['umount', 'bench'], env);
      }
      ostree.push(ostreeCheckout());
    }
    const med = (xs, k) => median(xs.map(x => x[k]));
    cli = {first: med(mounts, 'seconds'), firstCpu: med(mounts, 'cpu'), ostree: med(ostree, 'seconds'), ostreeCpu: med(ostree, 'cpu'),
      ...(otherCli ? {theirs: med(theirs, 'seconds'), theirsCpu: med(theirs, 'cpu')} : {})};
    fresh();
    const again = await S.Store.open(storeDir);
    await U.removeContainer(again, container.id);
    await again.close();
  }
  rows.push({name, perThreshold, cli, compared, layerPack});
}

const pair = (w, c) => `${w.toFixed(2)} (${c.toFixed(2)})`;
const ratio = (a, ac, r) => `${(a / r.ostree).toFixed(2)} (${(ac / r.ostreeCpu).toFixed(2)})`;
console.log(`\nseconds as wall (cpu of this process; the mounts' perl helpers are not counted); ratios are strata / ostree checkout -H of the same run; ${root ? 'build + mounts' : 'builds only (not root)'}`);
console.log('| tree | in image up to | ostree -H | image | in image | in a pack | pack | first mount | first / ostree | again | again / ostree |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const row of rows) {
  for (const r of row.perThreshold) {
    const b = r.build;
    console.log(`| ${row.name} | ${r.inlineMax} B | ${pair(r.ostree, r.ostreeCpu)} | ${fmtBytes(b.bytes)} | ${b.inlined} | ${b.packedRefs} | ${b.packedNew > 0 ? `${b.packedNew} blobs` : '-'} | ${pair(r.first, r.firstCpu)} | ${ratio(r.first, r.firstCpu, r)} | ${pair(r.again, r.againCpu)} | ${ratio(r.again, r.againCpu, r)} |`);
  }
}
console.log('\nthe layer pack, written when the layer is stored (part of the import; here once, in this process):');
for (const {name, layerPack} of rows) if (layerPack) console.log(`| ${name} | ${pair(layerPack.seconds, layerPack.cpu)} | ${fmtBytes(layerPack.bytes)} |`);
console.log('\n`strata mount` as a process of its own (wall and cpu of the process and its children), first mount at strata\'s cut:');
console.log('| tree | ostree -H | strata mount | / ostree |');
console.log('|---|---|---|---|');
for (const {name, cli} of rows) if (cli) console.log(`| ${name} | ${pair(cli.ostree, cli.ostreeCpu)} | ${pair(cli.first, cli.firstCpu)} | ${ratio(cli.first, cli.firstCpu, cli)} |`);
if (COMPARE) {
  console.log(`\nbefore (--compare ${COMPARE}) and after (this build), first mount at each build's default cut, each with a fresh store handle, taking turns:`);
  console.log('| tree | ostree -H | before | after | before / ostree | after / ostree | after / before |');
  console.log('|---|---|---|---|---|---|---|');
  for (const {name, compared: c} of rows) {
    if (!c) continue;
    const r = (a, b) => `${(a.seconds / b.seconds).toFixed(2)} (${(a.cpu / b.cpu).toFixed(2)})`;
    console.log(`| ${name} | ${pair(c.ostree.seconds, c.ostree.cpu)} | ${pair(c.compare.seconds, c.compare.cpu)} | ${pair(c.this.seconds, c.this.cpu)} | ${r(c.compare, c.ostree)} | ${r(c.this, c.ostree)} | ${r(c.this, c.compare)} |`);
  }
  console.log('\n`strata mount` processes, before and after:');
  console.log('| tree | ostree -H | before | after | before / ostree | after / ostree |');
  console.log('|---|---|---|---|---|---|');
  for (const {name, cli} of rows) if (cli?.theirs !== undefined) console.log(`| ${name} | ${pair(cli.ostree, cli.ostreeCpu)} | ${pair(cli.theirs, cli.theirsCpu)} | ${pair(cli.first, cli.firstCpu)} | ${ratio(cli.theirs, cli.theirsCpu, cli)} | ${ratio(cli.first, cli.firstCpu, cli)} |`);
}
