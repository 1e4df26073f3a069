// Site settings the API does not know: an RPC URL for the chain (used to add
// the chain to a wallet and to read the contract without one), its name, an
// EVM block explorer for transaction links, and the block to read events
// from. They live in `config.json` next to index.html, so an operator edits
// web/dist/config.json without rebuilding. A user may override the RPC URL
// on the auditor page (kept in localStorage).

export interface SiteConfig {
  /** JSON-RPC endpoint of the L2, reachable from browsers (CORS). */
  rpcUrl: string;
  /** The chain's name as wallets should show it. */
  chainName: string;
  /** The native currency's symbol, for `wallet_addEthereumChain`. */
  nativeCurrencySymbol: string;
  /** EVM explorer base URL; transactions link to `{url}/tx/{hash}`. */
  evmExplorerUrl: string;
  /** First block to scan for the distributor's events (its deployment block). */
  fromBlock: number;
}

const DEFAULTS: SiteConfig = {
  rpcUrl: '',
  chainName: '',
  nativeCurrencySymbol: 'ETH',
  evmExplorerUrl: '',
  fromBlock: 0,
};

const RPC_OVERRIDE_KEY = 'proofpool.rpcUrl';

let loaded: Promise<SiteConfig> | null = null;

/** The site's settings; missing or malformed files give the defaults. */
export function siteConfig(): Promise<SiteConfig> {
  loaded ??= (async () => {
    const config = { ...DEFAULTS };
    try {
      const r = await fetch('/config.json', { headers: { accept: 'application/json' } });
      // Without the file, the SPA fallback answers index.html with 200.
      if (r.ok && (r.headers.get('content-type') ?? '').includes('json')) {
        const body = (await r.json()) as Partial<SiteConfig>;
        if (typeof body.rpcUrl === 'string') config.rpcUrl = body.rpcUrl.trim();
        if (typeof body.chainName === 'string') config.chainName = body.chainName.trim();
        if (typeof body.nativeCurrencySymbol === 'string' && body.nativeCurrencySymbol.trim())
          config.nativeCurrencySymbol = body.nativeCurrencySymbol.trim();
        if (typeof body.evmExplorerUrl === 'string') config.evmExplorerUrl = body.evmExplorerUrl.trim().replace(/\/+$/, '');
        if (typeof body.fromBlock === 'number' && Number.isSafeInteger(body.fromBlock) && body.fromBlock >= 0)
          config.fromBlock = body.fromBlock;
      }
    } catch {
      // The defaults work: chain reads then go through the wallet.
    }
    const override = localStorage.getItem(RPC_OVERRIDE_KEY);
    if (override) config.rpcUrl = override;
    return config;
  })();
  return loaded;
}

/** Sets (or with `''` clears) the user's RPC URL override. */
export function setRpcOverride(url: string): void {
  if (url) localStorage.setItem(RPC_OVERRIDE_KEY, url);
  else localStorage.removeItem(RPC_OVERRIDE_KEY);
  loaded = null;
}

/** A link to an EVM transaction, or null without an explorer. */
export function txUrl(config: SiteConfig, hash: string): string | null {
  return config.evmExplorerUrl ? `${config.evmExplorerUrl}/tx/${hash}` : null;
}
