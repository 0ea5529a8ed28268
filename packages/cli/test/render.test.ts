import test from 'ava';
import {escapeName, formatBytes, formatCount, formatFields, formatMode, formatTable, outputBytes, plural, shortDigest} from '../src/render.js';

const bytes = test.macro({
  exec(t, n: number, want: string) { t.is(formatBytes(n), want); },
  title: (_title, n, want) => `formatBytes(${n}) is "${want}"`,
});
test(bytes, 0, '0 B');
test(bytes, 1023, '1023 B');
test(bytes, 1024, '1.0 KiB');
test(bytes, 1536, '1.5 KiB');
test(bytes, 12.3 * 1024 * 1024, '12.3 MiB');
test(bytes, 1024 * 1024 - 1, '1.0 MiB');
test(bytes, 5 * 1024 ** 4, '5.0 TiB');

test('formatBytes refuses what is not a size', t => {
  t.throws(() => formatBytes(-1), {instanceOf: TypeError});
  t.throws(() => formatBytes(Number.NaN), {instanceOf: TypeError});
});

test('formatCount and plural group thousands', t => {
  t.is(formatCount(1234567), '1,234,567');
  // By hand for whole numbers; the same text as en-US's toLocaleString, which stays for the rest.
  for (const n of [0, 7, 999, 1000, 12345, 123456, -1234, -123456789, 2 ** 53 - 1, 1234.5678])
    t.is(formatCount(n), n.toLocaleString('en-US'), String(n));
  t.is(plural(1, 'entry', 'entries'), '1 entry');
  t.is(plural(1234, 'entry', 'entries'), '1,234 entries');
});

test('shortDigest is the first 12 hex digits, with or without b3:', t => {
  const hex = '9f1c2a3b4c5d'.padEnd(64, '0');
  t.is(shortDigest(`b3:${hex}`), '9f1c2a3b4c5d');
  t.is(shortDigest(hex), '9f1c2a3b4c5d');
});

test('formatTable pads columns, right-aligns where asked and trims line ends', t => {
  t.is(formatTable([['NAME', 'SIZE', 'NOTE'], ['a', '1 B', ''], ['longer', '12.3 MiB', 'x']], ['left', 'right']),
    'NAME        SIZE  NOTE\n'
    + 'a            1 B\n'
    + 'longer  12.3 MiB  x\n');
});

test('formatFields aligns values', t => {
  t.is(formatFields([['id', 'x'], ['entries', '3']]), 'id       x\nentries  3\n');
});

test('formatMode shows kind and permission bits as ls -l does', t => {
  t.is(formatMode('dir', 0o755), 'drwxr-xr-x');
  t.is(formatMode('file', 0o644), '-rw-r--r--');
  t.is(formatMode('file', 0o4755), '-rwsr-xr-x');
  t.is(formatMode('dir', 0o1777), 'drwxrwxrwt');
  t.is(formatMode('file', 0o2644), '-rw-r-Sr--');
  t.is(formatMode('symlink', 0o777), 'lrwxrwxrwx');
  t.is(formatMode('whiteout', 0), 'w---------');
});

test('a name with bytes that are not UTF-8 is escaped on a terminal and written as its bytes to a pipe', t => {
  t.is(escapeName('f\udcff \u{1F4A9}'), 'f\\377 \u{1F4A9}', 'a byte as octal; a character outside the BMP as itself');
  t.deepEqual(outputBytes('f\udcff\n'), Buffer.from([0x66, 0xff, 0x0a]));
  t.is(outputBytes('plain \u{1F4A9}\n'), 'plain \u{1F4A9}\n');
});
