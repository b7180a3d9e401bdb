/**
 * Every libp2p value the project uses, from the packages themselves. `libp2p.ts` serves these
 * from a one-file bundle of this module when one was built (`scripts/bundle-libp2p.js`, run at
 * install), and from here otherwise. Add an import here, never straight from a libp2p package:
 * two copies of one package (the bundle's and node_modules') must not meet.
 */
export { createLibp2p } from 'libp2p';
export { tcp } from '@libp2p/tcp';
export { noise } from '@chainsafe/libp2p-noise';
export { yamux } from '@chainsafe/libp2p-yamux';
export { identify } from '@libp2p/identify';
export { gossipsub, StrictSign, TopicValidatorResult } from '@libp2p/gossipsub';
export { createTopicScoreParams } from '@libp2p/gossipsub/score';
export { generateKeyPair, generateKeyPairFromSeed, privateKeyFromProtobuf, privateKeyToProtobuf, publicKeyFromRaw } from '@libp2p/crypto/keys';
export { peerIdFromString, peerIdFromPublicKey, peerIdFromPrivateKey } from '@libp2p/peer-id';
export { multiaddr } from '@multiformats/multiaddr';
export { KEEP_ALIVE } from '@libp2p/interface';
