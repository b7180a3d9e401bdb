/** Byte helpers shared by every layer. */
import { bytesToHex, hexToBytes as nobleHexToBytes, concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { DrillError } from './errors.ts';

export { bytesToHex, concatBytes, utf8ToBytes };

/** Parse hex (optionally 0x-prefixed); throws DrillError BAD_HEX naming `field`. */
export function hexToBytes(hex: string, field = 'hex'): Uint8Array {
  const h = hex.startsWith('0x') ? hex.slice(2) : hex;
  if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) {
    throw new DrillError('BAD_HEX', `${field}: expected an even-length hex string, received ${JSON.stringify(hex.slice(0, 20))}`, { field });
  }
  return nobleHexToBytes(h);
}

export function sha256Hex(data: Uint8Array | string): string {
  return bytesToHex(sha256(typeof data === 'string' ? utf8ToBytes(data) : data));
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
