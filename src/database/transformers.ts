import { ValueTransformer } from 'typeorm';

/** pg returns BIGINT as a string; our bigints (epoch seconds, counters) fit in a JS number. */
export const bigintAsNumber: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | null) => (value === null ? null : Number(value)),
};
