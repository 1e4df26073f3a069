// Chain access with viem: the distributor's ABI (from the Foundry artifact the
// Rust bindings use too), clients over a wallet or an RPC URL, and turning
// reverts and wallet errors into words.

import {
  BaseError,
  ContractFunctionRevertedError,
  createClient,
  custom,
  defineChain,
  http,
  type Abi,
  type AbiEvent,
  type Chain,
  type EIP1193Provider,
  type Hex,
  type Log,
  type TransactionReceipt,
  type Transport,
} from 'viem';
import {
  getChainId,
  getLogs,
  readContract,
  simulateContract,
  waitForTransactionReceipt,
  writeContract,
} from 'viem/actions';
import abi from 'virtual:distributor-abi';
import type { SiteConfig } from './config';

/** The distributor's ABI: functions, events and custom errors. */
export const distributorAbi: Abi = abi;

/** A viem chain for the deployment's chain id. */
export function chainFor(chainId: number, config: SiteConfig): Chain {
  return defineChain({
    id: chainId,
    name: config.chainName || `Chain ${chainId}`,
    nativeCurrency: { name: config.nativeCurrencySymbol, symbol: config.nativeCurrencySymbol, decimals: 18 },
    rpcUrls: { default: { http: config.rpcUrl ? [config.rpcUrl] : [] } },
  });
}

/** A contract call: what `readContract`, `simulateContract` and `writeContract` take. */
export interface ContractCall {
  address: `0x${string}`;
  abi: Abi;
  functionName: string;
  args?: readonly unknown[];
  account?: `0x${string}`;
  blockNumber?: bigint;
}

/**
 * A read-only chain client with only the actions the app uses (viem's
 * `createPublicClient` would bundle every public action), loosely typed
 * because the ABI comes from a JSON artifact.
 */
export interface Reader {
  getChainId(): Promise<number>;
  readContract(call: ContractCall): Promise<unknown>;
  simulateContract(call: ContractCall): Promise<unknown>;
  getLogs(filter: {
    address: `0x${string}`;
    event: AbiEvent;
    args?: Record<string, unknown>;
    fromBlock: bigint;
    toBlock: 'latest';
  }): Promise<Log[]>;
  waitForTransactionReceipt(wait: { hash: Hex; timeout: number; pollingInterval: number }): Promise<TransactionReceipt>;
}

function reader(chain: Chain, transport: Transport): Reader {
  const c = createClient({ chain, transport });
  return {
    getChainId: () => getChainId(c),
    readContract: (call) => readContract(c, call as never),
    simulateContract: (call) => simulateContract(c, call as never),
    getLogs: (filter) => getLogs(c, filter as never) as Promise<Log[]>,
    waitForTransactionReceipt: (wait) => waitForTransactionReceipt(c, wait),
  };
}

/** A read-only client through a wallet's provider. */
export function walletReader(provider: EIP1193Provider, chain: Chain): Reader {
  return reader(chain, custom(provider));
}

/** A read-only client through the configured RPC URL, or null without one. */
export function rpcReader(config: SiteConfig, chain: Chain): Reader | null {
  if (!config.rpcUrl) return null;
  return reader(chain, http(config.rpcUrl, { timeout: 15_000, retryCount: 1 }));
}

/** Sends `claim(...)` (or any call) from `account` through a wallet. */
export function sendFromWallet(
  provider: EIP1193Provider,
  chain: Chain,
  account: `0x${string}`,
  call: ContractCall,
): Promise<Hex> {
  const client = createClient({ account, chain, transport: custom(provider) });
  return writeContract(client, { ...call, account, chain } as never);
}

/** The EIP-1193 / JSON-RPC error code anywhere in an error's cause chain. */
export function errorCode(e: unknown): number | undefined {
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 10; depth++) {
    const o = cur as { code?: unknown; data?: { originalError?: { code?: unknown } }; cause?: unknown };
    if (typeof o.code === 'number' && o.code !== -32603) return o.code;
    // Some wallets wrap the real code in an internal error's data.
    if (typeof o.data?.originalError?.code === 'number') return o.data.originalError.code;
    cur = o.cause;
  }
  return undefined;
}

/** Whether the user declined in the wallet (EIP-1193 code 4001). */
export function isUserRejection(e: unknown): boolean {
  if (errorCode(e) === 4001) return true;
  return e instanceof BaseError && e.walk((c) => (c as { name?: string }).name === 'UserRejectedRequestError') !== null;
}

/** A revert decoded into the contract's custom error, if it is one. */
export function revertOf(e: unknown): { name: string; args: readonly unknown[] } | null {
  if (!(e instanceof BaseError)) return null;
  const reverted = e.walk((c) => c instanceof ContractFunctionRevertedError);
  if (reverted instanceof ContractFunctionRevertedError && reverted.data?.errorName) {
    return { name: reverted.data.errorName, args: reverted.data.args ?? [] };
  }
  return null;
}

/** What a distributor revert means, in words. */
export function explainRevert(e: unknown, fmt: (units: bigint) => string): string {
  const decoded = revertOf(e);
  if (!decoded) {
    const short = e instanceof BaseError ? e.shortMessage : e instanceof Error ? e.message : String(e);
    return `The contract refused the claim: ${short}`;
  }
  const a = decoded.args;
  switch (decoded.name) {
    case 'NoFinalizedEpoch':
      return 'No epoch has been finalized on-chain yet, so there is nothing to claim. Credits become claimable once their epoch has passed its challenge period and is finalized.';
    case 'InvalidProof':
      return `The proof does not verify against the contract's newest finalized reward root (account ${String(a[0])}, amount ${fmt(a[1] as bigint)}). A newer epoch may have been finalized since the proof was fetched, or the API serves another deployment: reload the page for a fresh proof.`;
    case 'NothingToClaim':
      return `Nothing to claim: ${String(a[0])} has already been paid ${fmt(a[2] as bigint)}, which covers its cumulative ${fmt(a[1] as bigint)}.`;
    case 'ZeroAddress':
      return 'The account is the zero address.';
    case 'SafeERC20FailedOperation':
      return 'The token transfer failed: the contract could not pay out (is it funded?).';
    default:
      return `The contract refused the claim with ${decoded.name}(${a.map(String).join(', ')}).`;
  }
}

/** A short description of any other error. */
export function describe(e: unknown): string {
  if (e instanceof BaseError) return e.shortMessage;
  if (e instanceof Error) return e.message;
  return String(e);
}
