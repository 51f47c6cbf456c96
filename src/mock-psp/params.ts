import { invalidParam, missingParam } from './errors';

type Raw = Record<string, unknown>;

/** Parameters every endpoint accepts, as Stripe does. */
const ALWAYS_ALLOWED = ['expand'];

/**
 * Reads a parsed form body (or query) the way Stripe validates it: unknown
 * parameters and malformed values are a 400 naming the parameter.
 */
export class Params {
  constructor(readonly raw: Raw, allowed: readonly string[], private readonly prefix = '') {
    for (const key of Object.keys(raw)) {
      if (!allowed.includes(key) && !ALWAYS_ALLOWED.includes(key)) {
        throw invalidParam(this.path(key), `Received unknown parameter: ${this.path(key)}`, 'parameter_unknown');
      }
    }
  }

  private path(key: string): string {
    return this.prefix ? `${this.prefix}[${key}]` : key;
  }

  string(key: string, required = false): string | undefined {
    const value = this.raw[key];
    if (value === undefined) {
      if (required) throw missingParam(this.path(key));
      return undefined;
    }
    if (typeof value !== 'string') throw invalidParam(this.path(key), `Invalid string: ${this.path(key)} must be a string`);
    return value;
  }

  requiredString(key: string): string {
    return this.string(key, true) as string;
  }

  int(key: string, options: { required?: boolean; min?: number; max?: number } = {}): number | undefined {
    const text = this.string(key, options.required);
    if (text === undefined) return undefined;
    if (!/^-?\d+$/.test(text)) throw invalidParam(this.path(key), `Invalid integer: ${text}`);
    const value = Number(text);
    if (options.min !== undefined && value < options.min) {
      throw invalidParam(this.path(key), `This value must be greater than or equal to ${options.min}.`);
    }
    if (options.max !== undefined && value > options.max) {
      throw invalidParam(this.path(key), `This value must be less than or equal to ${options.max}.`);
    }
    return value;
  }

  bool(key: string): boolean | undefined {
    const text = this.string(key);
    if (text === undefined) return undefined;
    if (text !== 'true' && text !== 'false') throw invalidParam(this.path(key), `Invalid boolean: ${text}`);
    return text === 'true';
  }

  oneOf<T extends string>(key: string, values: readonly T[]): T | undefined {
    const text = this.string(key);
    if (text === undefined) return undefined;
    if (!(values as readonly string[]).includes(text)) {
      throw invalidParam(this.path(key), `Invalid ${this.path(key)}: must be one of ${values.join(', ')}`);
    }
    return text as T;
  }

  /** A nested hash (`metadata[order_id]=…`) read with its own allowed keys; `null` when sent empty. */
  object(key: string, allowed: readonly string[]): Params | undefined {
    const value = this.raw[key];
    if (value === undefined) return undefined;
    if (value === '') return new Params({}, allowed, this.path(key));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw invalidParam(this.path(key), `Invalid object: ${this.path(key)} must be a hash`);
    }
    return new Params(value as Raw, allowed, this.path(key));
  }

  /** `metadata[...]`: string keys to string values; an empty string unsets (Stripe's convention). */
  metadata(key = 'metadata'): Record<string, string> | undefined {
    const value = this.raw[key];
    if (value === undefined) return undefined;
    if (value === '') return {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw invalidParam(key, 'Invalid object: metadata must be a hash of strings');
    }
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(value as Raw)) {
      if (typeof v !== 'string') throw invalidParam(`${key}[${k}]`, 'Invalid metadata value: must be a string');
      if (v.length > 500) throw invalidParam(`${key}[${k}]`, 'Metadata values can have up to 500 characters');
      out[k] = v;
    }
    if (Object.keys(out).length > 50) throw invalidParam(key, 'You can have up to 50 metadata keys');
    return out;
  }

  /** `types[]=a&types[]=b` or `types[0]=a`: both parse to an array (or an index-keyed object). */
  stringArray(key: string): string[] | undefined {
    const value = this.raw[key];
    if (value === undefined) return undefined;
    const items = Array.isArray(value) ? value : typeof value === 'object' && value !== null ? Object.values(value) : [value];
    for (const item of items) {
      if (typeof item !== 'string') throw invalidParam(this.path(key), `Invalid array: ${this.path(key)} must hold strings`);
    }
    return items as string[];
  }
}

/** A form value that may be one string, a list (`a[]=x`) or an indexed map (`a[0]=x`), as strings. */
export function toStringList(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  if (typeof value === 'string') return [value];
  if (value && typeof value === 'object') return Object.values(value).filter((v): v is string => typeof v === 'string');
  return [];
}
