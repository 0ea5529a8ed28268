import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {type Digest, Store, exportDockerArchive, exportOciLayout, importDockerArchive, importDirectory, importOciLayout, hostPlatform} from '@strata/store';
import {commitContainer, createContainer, openContainerView, parseViewPath} from '../src/index.js';

async function tempStore(t: ExecutionContext): Promise<Store> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-commit-export-'));
  t.teardown(() => fs.rm(dir, {recursive: true, force: true}));
  const store = await Store.open(path.join(dir, 'store'), {create: true});
  t.teardown(() => store.close());
  return store;
}

async function baseDir(store: Store): Promise<string> {
  const dir = path.join(path.dirname(store.dir), 'base');
  for (const [name, content] of [['etc/os', 'strata'], ['etc/motd', 'hi'], ['app/bin/run', 'run'], ['app/lib/x', 'x'], ['data/old/a', 'a']] as const) {
    await fs.mkdir(path.dirname(path.join(dir, name)), {recursive: true});
    await fs.writeFile(path.join(dir, name), content);
  }
  return dir;
}

for (const format of ['oci', 'docker'] as const) {
  test(`a committed container with deletions, exported as ${format} and imported into another store, keeps its layer ids`, async t => {
    const store = await tempStore(t);
    const base = await importDirectory(store, await baseDir(store));
    // The platform an export names for an image that records none is the host's: name it, so the round trip is exact.
    const image = await store.putImage({layers: [base.layer.id], config: {env: ['A=1']}, platform: hostPlatform()});
    const c = await createContainer(store, {image});
    const view = await openContainerView(store, c);
    const p = (s: string) => parseViewPath(s);
    await view.remove(p('/etc/motd'));                       // a whiteout
    await view.remove(p('/data/old'), {recursive: true});    // a deleted directory...
    await view.mkdir(p('/data/old'));                        // ...recreated: opaque
    await view.writeFile(p('/data/old/new'), Buffer.from('new'));
    await view.rename(p('/app/lib'), p('/app/lib2'));        // a renamed lower directory
    await view.writeFile(p('/etc/os'), Buffer.from('changed'));
    const committed = await commitContainer(store, c);
    const top = await store.getTree(committed.layer.id);
    t.true(top.entries.length > 0);
    const out = path.join(path.dirname(store.dir), 'export');
    const img = (await store.getImage(committed.image))!;
    await (format === 'oci' ? exportOciLayout : exportDockerArchive)(store, img, out);

    const other = await tempStore(t);
    const [imported] = await (format === 'oci' ? importOciLayout : importDockerArchive)(other, out, {tag: 'again:1'});
    t.deepEqual(imported!.layers.map(l => l.id), [base.layer.id, committed.layer.id] as Digest[]);
    t.is(imported!.id, committed.image, 'the same image: same layers and config');
  });
}
