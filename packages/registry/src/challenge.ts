/** One challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1). */
export interface Challenge {
  /** Lowercased: `bearer`, `basic`. */
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses a `WWW-Authenticate` value: `Bearer realm="…",service="…",scope="a b"`.
 * Parameter names are lowercased and quoted values unescaped; a token not followed by
 * `=` starts the next challenge.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: {scheme: string; params: Record<string, string>}[] = [];
  let i = 0;
  const skip = (chars: RegExp) => { while (i < header.length && chars.test(header[i]!)) i++; };
  while (i < header.length) {
    skip(/[\s,]/);
    const start = i;
    skip(/[^\s,=]/);
    const token = header.slice(start, i);
    if (token === '') break;
    skip(/\s/);
    if (header[i] !== '=') { // a scheme
      out.push({scheme: token.toLowerCase(), params: {}});
      continue;
    }
    i++;
    skip(/\s/);
    let value = '';
    if (header[i] === '"') {
      for (i++; i < header.length && header[i] !== '"'; i++) value += header[i] === '\\' ? header[++i] ?? '' : header[i];
      i++;
    } else {
      const v = i;
      skip(/[^\s,]/);
      value = header.slice(v, i);
    }
    const current = out[out.length - 1];
    if (current) current.params[token.toLowerCase()] = value;
  }
  return out;
}
