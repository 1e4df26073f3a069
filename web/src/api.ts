// The pool API's JSON (camelCase, see api/src/types.rs). Amounts, work and
// hashrates that can exceed 2^53 are decimal strings.

export interface Hashrate {
  windowSecs: number;
  work: string;
  shares: number;
  hashesPerSecond: string;
}

export type BlockState = 'submitted' | 'rejected' | 'immature' | 'mature' | 'orphaned';
export type EpochState = 'closed' | 'committed' | 'finalized';

export interface Block {
  height: number;
  hash: string;
  status: BlockState;
  confirmations: number;
  rewardSats: number;
  finder: string;
  worker: string;
  foundMs: number;
  paidEpoch: number | null;
  rejectReason: string | null;
  explorerUrl: string;
}

export interface Summary {
  nowMs: number;
  epochSecs: number | null;
  currentEpoch: { number: number; startUnix: number; endUnix: number; shares: number } | null;
  lastSettledEpoch: number | null;
  lastCommittedEpoch: number | null;
  lastFinalizedEpoch: number | null;
  miners: number;
  workers: number;
  activeMiners: number;
  activeWorkers: number;
  hashrate: Hashrate;
  network: { difficulty: string; target: string; height: number | null } | null;
  lastBlock: Block | null;
  blocksFound: number;
  scheme: 'pplns' | 'pps' | 'fpps' | null;
  nextCreditUnix: number | null;
  luck: { firstEpoch: number; lastEpoch: number; blocksFound: number; expectedBlocks: string; percent: number | null } | null;
}

export interface HashratePoint {
  startUnix: number;
  seconds: number;
  work: string;
  shares: number;
  hashesPerSecond: string;
}

export interface HashrateSeries {
  miner: string | null;
  bucketSecs: number;
  fromUnix: number;
  toUnix: number;
  points: HashratePoint[];
}

export interface Page<T> {
  items: T[];
  offset: number;
  limit: number;
  total: number;
}

export interface MinerItem {
  address: string;
  workers: number;
  firstSeenMs: number;
  lastSeenMs: number;
  hashrate: Hashrate;
}

export interface Worker {
  name: string;
  firstSeenMs: number;
  lastSeenMs: number;
  lastShareMs: number | null;
  hashrate: Hashrate;
}

export interface MinerDetail {
  address: string;
  firstSeenMs: number | null;
  lastSeenMs: number | null;
  hashrate: Hashrate;
  workerCount: number;
  workers: Worker[];
  sharesPerEpoch: { epoch: number; shares: number; work: string }[];
  credits: {
    pendingSats: number;
    pendingAmount: string;
    claimableSats: number;
    claimableAmount: string;
    claimableEpoch: number | null;
    perEpoch: { epoch: number; sats: number; amount: string; claimable: boolean }[];
  };
  onChain: { claimed: string; unclaimed: string } | null;
  onChainError?: string;
}

export interface Epoch {
  epoch: number;
  status: EpochState;
  startUnix: number | null;
  endUnix: number | null;
  shareCount: number;
  firstSeq: number | null;
  lastSeq: number | null;
  shareRoot: string;
  rewardRoot: string;
  totalCumulative: string;
  blocksHash: string;
  paramsHash: string;
  dataHash: string;
  prevEpochHash: string;
  commitTx: string | null;
  finalizeTx: string | null;
  updatedMs: number;
  fileUrl: string;
}

export interface Proof {
  account: string;
  cumulativeAmount: string;
  proof: string[];
  rewardRoot: string;
  epoch: number;
  epochStatus: EpochState;
  claimableNow: boolean;
  chainId: number;
  distributor: string;
}

/** `GET /api/v1/epochs/{n}/shares/{hash}/proof`. */
export interface ShareProof {
  epoch: number;
  seq: number;
  miner: string;
  /** Decimal. */
  work: string;
  shareHash: string;
  leaf: string;
  proof: string[];
  shareRoot: string;
  epochStatus: EpochState;
}

export interface TokenInfo {
  address: string;
  name: string;
  symbol: string;
  decimals: number;
}

export interface ChainInfo {
  chainId: number;
  distributor: string;
  tokenPerSat: string;
  explorerBaseUrl: string;
  rpcConfigured: boolean;
  token: TokenInfo | null;
  onChain: { lastCommittedEpoch: number; lastFinalizedEpoch: number; finalizedRewardRoot: string } | null;
  onChainError?: string;
}

/** An answer other than 2xx, with the API's message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly parameter?: string,
  ) {
    super(message);
  }
}

const TIMEOUT_MS = 15_000;

/** GETs `path` (no extra query parameters: the API refuses unknown ones). */
export async function get<T>(path: string): Promise<T> {
  let r: Response;
  try {
    r = await fetch(path, {
      headers: { accept: 'application/json' },
      cache: 'no-store',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (e) {
    throw new ApiError(0, `the pool API did not answer ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const text = await r.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(r.status, `the pool API answered ${path} with something that is not JSON (HTTP ${r.status})`);
  }
  if (!r.ok) {
    const err = body as { error?: string; parameter?: string };
    throw new ApiError(r.status, err.error ?? `HTTP ${r.status}`, err.parameter);
  }
  return body as T;
}

export const api = {
  summary: () => get<Summary>('/api/v1/summary'),
  hashrate: (miner?: string) =>
    get<HashrateSeries>(`/api/v1/hashrate?bucket=600&hours=24${miner ? `&miner=${miner}` : ''}`),
  miners: (limit = 50) => get<Page<MinerItem>>(`/api/v1/miners?limit=${limit}`),
  miner: (address: string) => get<MinerDetail>(`/api/v1/miners/${address}`),
  blocks: (limit = 50) => get<Page<Block>>(`/api/v1/blocks?limit=${limit}`),
  epochs: (limit = 50) => get<Page<Epoch>>(`/api/v1/epochs?limit=${limit}`),
  latestProof: (address: string) => get<Proof>(`/api/v1/epochs/latest/proof/${address}`),
  shareProof: (epoch: number, hash: string) => get<ShareProof>(`/api/v1/epochs/${epoch}/shares/${hash}/proof`),
  chain: () => get<ChainInfo>('/api/v1/chain'),
};

let chainInfo: Promise<ChainInfo> | null = null;

/** `/api/v1/chain`, fetched once per page load (a failure is retried next time). */
export function chain(): Promise<ChainInfo> {
  chainInfo ??= api.chain().catch((e: unknown) => {
    chainInfo = null;
    throw e;
  });
  return chainInfo;
}
