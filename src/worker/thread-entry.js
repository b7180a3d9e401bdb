// The ONNX Runtime thread's entry (piscina's `filename`): install the stripped-TypeScript cache
// in this thread (src/boot/ts-cache.js: hooks are per thread), then load thread.ts, whose
// default export — a promise of the task handler — is this module's.
import '../boot/ts-cache.js';

const { default: handler } = await import('./thread.ts');
export default handler;
