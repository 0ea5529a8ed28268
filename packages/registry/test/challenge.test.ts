import test from 'ava';
import {parseChallenges} from '../src/challenge.js';

test('a Bearer challenge gives realm, service and scope', t => {
  t.deepEqual(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"'), [
    {scheme: 'bearer', params: {realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push'}},
  ]);
});

test('several challenges, unquoted values and escapes', t => {
  t.deepEqual(parseChallenges('Basic realm="a \\"b\\"", Bearer realm=x,error=invalid_token'), [
    {scheme: 'basic', params: {realm: 'a "b"'}},
    {scheme: 'bearer', params: {realm: 'x', error: 'invalid_token'}},
  ]);
  t.deepEqual(parseChallenges(''), []);
});
