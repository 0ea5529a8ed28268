import type {Digest} from '../objects/digest.js';
import {StoreError} from '../errors.js';
import type {Store} from '../objects/Store.js';
import {PREFIX, type PinKind, pinKey, pinTarget} from '../index/keys.js';
import {decodeRecord, encodeRecord} from '../index/values.js';

/** A pin: an image or a layer kept by gc though no tag or container names it. */
export interface Pin {
  readonly kind: PinKind;
  readonly id: Digest;
  readonly created: string;
}

/** A pin's index value (`pin:…`, index/keys.ts). */
interface PinRecord {
  readonly created: string;
}

/**
 * Finds what a pin reference names: an image (tag, id or id prefix) unless `kind` says
 * layer, then a layer (id or id prefix). Throws UNKNOWN_IMAGE, UNKNOWN_LAYER, AMBIGUOUS_ID.
 */
async function resolvePinTarget(store: Store, ref: string, kind?: PinKind): Promise<{kind: PinKind; id: Digest}> {
  if (kind !== 'layer') {
    try {
      return {kind: 'image', id: (await store.resolveImage(ref)).id};
    } catch (err) {
      if (kind === 'image' || (err as StoreError).code !== 'UNKNOWN_IMAGE') throw err;
    }
  }
  try {
    return {kind: 'layer', id: (await store.resolveLayer(ref)).id};
  } catch (err) {
    if (kind === undefined && (err as StoreError).code === 'UNKNOWN_LAYER')
      throw new StoreError('UNKNOWN_IMAGE', `there is no image or layer "${ref}"`);
    throw err;
  }
}

/** Pins an image or a layer (a tag pins the image it names now). Idempotent; returns the pin. */
export async function addPin(store: Store, ref: string, kind?: PinKind): Promise<Pin> {
  const target = await resolvePinTarget(store, ref, kind);
  const existing = await store.index.get(pinKey(target.kind, target.id));
  if (existing) return {...target, ...decodeRecord<PinRecord>(existing)};
  const pin: Pin = {...target, created: new Date().toISOString()};
  await store.index.commit([{type: 'put', key: pinKey(pin.kind, pin.id), value: encodeRecord({created: pin.created} satisfies PinRecord)}]);
  return pin;
}

/**
 * Removes the pin of an image or a layer: a tag that exists names its image's pin; else
 * an id or id prefix is matched against the pins themselves (a pinned object may be gone
 * already, as a removed image), which must match one. Throws NOT_PINNED, AMBIGUOUS_ID.
 */
export async function removePin(store: Store, ref: string, kind?: PinKind): Promise<Pin> {
  const hex = ref.startsWith('b3:') ? ref.slice(3) : ref;
  if (!(kind !== 'layer' && (await store.tagged(ref))) && /^[0-9a-f]{4,64}$/.test(hex)) {
    const matches = (await listPins(store)).filter(p => (kind === undefined || kind === p.kind) && p.id.slice(3).startsWith(hex));
    if (matches.length > 1) throw new StoreError('AMBIGUOUS_ID', `"${ref}" matches more than one pin (${matches.map(p => `${p.kind} ${p.id.slice(0, 15)}`).join(', ')}); give more digits`);
    if (matches[0]) {
      await store.index.commit([{type: 'del', key: pinKey(matches[0].kind, matches[0].id)}]);
      return matches[0];
    }
  }
  const target = await resolvePinTarget(store, ref, kind);
  const key = pinKey(target.kind, target.id);
  const existing = await store.index.get(key);
  if (!existing) throw new StoreError('NOT_PINNED', `${target.kind} ${target.id} is not pinned`);
  await store.index.commit([{type: 'del', key}]);
  return {...target, ...decodeRecord<PinRecord>(existing)};
}

/** Every pin, images first, in id order. */
export async function listPins(store: Store): Promise<Pin[]> {
  return (await store.index.scan(PREFIX.pin)).map(([k, v]) => ({...pinTarget(k), ...decodeRecord<PinRecord>(v)}));
}
