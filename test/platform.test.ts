import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import test from 'ava';
import {strata, tempDir, tempStore} from './_cli.js';
import {peer} from './_peers.js';

// An image's platform is part of it: umoci builds one arm64 image and one amd64 image of
// the same (empty) layer, strata keeps them apart, and skopeo reads strata's exports.

async function umociImage(t: Parameters<typeof tempDir>[0], arch: string, variant?: string): Promise<string> {
  const layout = path.join(await tempDir(t), `img-${arch}`);
  peer(t, 'umoci', ['init', '--layout', layout]);
  peer(t, 'umoci', ['new', '--image', `${layout}:1`]);
  peer(t, 'umoci', ['config', '--image', `${layout}:1`, '--architecture', arch, '--os', 'linux', '--config.cmd', 'sh']);
  if (variant) {
    // umoci has no variant option: add it to the config as OCI config.md allows, fixing the digests.
    const index = JSON.parse(await fs.readFile(path.join(layout, 'index.json'), 'utf8'));
    const blob = (d: string) => path.join(layout, 'blobs', 'sha256', d.slice(7));
    const manifest = JSON.parse(await fs.readFile(blob(index.manifests[0].digest), 'utf8'));
    const config = JSON.parse(await fs.readFile(blob(manifest.config.digest), 'utf8'));
    const put = async (v: unknown) => {
      const bytes = Buffer.from(JSON.stringify(v));
      const d = `sha256:${(await import('node:crypto')).createHash('sha256').update(bytes).digest('hex')}`;
      await fs.writeFile(blob(d), bytes);
      return {digest: d, size: bytes.length};
    };
    manifest.config = {...manifest.config, ...(await put({...config, variant}))};
    index.manifests[0] = {...index.manifests[0], ...(await put(manifest))};
    await fs.writeFile(path.join(layout, 'index.json'), JSON.stringify(index));
  }
  return layout;
}

test('arm64 and amd64 images of the same layers import as two ids and export as imported', async t => {
  const store = await tempStore(t);
  const arm = await umociImage(t, 'arm64', 'v8');
  const amd = await umociImage(t, 'amd64');
  t.is((await strata(['image', 'import', arm, '--tag', 'app:arm'], {store})).code, 0);
  t.is((await strata(['image', 'import', amd, '--tag', 'app:amd'], {store})).code, 0);
  const inspect = async (ref: string) => JSON.parse((await strata(['image', 'inspect', ref, '--json'], {store})).stdout);
  const [a, b] = [await inspect('app:arm'), await inspect('app:amd')];
  t.not(a.id, b.id);
  t.deepEqual(a.layers, b.layers);
  t.deepEqual(a.platform, {architecture: 'arm64', os: 'linux', variant: 'v8'});
  t.deepEqual(b.platform, {architecture: 'amd64', os: 'linux'});
  t.regex((await strata(['image', 'inspect', 'app:arm'], {store})).stdout, /^platform\s+linux\/arm64\/v8$/m);

  const out = await tempDir(t);
  t.is((await strata(['image', 'export', 'app:arm', path.join(out, 'oci')], {store})).code, 0);
  t.is((await strata(['image', 'export', 'app:arm', path.join(out, 'app.tar'), '--format', 'docker'], {store})).code, 0);
  for (const ref of [`oci:${path.join(out, 'oci')}:app:arm`, `docker-archive:${path.join(out, 'app.tar')}`]) {
    const seen = JSON.parse(peer(t, 'skopeo', ['inspect', '--config', ref]));
    t.like(seen, {architecture: 'arm64', os: 'linux', variant: 'v8'}, ref);
  }
});

test('commit and import --on keep the platform of the image below', async t => {
  const store = await tempStore(t);
  t.is((await strata(['image', 'import', await umociImage(t, 'arm64'), '--tag', 'base:1'], {store})).code, 0);
  const dir = await tempDir(t);
  await fs.writeFile(path.join(dir, 'f'), 'f');
  t.is((await strata(['import', dir, '--tag', 'up:1', '--on', 'base:1'], {store})).code, 0);
  t.is((await strata(['create', 'base:1', '--name', 'c'], {store})).code, 0);
  t.is((await strata(['commit', 'c', '--tag', 'c:1'], {store})).code, 0);
  for (const ref of ['up:1', 'c:1'])
    t.deepEqual(JSON.parse((await strata(['image', 'inspect', ref, '--json'], {store})).stdout).platform, {architecture: 'arm64', os: 'linux'}, ref);
  // A directory alone is taken to be for the host it came from.
  t.is((await strata(['import', dir, '--tag', 'plain:1'], {store})).code, 0);
  t.is(JSON.parse((await strata(['image', 'inspect', 'plain:1', '--json'], {store})).stdout).platform.os, 'linux');
});
