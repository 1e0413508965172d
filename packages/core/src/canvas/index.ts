/**
 * The canvas: signatures and the primitives built from them. Importing this
 * module registers chain, group and chord with `Signature.fromWire` and `pipe`.
 */
export { Signature, type SignatureSender, type CanvasResult, type FreezeOptions } from './signature.js';
export { Group, group, chordSizeOf, type ResultOf } from './group.js';
export { Chain, chain, type LastResult } from './chain.js';
export { Chord, chord } from './chord.js';
export { GroupResult, resultFromTuple } from './group-result.js';
export { Chunks, xmap, xstarmap } from './map.js';
