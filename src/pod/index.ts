/** Proof of Drilling: comparison policies, commit–reveal, unit outcomes, credit and fault records, ledger. Pure, no I/O. */
export * from './policy.ts';
export * from './commit.ts';
export * from './quorum.ts';
export * from './credit.ts';
export * from './ledger.ts';
export * from './fault.ts';
