// Original file: proto/mtl/v1/coordinator.proto

/**
 * How tensor values travel (the job's transport.compression): float32, or 16 bits per value
 * (IEEE half, or bfloat16), rounded to nearest even. Gradients use the job's setting too.
 */
export const Encoding = {
  ENCODING_F32: 'ENCODING_F32',
  ENCODING_F16: 'ENCODING_F16',
  ENCODING_BF16: 'ENCODING_BF16',
} as const;

/**
 * How tensor values travel (the job's transport.compression): float32, or 16 bits per value
 * (IEEE half, or bfloat16), rounded to nearest even. Gradients use the job's setting too.
 */
export type Encoding =
  | 'ENCODING_F32'
  | 0
  | 'ENCODING_F16'
  | 1
  | 'ENCODING_BF16'
  | 2

/**
 * How tensor values travel (the job's transport.compression): float32, or 16 bits per value
 * (IEEE half, or bfloat16), rounded to nearest even. Gradients use the job's setting too.
 */
export type Encoding__Output = typeof Encoding[keyof typeof Encoding]
