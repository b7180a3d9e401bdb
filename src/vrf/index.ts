/**
 * Public surface of the vrf module: RFC 9381 ECVRF on edwards25519 (suites TAI 0x03 and
 * ELL2 0x04) and the hashrate-weighted lottery built on it (pure bigint math).
 */
export type { Suite, VrfKeyPair, VrfVerifyResult } from './ecvrf.ts';
export {
  SUITES,
  VRF_OUTPUT_BYTES,
  VRF_PK_BYTES,
  VRF_PROOF_BYTES,
  VRF_SK_BYTES,
  vrfKeygen,
  vrfProofToHash,
  vrfProve,
  vrfPublicKey,
  vrfValidateKey,
  vrfVerify,
} from './ecvrf.ts';
export * from './lottery.ts';
export { VrfErrorCode } from './errors.ts';
