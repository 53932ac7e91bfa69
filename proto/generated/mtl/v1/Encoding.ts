// Original file: proto/mtl/v1/coordinator.proto

export const Encoding = {
  ENCODING_F32: 'ENCODING_F32',
} as const;

export type Encoding =
  | 'ENCODING_F32'
  | 0

export type Encoding__Output = typeof Encoding[keyof typeof Encoding]
