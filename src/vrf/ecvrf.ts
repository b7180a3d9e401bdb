/**
 * RFC 9381 ECVRF on edwards25519 with SHA-512, both suites:
 *   - ECVRF-EDWARDS25519-SHA512-TAI  (suite_string 0x03): try-and-increment hash to curve;
 *   - ECVRF-EDWARDS25519-SHA512-ELL2 (suite_string 0x04): RFC 9380 Elligator 2,
 *     edwards25519_XMD:SHA-512_ELL2_NU_, DST "ECVRF_edwards25519_XMD:SHA-512_ELL2_NU_" ‖ 0x04.
 *
 * Built on @noble/curves (strict RFC 8032 point decoding: y < p, and x = 0 with the sign bit set
 * is rejected; RFC 9380 hash to curve; the precomputed base-point table for verify) and on the
 * lean point arithmetic of ./edwards.ts for the scalar multiplications. The secret key is a 32-byte RFC 8032 seed, so an Ed25519 identity
 * key (e.g. libp2p's) can serve as a VRF key and the VRF public key equals the Ed25519 one.
 *
 *   pi   = point_to_string(Gamma) ‖ c (16 bytes LE) ‖ s (32 bytes LE)            (80 bytes)
 *   beta = SHA-512(suite ‖ 0x03 ‖ point_to_string(8·Gamma) ‖ 0x00)                 (64 bytes)
 *
 * Speed (see bench/vrf.bench.ts and docs/VRF.md): the hot loops run on the lean extended-
 * coordinate arithmetic of ./edwards.ts. Prove computes the two secret multiples x·H and k·H
 * with one shared fixed-comb table for H (constant sequence of point operations, every table
 * entry scanned), per-key data (x, nonce prefix, pk) is cached per secret-key buffer, and point
 * encodings are batched so that one field inversion serves several points. Verify works on
 * public data only, so it uses variable-time arithmetic: s·B from noble's precomputed base
 * table, the 128-bit c·Y (from a per-producer comb table once a key has proved twice), and
 * s·H − c·Gamma as one Straus–Shamir double-scalar product.
 *
 * Error policy: invalid untrusted data (bad lengths, undecodable or non-canonical points,
 * s ≥ q, small-order keys) makes `vrfVerify` answer `{ valid: false }` and `vrfValidateKey`
 * answer false; caller misuse (not a Uint8Array, unknown suite, wrong sk length) throws.
 */
import { ed25519, ed25519_hasher } from '@noble/curves/ed25519.js';
import type { EdwardsPoint } from '@noble/curves/abstract/edwards.js';
import { expand_message_xmd, hash_to_field } from '@noble/curves/abstract/hash-to-curve.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { concatBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { vrfError, VrfErrorCode } from './errors.ts';
import type { Cached, Ext } from './edwards.ts';
import { add, combMulPublic, combMulSecret, combTable, fromNoble, mulAddPublic, negExt, toCached } from './edwards.ts';

/** The two RFC 9381 edwards25519 suites. */
export type Suite = 'tai' | 'ell2';

/** A VRF key pair: sk is the 32-byte RFC 8032 seed, pk the 32-byte encoded point x·B. */
export interface VrfKeyPair {
  sk: Uint8Array;
  pk: Uint8Array;
}

/** Result of `vrfVerify`: beta (64 bytes) only when the proof is valid. */
export type VrfVerifyResult = { valid: true; beta: Uint8Array } | { valid: false; beta: null };

/** RFC 9381 suite names and suite_string bytes. */
export const SUITES = {
  tai: { name: 'ECVRF-EDWARDS25519-SHA512-TAI', suiteString: 0x03 },
  ell2: { name: 'ECVRF-EDWARDS25519-SHA512-ELL2', suiteString: 0x04 },
} as const;

/** Lengths in bytes (RFC 9381 §5.5: ptLen = 32, cLen = 16, qLen = 32, hLen = 64). */
export const VRF_SK_BYTES = 32;
export const VRF_PK_BYTES = 32;
export const VRF_PROOF_BYTES = 80;
export const VRF_OUTPUT_BYTES = 64;
const PT_LEN = 32;
const C_LEN = 16;

const Point = ed25519.Point;
const Fp = Point.Fp;
const Q = Point.Fn.ORDER; // prime order q of the base point
const B = Point.BASE;

// Domain-separator bytes of RFC 9381 §5.4.
const ENCODE_FRONT = 0x01;
const CHALLENGE_FRONT = 0x02;
const PROOF_TO_HASH_FRONT = 0x03;
const BACK = 0x00;
/** RFC 9381 §5.5: ELL2's h2c_suite_ID_string; DST = "ECVRF_" ‖ it ‖ suite_string. */
const ELL2_DST = concatBytes(utf8ToBytes('ECVRF_edwards25519_XMD:SHA-512_ELL2_NU_'), Uint8Array.of(SUITES.ell2.suiteString));
/** TAI tries ctr = 0..255 (a one-byte counter); each try succeeds with probability ≈ 1/2. */
const TAI_MAX_CTR = 255;

// ---------------------------------------------------------------------------------------------
// argument checks (caller misuse → throw)

function suiteByte(suite: Suite): number {
  if (suite === 'tai') return SUITES.tai.suiteString;
  if (suite === 'ell2') return SUITES.ell2.suiteString;
  throw vrfError(VrfErrorCode.BAD_SUITE, 'suite', `expected 'tai' or 'ell2', received ${JSON.stringify(String(suite))}`);
}

function assertBytes(v: unknown, field: string, len?: number): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) {
    throw vrfError(VrfErrorCode.BAD_ARGUMENT, field, `expected a Uint8Array, received ${v === null ? 'null' : typeof v}`);
  }
  if (len !== undefined && v.length !== len) {
    throw vrfError(VrfErrorCode.BAD_ARGUMENT, field, `expected ${len} bytes, received ${v.length} bytes`);
  }
}

// ---------------------------------------------------------------------------------------------
// encodings

/** RFC 8032 encodings of several points with one field inversion (Montgomery's trick). */
function encodePoints(points: Array<{ X: bigint; Y: bigint; Z: bigint }>): Uint8Array[] {
  const inv = Fp.invertBatch(points.map((p) => p.Z));
  return points.map((p, i) => {
    const x = Fp.mul(p.X, inv[i]!);
    const y = Fp.mul(p.Y, inv[i]!);
    const out = numberToBytesLE(y, PT_LEN);
    if (x & 1n) out[PT_LEN - 1]! |= 0x80;
    return out;
  });
}

/** Strict RFC 8032 decoding; null when the bytes are not a canonical encoding of a curve point. */
function decodePoint(bytes: Uint8Array): EdwardsPoint | null {
  if (bytes.length !== PT_LEN) return null;
  try {
    return Point.fromBytes(bytes, false);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// per-key data

interface KeyData {
  sk: Uint8Array; // private copy, to detect a caller mutating its buffer
  x: bigint; // clamped scalar, unreduced (RFC 8032)
  xq: bigint; // x mod q
  prefix: Uint8Array; // second half of SHA-512(sk): the nonce key
  pk: Uint8Array;
}

// Keyed by the caller's sk buffer: a worker proving every slot with one key derives it once.
// A WeakMap keeps nothing alive beyond the caller's own buffer.
const keyCache = new WeakMap<Uint8Array, KeyData>();

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

function keyData(sk: Uint8Array): KeyData {
  const hit = keyCache.get(sk);
  if (hit && sameBytes(hit.sk, sk)) return hit;
  const h = sha512(sk);
  const head = h.slice(0, 32);
  head[0]! &= 248; // RFC 8032 §5.1.5 clamping
  head[31]! &= 127;
  head[31]! |= 64;
  const x = bytesToNumberLE(head);
  const xq = x % Q;
  const kd: KeyData = { sk: sk.slice(), x, xq, prefix: h.slice(32, 64), pk: encodePoints([mulBaseSecret(xq)])[0]! };
  keyCache.set(sk, kd);
  return kd;
}

// ---------------------------------------------------------------------------------------------
// hash to curve

/** Intermediate values of one evaluation, for the test-vector harness. */
export interface EcvrfTrace {
  x?: bigint;
  ctr?: number;
  H?: Uint8Array;
  kString?: Uint8Array;
  k?: bigint;
  U?: Uint8Array;
  V?: Uint8Array;
  uniformBytes?: Uint8Array;
  u?: bigint;
  gx1?: bigint;
  gx1IsSquare?: boolean;
}

/** RFC 9381 §5.4.1.1 try-and-increment; null if all 256 counters fail (probability 2^-256). */
function encodeTai(salt: Uint8Array, alpha: Uint8Array, trace?: EcvrfTrace): EdwardsPoint | null {
  const buf = new Uint8Array(2 + salt.length + alpha.length + 2);
  buf[0] = SUITES.tai.suiteString;
  buf[1] = ENCODE_FRONT;
  buf.set(salt, 2);
  buf.set(alpha, 2 + salt.length);
  const ctrAt = buf.length - 2;
  buf[buf.length - 1] = BACK;
  for (let ctr = 0; ctr <= TAI_MAX_CTR; ctr++) {
    buf[ctrAt] = ctr;
    const candidate = decodePoint(sha512(buf).subarray(0, PT_LEN));
    if (candidate) {
      if (trace) trace.ctr = ctr;
      return candidate.clearCofactor();
    }
  }
  return null;
}

// Curve25519 Montgomery A, for the ELL2 trace values only.
const MONT_A = 486662n;

/** RFC 9381 §5.4.1.2: RFC 9380 encode_to_curve with ECVRF's DST over salt ‖ alpha. */
function encodeEll2(salt: Uint8Array, alpha: Uint8Array, trace?: EcvrfTrace): EdwardsPoint {
  const msg = concatBytes(salt, alpha);
  if (trace) {
    // Recomputed here only to expose RFC 9381's intermediates; H below comes from noble.
    trace.uniformBytes = expand_message_xmd(msg, ELL2_DST, 48, sha512);
    const u = hash_to_field(msg, 1, { DST: ELL2_DST, p: Fp.ORDER, m: 1, k: 128, expand: 'xmd', hash: sha512 })[0]![0]!;
    trace.u = u;
    // RFC 9380 §6.7.1 with Z = 2: x1 = −A / (1 + 2u²) (or −A when the denominator is 0).
    const den = Fp.add(Fp.ONE, Fp.mul(2n, Fp.sqr(u)));
    const x1 = Fp.is0(den) ? Fp.neg(MONT_A) : Fp.neg(Fp.div(MONT_A, den));
    const gx1 = Fp.add(Fp.add(Fp.mul(Fp.sqr(x1), x1), Fp.mul(MONT_A, Fp.sqr(x1))), x1);
    trace.gx1 = gx1;
    trace.gx1IsSquare = Fp.is0(gx1) || Fp.eql(Fp.pow(gx1, (Fp.ORDER - 1n) / 2n), Fp.ONE);
  }
  return ed25519_hasher.encodeToCurve(msg, { DST: ELL2_DST }) as EdwardsPoint;
}

function encodeToCurve(suite: Suite, salt: Uint8Array, alpha: Uint8Array, trace?: EcvrfTrace): EdwardsPoint | null {
  return suite === 'tai' ? encodeTai(salt, alpha, trace) : encodeEll2(salt, alpha, trace);
}

// ---------------------------------------------------------------------------------------------
// the prover's comb for two secret multiples of H

/**
 * Comb shape: COMB_T teeth × COMB_D columns cover 255 ≥ bitlen(q) bits. Prove multiplies H by
 * two secret scalars (x and k); building one 2^5-entry comb table (204 doublings + 26 additions)
 * and running two 51-step combs costs ~306 doublings + ~128 additions, against ~504 + ~164 for
 * two separate windowed multiplications. t = 4 (320 dbl + 139 add) and t = 6 (301 + 143) are
 * both a little slower.
 */
const COMB_T = 5;
const COMB_D = 51;

/**
 * k·B in prove uses a fixed comb table for the base point, built once per process on first use
 * (~1 ms): 8 teeth × 32 columns = 256 bits, 256 cached points (~60 KiB). A multiplication is then
 * 32 doublings + 32 additions with a full table scan per column, about half the cost of noble's
 * base-point multiply. Unlike noble, it does not add random scalar blinding; like noble's
 * constant-time path, its sequence of point operations does not depend on k.
 */
const BASE_COMB_T = 8;
const BASE_COMB_D = 32;
let baseComb: Cached[] | null = null;

function mulBaseSecret(k: bigint): Ext {
  baseComb ??= combTable(fromNoble(B), BASE_COMB_T, BASE_COMB_D);
  return combMulSecret(baseComb, k, BASE_COMB_T, BASE_COMB_D);
}

// ---------------------------------------------------------------------------------------------
// challenge, nonce, proof decoding

function challenge(suiteStr: number, points: Uint8Array[]): Uint8Array {
  const buf = new Uint8Array(2 + PT_LEN * points.length + 1);
  buf[0] = suiteStr;
  buf[1] = CHALLENGE_FRONT;
  points.forEach((p, i) => buf.set(p, 2 + PT_LEN * i));
  buf[buf.length - 1] = BACK;
  return sha512(buf).subarray(0, C_LEN);
}

function hashPoint(suiteStr: number, gamma8: Uint8Array): Uint8Array {
  const buf = new Uint8Array(2 + PT_LEN + 1);
  buf[0] = suiteStr;
  buf[1] = PROOF_TO_HASH_FRONT;
  buf.set(gamma8, 2);
  buf[buf.length - 1] = BACK;
  return sha512(buf);
}

interface DecodedProof {
  gamma: EdwardsPoint;
  gammaBytes: Uint8Array;
  cBytes: Uint8Array;
  c: bigint;
  s: bigint;
}

/** RFC 9381 §5.4.4 decode_proof; null on a bad length, a bad Gamma or s ≥ q. */
function decodeProof(pi: Uint8Array): DecodedProof | null {
  if (pi.length !== VRF_PROOF_BYTES) return null;
  const gammaBytes = pi.subarray(0, PT_LEN);
  const gamma = decodePoint(gammaBytes);
  if (!gamma) return null;
  const cBytes = pi.subarray(PT_LEN, PT_LEN + C_LEN);
  const s = bytesToNumberLE(pi.subarray(PT_LEN + C_LEN));
  if (s >= Q) return null;
  return { gamma, gammaBytes, cBytes, c: bytesToNumberLE(cBytes), s };
}

// ---------------------------------------------------------------------------------------------
// public API

/**
 * A new VRF key pair. With `seed` (32 bytes) the pair is deterministic: sk = seed.
 * @throws DrillError VRF_BAD_ARGUMENT if seed is given and is not 32 bytes.
 */
export function vrfKeygen(seed?: Uint8Array): VrfKeyPair {
  if (seed !== undefined) assertBytes(seed, 'seed', VRF_SK_BYTES);
  const sk = seed === undefined ? randomBytes(VRF_SK_BYTES) : seed.slice();
  return { sk, pk: vrfPublicKey(sk) };
}

/**
 * The public key of a VRF secret key (identical to its Ed25519 public key).
 * @throws DrillError VRF_BAD_ARGUMENT if sk is not a 32-byte Uint8Array.
 */
export function vrfPublicKey(sk: Uint8Array): Uint8Array {
  assertBytes(sk, 'sk', VRF_SK_BYTES);
  return keyData(sk).pk.slice();
}

/** Shared body of vrfProve, exposing intermediates for the vector tests. */
function proveCore(suite: Suite, sk: Uint8Array, alpha: Uint8Array, trace?: EcvrfTrace): Uint8Array {
  const suiteStr = suiteByte(suite);
  assertBytes(sk, 'sk', VRF_SK_BYTES);
  assertBytes(alpha, 'alpha');
  const key = keyData(sk);
  if (trace) trace.x = key.x;
  // 1–2. H = encode_to_curve(salt = PK, alpha); h_string = point_to_string(H).
  const H = encodeToCurve(suite, key.pk, alpha, trace);
  if (!H) throw vrfError(VrfErrorCode.BAD_ARGUMENT, 'alpha', 'no try-and-increment counter gave a curve point (probability 2^-256)');
  const [hString] = encodePoints([H]);
  // 3. Gamma = x·H; 4. k = nonce_generation(SK, h_string) (RFC 9381 §5.4.2.2).
  const kString = sha512(concatBytes(key.prefix, hString!));
  const k = bytesToNumberLE(kString) % Q;
  if (k === 0n) throw vrfError(VrfErrorCode.BAD_ARGUMENT, 'sk', 'nonce is zero (probability 2^-252)');
  const table = combTable(fromNoble(H), COMB_T, COMB_D);
  const gamma = combMulSecret(table, key.xq, COMB_T, COMB_D);
  const V = combMulSecret(table, k, COMB_T, COMB_D);
  const U = mulBaseSecret(k);
  // 5. c = challenge_generation(Y, H, Gamma, k·B, k·H).
  const [gammaString, uString, vString] = encodePoints([gamma, U, V]);
  const cString = challenge(suiteStr, [key.pk, hString!, gammaString!, uString!, vString!]);
  const c = bytesToNumberLE(cString);
  // 6. s = (k + c·x) mod q.
  const s = (k + c * key.xq) % Q;
  if (trace) Object.assign(trace, { H: hString, kString, k, U: uString, V: vString });
  return concatBytes(gammaString!, cString, numberToBytesLE(s, 32));
}

/**
 * RFC 9381 ECVRF_prove: the 80-byte proof pi for alpha under sk. Deterministic.
 * @throws DrillError VRF_BAD_SUITE for an unknown suite; VRF_BAD_ARGUMENT if sk is not 32 bytes
 *   or alpha is not a Uint8Array.
 */
export function vrfProve(suite: Suite, sk: Uint8Array, alpha: Uint8Array): Uint8Array {
  return proveCore(suite, sk, alpha);
}

// ---------------------------------------------------------------------------------------------
// verifier-side cache of producers' public keys

/**
 * A node validates proofs from the same block producers again and again. For a key that has
 * produced a valid proof, keep its decoded point (skipping decoding and the small-order check)
 * and, from its second valid proof on, a comb table of −Y for the 128-bit challenge c, which
 * turns c·Y from ~128 doublings + ~26 additions into 22 + 22. Only keys whose proof verified
 * enter the cache, so junk keys cannot evict real producers. 256 keys × 64 points ≈ 4 MiB.
 */
const PK_CACHE_MAX = 256;
const PK_COMB_T = 6; // 2^6-entry table: building it costs about one cold c·Y (110 dbl + 57 add)
const PK_COMB_D = 22; // 6 × 22 = 132 ≥ 128 challenge bits

interface PkEntry {
  Y: EdwardsPoint;
  negComb: Cached[] | null;
}
const pkCache = new Map<string, PkEntry>();

function pkKey(pk: Uint8Array): string {
  return Buffer.from(pk.buffer, pk.byteOffset, pk.byteLength).toString('latin1');
}

/** c·(−Y) for the verifier, from the cached comb table when there is one. */
function negCY(entry: PkEntry | undefined, Y: EdwardsPoint, c: bigint): Ext {
  if (entry?.negComb) return combMulPublic(entry.negComb, c, PK_COMB_T, PK_COMB_D);
  return mulAddPublic([negExt(fromNoble(Y))], [c]);
}

function rememberKey(key: string, entry: PkEntry | undefined, Y: EdwardsPoint): void {
  if (entry) {
    if (!entry.negComb) entry.negComb = combTable(negExt(fromNoble(Y)), PK_COMB_T, PK_COMB_D);
    pkCache.delete(key); // move to the most recently used end
    pkCache.set(key, entry);
    return;
  }
  if (pkCache.size >= PK_CACHE_MAX) pkCache.delete(pkCache.keys().next().value!);
  pkCache.set(key, { Y, negComb: null });
}

/**
 * RFC 9381 ECVRF_verify with validate_key = TRUE. Answers `{ valid: false, beta: null }` for
 * any invalid untrusted input (wrong lengths, non-canonical or off-curve points, s ≥ q,
 * small-order pk, wrong proof), never throws for it.
 * @throws DrillError VRF_BAD_SUITE for an unknown suite; VRF_BAD_ARGUMENT if pk, alpha or pi
 *   is not a Uint8Array.
 */
export function vrfVerify(suite: Suite, pk: Uint8Array, alpha: Uint8Array, pi: Uint8Array): VrfVerifyResult {
  const suiteStr = suiteByte(suite);
  assertBytes(pk, 'pk');
  assertBytes(alpha, 'alpha');
  assertBytes(pi, 'pi');
  const invalid = { valid: false, beta: null } as const;
  if (pk.length !== VRF_PK_BYTES) return invalid;
  // 1–3. Y = string_to_point(PK); reject it if undecodable or of small order (ECVRF_validate_key).
  const key = pkKey(pk);
  const cached = pkCache.get(key);
  let Y: EdwardsPoint;
  if (cached) Y = cached.Y;
  else {
    const decoded = decodePoint(pk);
    if (!decoded || decoded.isSmallOrder()) return invalid;
    Y = decoded;
  }
  // 4–5. (Gamma, c, s) = decode_proof(pi).
  const D = decodeProof(pi);
  if (!D) return invalid;
  // 6. H = encode_to_curve(PK, alpha).
  const H = encodeToCurve(suite, pk, alpha);
  if (!H) return invalid;
  // 7–8. U = s·B − c·Y, V = s·H − c·Gamma (public inputs: variable time is fine).
  const U = add(negCY(cached, Y, D.c), toCached(fromNoble(B.multiplyUnsafe(D.s)))); // s·B from noble's base table
  const V = mulAddPublic([fromNoble(H), negExt(fromNoble(D.gamma))], [D.s, D.c]);
  const [hString, uString, vString, gamma8String] = encodePoints([H, U, V, D.gamma.clearCofactor()]);
  // 9–10. valid iff c = challenge_generation(Y, H, Gamma, U, V).
  const c2 = challenge(suiteStr, [pk, hString!, D.gammaBytes, uString!, vString!]);
  if (!sameBytes(c2, D.cBytes)) return invalid;
  rememberKey(key, cached, Y);
  return { valid: true, beta: hashPoint(suiteStr, gamma8String!) };
}

/**
 * RFC 9381 ECVRF_proof_to_hash: beta (64 bytes) from pi WITHOUT verifying it. Only use it on
 * a proof you produced or already verified.
 * @throws DrillError VRF_BAD_PROOF if pi does not decode (length, Gamma, s ≥ q);
 *   VRF_BAD_SUITE; VRF_BAD_ARGUMENT if pi is not a Uint8Array.
 */
export function vrfProofToHash(suite: Suite, pi: Uint8Array): Uint8Array {
  const suiteStr = suiteByte(suite);
  assertBytes(pi, 'pi');
  const D = decodeProof(pi);
  if (!D) throw vrfError(VrfErrorCode.BAD_PROOF, 'pi', `expected an ${VRF_PROOF_BYTES}-byte proof with a canonical Gamma and s < q, received ${pi.length} bytes that do not decode`);
  return hashPoint(suiteStr, encodePoints([D.gamma.clearCofactor()])[0]!);
}

/**
 * RFC 9381 ECVRF_validate_key: true iff pk is a canonical encoding of a curve point that is
 * not of small order (bad lengths answer false).
 * @throws DrillError VRF_BAD_ARGUMENT if pk is not a Uint8Array.
 */
export function vrfValidateKey(pk: Uint8Array): boolean {
  assertBytes(pk, 'pk');
  const Y = decodePoint(pk);
  return Y !== null && !Y.isSmallOrder();
}

/**
 * Test-only: vrfProve plus its RFC 9381 intermediate values (x, H, ctr or the ELL2 values,
 * k_string, k, U, V), so the vector harness can check every field of a vector.
 * @throws as vrfProve.
 */
export function ecvrfProveTrace(suite: Suite, sk: Uint8Array, alpha: Uint8Array): { pi: Uint8Array; trace: EcvrfTrace } {
  const trace: EcvrfTrace = {};
  const pi = proveCore(suite, sk, alpha, trace);
  return { pi, trace };
}
