import test from 'ava';
import {StoreError, parseTag} from '../src/index.js';
import {openTempStore} from './_helpers.js';

const parses = test.macro({
  exec(t, input: string, want: string) { t.is<string, string>(parseTag(input), want); },
  title: (_, input) => `parseTag accepts ${JSON.stringify(input)}`,
});
test(parses, 'app:1.0', 'app:1.0');
test(parses, 'app', 'app:latest');
test(parses, 'library/alpine:3.20', 'alpine:3.20');
test(parses, 'docker.io/library/alpine:3.20', 'alpine:3.20');
test(parses, 'index.docker.io/org/app', 'org/app:latest');
test(parses, 'x/a.b_c--d/e__f:V_1-x.y', 'x/a.b_c--d/e__f:V_1-x.y');
test(parses, 'localhost:5000/team/app:1', 'localhost:5000/team/app:1');
test(parses, 'quay.io/org/app:v1', 'quay.io/org/app:v1');
test(parses, 'app:1/2', 'app:1/2:latest'); // registry app:1, repository 2, as docker reads it
test(parses, `app:${'t'.repeat(128)}`, `app:${'t'.repeat(128)}`);

const refuses = test.macro({
  exec(t, input: string) { t.is(t.throws(() => parseTag(input), {instanceOf: StoreError})?.code, 'BAD_REFERENCE'); },
  title: (_, input) => `parseTag refuses ${JSON.stringify(input)}`,
});
for (const bad of ['', ':', 'app:', ':tag', 'App:1', 'app::1', 'a b:1', 'app:-x', 'app:.x', `app:${'t'.repeat(129)}`, 'app/:1', '/app:1', 'a..b:1', 'a.b_c/x:1', `alpine@sha256:${'0'.repeat(64)}`, '-app:1', 'app:1:2', 'app:tag with space', 'é:1'])
  test(refuses, bad);

test('a bad tag leaves the store as it was', async t => {
  const store = await openTempStore(t);
  t.throws(() => parseTag('Bad:Name:'), {code: 'BAD_REFERENCE'});
  t.deepEqual([await store.listTags(), await store.listImages()], [[], []]);
});
