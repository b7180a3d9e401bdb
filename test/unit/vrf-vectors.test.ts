/**
 * RFC 9381 test vectors (test/vectors/ecvrf-rfc9381.json, see SOURCE.md) for both edwards25519
 * suites. Every field of every vector is checked — the proof, the output and each intermediate
 * value — and an unknown suite or field fails the run, so nothing is silently skipped.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { numberToBytesLE } from '@noble/curves/utils.js';
import type { Suite } from '../../src/vrf/ecvrf.ts';
import { SUITES, ecvrfProveTrace, vrfProofToHash, vrfPublicKey, vrfValidateKey, vrfVerify } from '../../src/vrf/ecvrf.ts';

interface Vector {
  suite: string;
  suite_string: string;
  example: number;
  sk: string;
  pk: string;
  alpha: string;
  pi: string;
  beta: string;
  intermediate: Record<string, string | number | boolean>;
  source: string;
}

const file = JSON.parse(readFileSync(new URL('../vectors/ecvrf-rfc9381.json', import.meta.url), 'utf8')) as {
  about: string;
  source: string;
  vectors: Vector[];
};

const SUITE_BY_NAME: Record<string, Suite> = { [SUITES.tai.name]: 'tai', [SUITES.ell2.name]: 'ell2' };
const TOP_FIELDS = new Set(['suite', 'suite_string', 'example', 'sk', 'pk', 'alpha', 'pi', 'beta', 'intermediate', 'source']);
const le = (n: bigint): string => bytesToHex(numberToBytesLE(n, 32));

describe('RFC 9381 vectors', () => {
  it('has vectors for both suites', () => {
    const suites = new Set(file.vectors.map((v) => v.suite));
    expect([...suites].sort()).toEqual([SUITES.ell2.name, SUITES.tai.name]);
  });

  for (const v of file.vectors) {
    it(`${v.suite} example ${v.example}`, () => {
      const suite = SUITE_BY_NAME[v.suite];
      if (!suite) throw new Error(`unknown vector suite ${JSON.stringify(v.suite)}: teach the harness about it`);
      for (const k of Object.keys(v)) if (!TOP_FIELDS.has(k)) throw new Error(`unknown vector field ${k}`);
      expect(Number.parseInt(v.suite_string, 16)).toBe(SUITES[suite].suiteString);
      expect(typeof v.source).toBe('string');

      const sk = hexToBytes(v.sk);
      const alpha = hexToBytes(v.alpha);
      expect(bytesToHex(vrfPublicKey(sk))).toBe(v.pk);
      expect(vrfValidateKey(hexToBytes(v.pk))).toBe(true);

      const { pi, trace } = ecvrfProveTrace(suite, sk, alpha);
      expect(bytesToHex(pi)).toBe(v.pi);
      const r = vrfVerify(suite, hexToBytes(v.pk), alpha, hexToBytes(v.pi));
      expect(r.valid).toBe(true);
      expect(r.beta && bytesToHex(r.beta)).toBe(v.beta);
      expect(bytesToHex(vrfProofToHash(suite, hexToBytes(v.pi)))).toBe(v.beta);

      const got: Record<string, string | number | boolean | undefined> = {
        x: trace.x !== undefined ? le(trace.x) : undefined,
        ctr: trace.ctr,
        H: trace.H && bytesToHex(trace.H),
        k_string: trace.kString && bytesToHex(trace.kString),
        k: trace.k !== undefined ? le(trace.k) : undefined,
        U: trace.U && bytesToHex(trace.U),
        V: trace.V && bytesToHex(trace.V),
        uniform_bytes: trace.uniformBytes && bytesToHex(trace.uniformBytes),
        u: trace.u !== undefined ? le(trace.u) : undefined,
        gx1: trace.gx1 !== undefined ? le(trace.gx1) : undefined,
        gx1_is_square: trace.gx1IsSquare,
      };
      for (const [field, want] of Object.entries(v.intermediate)) {
        if (!(field in got)) throw new Error(`unknown intermediate field ${field}`);
        expect(got[field], `intermediate ${field}`).toBe(want);
      }
    });
  }
});
