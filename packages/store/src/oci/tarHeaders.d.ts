// tar-stream's header encoder (headers.js, tar-stream 3.1.7), which its types do not declare.
declare module 'tar-stream/headers.js' {
  export function encode(header: object): Buffer | null;
}
