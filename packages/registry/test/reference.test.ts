import test from 'ava';
import {familiarName, formatReference, normalizeTag, parseImageRef, parseReference} from '../src/index.js';

const parses = test.macro((t, input: string, want: object) => {
  t.deepEqual(parseReference(input), want);
});
test('a bare name is a Docker Hub library image', parses, 'alpine', {domain: 'docker.io', path: 'library/alpine'});
test('docker.io and index.docker.io are one registry', parses, 'index.docker.io/alpine:3', {domain: 'docker.io', path: 'library/alpine', tag: '3'});
test('an organisation on Docker Hub keeps its path', parses, 'org/app:v1', {domain: 'docker.io', path: 'org/app', tag: 'v1'});
test('a host with a port is a domain', parses, 'localhost:5000/team/app:1', {domain: 'localhost:5000', path: 'team/app', tag: '1'});
test('localhost alone is a domain', parses, 'localhost/app', {domain: 'localhost', path: 'app'});
test('a dotted host is a domain', parses, 'quay.io/org/app:v1', {domain: 'quay.io', path: 'org/app', tag: 'v1'});
test('an IPv6 host is a domain', parses, '[::1]:5000/app', {domain: '[::1]:5000', path: 'app'});
test('a digest and a tag together', parses, `reg.example:443/a/b:t@sha256:${'a'.repeat(64)}`, {domain: 'reg.example:443', path: 'a/b', tag: 't', digest: `sha256:${'a'.repeat(64)}`});

const refuses = test.macro((t, input: string) => {
  t.throws(() => parseReference(input), {code: 'BAD_REFERENCE'});
});
test('an uppercase repository is refused', refuses, 'Alpine');
test('a tag starting with a dot is refused', refuses, 'alpine:.x');
test('an empty name is refused', refuses, ':tag');
test('a short digest is refused', refuses, 'alpine@sha256:abc');
test('a double slash is refused', refuses, 'a//b');
test('a name over 255 characters is refused', refuses, `x/${'a'.repeat(260)}`);

test('familiar names drop docker.io and library/ only for Docker Hub', t => {
  t.is(familiarName(parseReference('docker.io/library/alpine')), 'alpine');
  t.is(familiarName(parseReference('docker.io/org/app')), 'org/app');
  t.is(familiarName(parseReference('localhost:5000/library/app')), 'localhost:5000/library/app');
  t.is(formatReference(parseReference('alpine:3')), 'docker.io/library/alpine:3');
});

test('normalizeTag gives one key for every spelling of a tag', t => {
  for (const s of ['alpine', 'alpine:latest', 'docker.io/alpine', 'docker.io/library/alpine:latest', 'index.docker.io/library/alpine'])
    t.is(normalizeTag(s), 'alpine:latest', s);
  t.is(normalizeTag('localhost:5000/team/app:1'), 'localhost:5000/team/app:1');
  t.throws(() => normalizeTag(`alpine@sha256:${'0'.repeat(64)}`), {code: 'BAD_REFERENCE'});
});

test('image references take skopeo transports', t => {
  t.deepEqual(parseImageRef('docker://localhost:5000/a:1', 'docker'), {transport: 'docker', ref: {domain: 'localhost:5000', path: 'a', tag: '1'}});
  t.deepEqual(parseImageRef('localhost:5000/a:1', 'docker'), {transport: 'docker', ref: {domain: 'localhost:5000', path: 'a', tag: '1'}});
  t.deepEqual(parseImageRef('oci:./layout:app:1', 'path'), {transport: 'oci', path: './layout', ref: 'app:1'});
  t.deepEqual(parseImageRef('oci:/tmp/l', 'path'), {transport: 'oci', path: '/tmp/l'});
  t.deepEqual(parseImageRef('oci-archive:img.tar:latest', 'path'), {transport: 'oci-archive', path: 'img.tar', ref: 'latest'});
  t.deepEqual(parseImageRef('docker-archive:img.tar', 'path'), {transport: 'docker-archive', path: 'img.tar'});
  t.is(parseImageRef('./some/dir', 'path'), undefined);
  t.throws(() => parseImageRef('containers-storage:alpine', 'docker'), {code: 'BAD_REFERENCE'});
  t.throws(() => parseImageRef('oci:', 'path'), {code: 'BAD_REFERENCE'});
});
