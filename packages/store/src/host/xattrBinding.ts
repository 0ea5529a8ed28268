import {createRequire} from 'node:module';

type XattrBinding = typeof import('@napi-rs/xattr');
let binding: XattrBinding | undefined;

/**
 * @napi-rs/xattr, loaded on first use rather than when the store's modules load: most
 * commands never read or write an xattr, and loading the addon costs ~5 ms of every
 * command's start (docs/benchmarks.md, "Fixed cost of a command").
 */
export function xattrBinding(): XattrBinding {
  return (binding ??= createRequire(import.meta.url)('@napi-rs/xattr') as XattrBinding);
}
