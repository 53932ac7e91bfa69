// The compute backends a worker can be told to use (--backend): kept apart from the backend
// selection, which loads tfjs, so that the command line can list them without it.
export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
