// What every page gets from the router, and small pieces pages share.

import type { ChainInfo, Epoch } from './api';
import type { SiteConfig } from './config';
import { txUrl } from './config';
import { extLink, h } from './dom';
import { short } from './format';

/** Handed to a page when the router shows it. */
export interface PageContext {
  /** Runs `fn` when the page is left (stop timers, drop wallet listeners). */
  onDispose(fn: () => void): void;
}

/** A page: fills `view` (a fresh element) from the route's parameters. */
export type Page = (view: HTMLElement, params: string[], ctx: PageContext) => Promise<void>;

/** Settles a promise into its value or its error, so one failed request does not blank a page. */
export async function settle<T>(p: Promise<T>): Promise<T | Error> {
  try {
    return await p;
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

/** An error box. */
export function errorBox(what: string, e: Error, testid?: string): HTMLElement {
  return h('div', { class: 'status bad', 'data-testid': testid }, `${what}: ${e.message}`);
}

/** A badge for a block or epoch status. */
export function badge(status: string): HTMLElement {
  return h('span', { class: `badge ${status}` }, status);
}

/** A transaction hash, linked when an EVM explorer is configured. */
export function txCell(config: SiteConfig, hash: string | null): HTMLElement | string {
  if (!hash) return '—';
  const code = h('code', { title: hash }, short(hash, 8));
  const url = txUrl(config, hash);
  return url ? extLink(url, code) : code;
}

/** One line naming the chain and the contract. */
export function deploymentLine(info: ChainInfo, config: SiteConfig): HTMLElement {
  return h(
    'p',
    { class: 'muted' },
    `Chain ${info.chainId}${config.chainName ? ` (${config.chainName})` : ''} · distributor `,
    h('code', {}, info.distributor),
    info.token ? ` · token ${info.token.symbol} ` : '',
    info.token ? h('code', {}, info.token.address) : '',
  );
}

/** Epochs newest first, as the API lists them. */
export function epochByNumber(epochs: Epoch[]): Map<number, Epoch> {
  return new Map(epochs.map((e) => [e.epoch, e]));
}
