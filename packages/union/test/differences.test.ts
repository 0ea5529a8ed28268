import test from 'ava';
import {DIR, type LayerSpec, containerFrom, strataSubject} from './_helpers.js';
import {kernelSubject, overlayLowers} from './_overlay.js';

// Where strata means to differ from kernel overlayfs (docs/design.md, "Proof of the union
// view"): each difference is shown on both sides, so a change on either side is noticed.

const LAYERS: readonly LayerSpec[] = [{'/d/x': 'x', '/d/e/y': 'y', '/f': 'f', '/empty': DIR}];

test('a lower directory renames in strata, where overlayfs without redirect_dir refuses with EXDEV', async t => {
  const kernel = await kernelSubject(t, overlayLowers(t, LAYERS));
  const strata = strataSubject((await containerFrom(t, LAYERS)).view);
  t.deepEqual(await kernel.renameNoFallback('/d', '/moved'), {err: 'EXDEV'});
  t.deepEqual(await strata.run(['rename', '/d', '/moved']), {ok: null});
  t.deepEqual(await strata.run(['readdir', '/moved/e']), {ok: ['y']});
  // Tools fall back to copy-and-delete, after which the two agree.
  t.deepEqual(await kernel.run(['rename', '/d', '/moved']), {ok: null});
  t.is(kernel.exdevFallbacks, 1);
  t.deepEqual(await strata.tree(), await kernel.tree());
});

test('names starting with .wh. are refused in strata and are plain files on overlayfs', async t => {
  const kernel = await kernelSubject(t, overlayLowers(t, LAYERS));
  const strata = strataSubject((await containerFrom(t, LAYERS)).view);
  for (const step of [['write', '/.wh.f', ''], ['mkdir', '/d/.wh..wh..opq'], ['symlink', 'f', '/.wh.x']] as const) {
    t.deepEqual(await strata.run(step), {err: 'EINVAL'}, JSON.stringify(step));
    t.deepEqual(await kernel.run(step), {ok: null}, JSON.stringify(step));
  }
  t.deepEqual(await strata.run(['read', '/f']), {ok: 'f'});
  t.deepEqual(await strata.run(['readdir', '/d']), {ok: ['e', 'x']});
});
