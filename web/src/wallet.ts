// Browser wallets: EIP-6963 discovery (every wallet announces itself), with
// the legacy `window.ethereum` as a fallback, and switching or adding the
// pool's chain.

import type { EIP1193Provider } from 'viem';
import type { SiteConfig } from './config';
import { errorCode } from './chain';

/** What an EIP-6963 wallet says about itself. */
export interface WalletInfo {
  uuid: string;
  name: string;
  /** A data: URI image. */
  icon: string;
  rdns: string;
}

/** A wallet the user can connect. */
export interface Wallet {
  info: WalletInfo;
  provider: EIP1193Provider;
}

declare global {
  interface Window {
    ethereum?: EIP1193Provider;
  }
}

const announced = new Map<string, Wallet>();
const startedAt = performance.now();
/** Wallets answer the request synchronously or within a few ms; allow for slow ones. */
const DISCOVERY_MS = 400;
const LAST_WALLET_KEY = 'proofpool.wallet';

window.addEventListener('eip6963:announceProvider', (event) => {
  const detail = (event as CustomEvent<Wallet>).detail;
  if (!detail?.info?.uuid || typeof detail.provider?.request !== 'function') return;
  announced.set(detail.info.uuid, { info: { ...detail.info }, provider: detail.provider });
});
window.dispatchEvent(new Event('eip6963:requestProvider'));

/** The wallets in this browser: EIP-6963 ones, else `window.ethereum`, else none. */
export async function discoverWallets(): Promise<Wallet[]> {
  const left = DISCOVERY_MS - (performance.now() - startedAt);
  if (left > 0) await new Promise((r) => setTimeout(r, left));
  const list = [...announced.values()];
  if (list.length === 0 && window.ethereum && typeof window.ethereum.request === 'function') {
    list.push({
      info: { uuid: 'window.ethereum', name: 'Browser wallet', icon: '', rdns: 'window.ethereum' },
      provider: window.ethereum,
    });
  }
  return list;
}

/** The wallet the user connected last time, to reconnect without a prompt. */
export function lastWallet(): string | null {
  return localStorage.getItem(LAST_WALLET_KEY);
}

/** Remembers (or forgets, with null) the wallet the user connected. */
export function rememberWallet(rdns: string | null): void {
  if (rdns) localStorage.setItem(LAST_WALLET_KEY, rdns);
  else localStorage.removeItem(LAST_WALLET_KEY);
}

/** Asks the wallet for accounts (prompts the user). */
export async function requestAccounts(w: Wallet): Promise<string[]> {
  return (await w.provider.request({ method: 'eth_requestAccounts' })) as string[];
}

/** Accounts already authorised for this site (never prompts). */
export async function authorisedAccounts(w: Wallet): Promise<string[]> {
  try {
    return (await w.provider.request({ method: 'eth_accounts' })) as string[];
  } catch {
    return [];
  }
}

/** The wallet's current chain id. */
export async function walletChainId(w: Wallet): Promise<number> {
  const hex = (await w.provider.request({ method: 'eth_chainId' })) as string;
  return Number.parseInt(hex, 16);
}

/** Why switching failed in a way the user can act on. */
export class SwitchError extends Error {}

/**
 * Switches the wallet to `chainId`; when the wallet does not know the chain
 * (4902), adds it with the configured RPC URL first. A user's refusal
 * propagates as the wallet's 4001 error.
 */
export async function switchChain(w: Wallet, chainId: number, config: SiteConfig): Promise<void> {
  const hex = `0x${chainId.toString(16)}`;
  try {
    await w.provider.request({ method: 'wallet_switchEthereumChain', params: [{ chainId: hex }] });
    return;
  } catch (e) {
    if (errorCode(e) !== 4902) throw e;
  }
  if (!config.rpcUrl) {
    throw new SwitchError(
      `Your wallet does not know chain ${chainId}, and this site has no RPC URL to add it with ("rpcUrl" in config.json). Add the network to your wallet by hand (chain id ${chainId}), then try again.`,
    );
  }
  await w.provider.request({
    method: 'wallet_addEthereumChain',
    params: [
      {
        chainId: hex,
        chainName: config.chainName || `Chain ${chainId}`,
        nativeCurrency: { name: config.nativeCurrencySymbol, symbol: config.nativeCurrencySymbol, decimals: 18 },
        rpcUrls: [config.rpcUrl],
        ...(config.evmExplorerUrl ? { blockExplorerUrls: [config.evmExplorerUrl] } : {}),
      },
    ],
  });
  // Most wallets switch when they add; the rest need asking again.
  if ((await walletChainId(w)) !== chainId) {
    await w.provider.request({ method: 'wallet_switchEthereumChain', params: [{ chainId: hex }] });
  }
}
