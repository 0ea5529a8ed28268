import {Transform, type TransformCallback} from 'node:stream';

const BLOCK = 512;

/**
 * Passes a tar stream up to its end-of-archive marker (the first all-zero header block)
 * and drops whatever follows, as GNU tar reads an archive: it stops at that block, so
 * padding or other bytes after it are not an error (tar-stream would try to parse them
 * as headers). The framing follows tar-stream's own, so the block cut here is one it would
 * read as a header: a member's data is `size` bytes rounded up to whole blocks (none for a
 * directory), a pax `size` record overrides the next header's size (a global record only
 * together with a local one, as tar-stream applies them), and pax, GNU long-name and
 * global headers carry their records as data. Everything of the input is still read, so
 * hashes over the whole stream see every byte.
 */
export function untilEndOfArchive(): Transform {
  let held: Buffer = Buffer.alloc(0);
  let skip = 0; // data bytes of the current member still to pass, padding included
  let ended = false;
  let collect: {type: number; left: number; chunks: Buffer[]} | undefined; // a pax header's records
  let globalPax: Record<string, string> | undefined;
  let nextSize: number | undefined;

  const header = (block: Buffer): void => {
    if (block.every(b => b === 0)) {
      ended = true;
      return;
    }
    const type = block[156]!;
    let size = headerSize(block);
    const isLong = type === 0x78 /* x */ || type === 0x67 /* g */ || type === 0x4c /* L */ || type === 0x4b /* K */;
    if (!isLong && nextSize !== undefined) size = nextSize;
    if (!isLong) nextSize = undefined;
    if (type === 0x78 || type === 0x67) collect = {type, left: size, chunks: []};
    skip = isLong || type !== 0x35 /* 5: directory */ ? roundUp(size) : 0;
    if (collect && size === 0) finishPax();
  };
  const finishPax = (): void => {
    const records = parsePax(Buffer.concat(collect!.chunks));
    if (collect!.type === 0x67) globalPax = records;
    else {
      const merged = {...globalPax, ...records};
      if (merged.size !== undefined) nextSize = parseInt(merged.size, 10) || 0;
    }
    collect = undefined;
  };

  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      if (ended) return done();
      held = held.length ? Buffer.concat([held, chunk]) : chunk;
      const out: Buffer[] = [];
      let at = 0;
      while (!ended) {
        if (skip > 0) {
          const n = Math.min(skip, held.length - at);
          if (n === 0) break;
          const data = held.subarray(at, at + n);
          if (collect) {
            const take = data.subarray(0, Math.min(collect.left, data.length));
            collect.chunks.push(Buffer.from(take));
            collect.left -= take.length;
            if (collect.left === 0) finishPax();
          }
          out.push(data);
          at += n;
          skip -= n;
          continue;
        }
        if (held.length - at < BLOCK) break;
        const block = held.subarray(at, at + BLOCK);
        header(block);
        out.push(block);
        at += BLOCK;
      }
      held = ended ? Buffer.alloc(0) : held.subarray(at);
      done(null, out.length ? Buffer.concat(out) : undefined);
    },
    flush(done: TransformCallback) {
      done(null, held.length && !ended ? held : undefined); // a truncated tail: tar-stream reports it
    },
  });
}

function roundUp(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

/** The size field (octal, or base-256 when its first byte has the high bit), as tar-stream reads it. */
function headerSize(block: Buffer): number {
  const field = block.subarray(124, 136);
  if (field[0]! & 0x80) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return field[0] === 0x80 ? n : 0;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8) || 0;
}

/** `<len> <key>=<value>\n` records. */
function parsePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  while (buf.length > 0) {
    const space = buf.indexOf(0x20);
    const len = parseInt(buf.subarray(0, space).toString('latin1'), 10);
    if (!len || space < 0) break;
    const record = buf.subarray(space + 1, len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq < 0) break;
    out[record.slice(0, eq)] = record.slice(eq + 1);
    buf = buf.subarray(len);
  }
  return out;
}
