/**
 * Error codes of the vrf module. Caller misuse (wrong types, unknown suite, a secret key of the
 * wrong length, lottery parameters out of range) throws a DrillError with one of these codes;
 * invalid *untrusted* data (a proof or public key from the network) never throws from
 * `vrfVerify` / `vrfValidateKey`, which answer `false` instead.
 */
import { DrillError } from '../util/errors.ts';

export const VrfErrorCode = {
  /** The suite argument is not 'tai' or 'ell2'. */
  BAD_SUITE: 'VRF_BAD_SUITE',
  /** A byte argument is not a Uint8Array, or has the wrong length where the caller controls it (sk, seed, beta). */
  BAD_ARGUMENT: 'VRF_BAD_ARGUMENT',
  /** `vrfProofToHash` was given a proof whose Gamma does not decode to a curve point. */
  BAD_PROOF: 'VRF_BAD_PROOF',
  /** A lottery parameter (c, weight, total, slot, randomness) is out of its documented range. */
  BAD_LOTTERY_PARAM: 'VRF_BAD_LOTTERY_PARAM',
} as const;
export type VrfErrorCode = (typeof VrfErrorCode)[keyof typeof VrfErrorCode];

/** Build a vrf DrillError; `meta.field` names the argument at fault. */
export function vrfError(code: VrfErrorCode, field: string, message: string, meta: Record<string, unknown> = {}): DrillError {
  return new DrillError(code, `${field}: ${message}`, { field, ...meta });
}
