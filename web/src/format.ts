// Display formatting. Amounts stay bigint (exact) until they become text.

import { formatUnits } from 'viem';

const SI = ['H/s', 'kH/s', 'MH/s', 'GH/s', 'TH/s', 'PH/s', 'EH/s', 'ZH/s'];

/** Work over a span, as hashes per second. Display only: a float, never used for accounting. */
export function rate(h: { work: string; windowSecs: number } | { work: string; seconds: number }): number {
  const secs = 'windowSecs' in h ? h.windowSecs : h.seconds;
  return secs > 0 ? Number(h.work) / secs : 0;
}

/** A hashrate from the API as `12.3 TH/s`; regtest's tiny rates keep two significant digits. */
export function hashrate(h: { work: string; windowSecs: number } | { work: string; seconds: number }): string {
  return hashrateText(rate(h));
}

/** Hashes per second as text. */
export function hashrateText(hps: number): string {
  if (hps === 0) return '0 H/s';
  if (hps < 1) return `${hps.toPrecision(2)} H/s`;
  let v = hps;
  let unit = 0;
  while (v >= 1000 && unit < SI.length - 1) {
    v /= 1000;
    unit += 1;
  }
  return `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${SI[unit]}`;
}

/** Sats as BTC with all eight decimals trimmed of trailing zeros. */
export function btc(sats: number | bigint): string {
  return `${trim(formatUnits(BigInt(sats), 8))} BTC`;
}

/** Token base units in whole tokens (or base units when the token is unknown). */
export function tokenAmount(units: string | bigint, token: { decimals: number; symbol: string } | null): string {
  const v = typeof units === 'bigint' ? units : BigInt(units);
  if (!token) return `${v} base units`;
  return `${trim(formatUnits(v, token.decimals))} ${token.symbol}`;
}

function trim(s: string): string {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/** `0x1234…abcd`. */
export function short(hex: string, keep = 6): string {
  return hex.length <= keep * 2 + 3 ? hex : `${hex.slice(0, keep + 2)}…${hex.slice(-keep)}`;
}

/** A unix-ms time as local date and time. */
export function time(ms: number | null | undefined): string {
  if (!ms) return '—';
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

/** How long ago, roughly. */
export function ago(ms: number | null | undefined, now = Date.now()): string {
  if (!ms) return '—';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}

/** A duration in seconds as `1 h 5 min`. */
export function duration(secs: number): string {
  if (secs < 60) return `${secs} s`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ${secs % 60} s`;
  return `${Math.floor(secs / 3600)} h ${Math.floor((secs % 3600) / 60)} min`;
}
