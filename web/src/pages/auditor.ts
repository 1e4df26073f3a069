// The auditor page: every epoch's commitment as the pool's API reports it,
// next to what the contract's `EpochCommitted` events and storage say, and
// how to run the full audit (`proofpool audit`), which also recomputes the
// roots from the epoch files.

import { type AbiEvent, type Hex } from 'viem';
import { api, chain, type ChainInfo, type Epoch } from '../api';
import { chainFor, describe, distributorAbi, rpcReader, walletReader, type Reader } from '../chain';
import { setRpcOverride, siteConfig, type SiteConfig } from '../config';
import { h, replace, section } from '../dom';
import { deploymentLine, errorBox, settle, type Page } from '../page';
import { discoverWallets } from '../wallet';

const committedEvent = distributorAbi.find((x) => x.type === 'event' && x.name === 'EpochCommitted') as AbiEvent;
/** Epochs compared per run (newest first); older ones are for `proofpool audit`. */
const MAX_EPOCHS = 100;
const STATUS = ['none', 'committed', 'finalized'] as const;

interface CommitArgs {
  epoch: bigint;
  epochHash: Hex;
  commit: {
    epoch: bigint;
    shareRoot: Hex;
    rewardRoot: Hex;
    totalCumulative: bigint;
    blocksHash: Hex;
    paramsHash: Hex;
    dataHash: Hex;
    prevEpochHash: Hex;
  };
}

interface Row {
  epoch: number;
  field: string;
  api: string;
  chain: string;
  ok: boolean;
}

export const auditor: Page = async (view) => {
  replace(view, h('p', { class: 'muted' }, 'Loading the epochs…'));
  const [info, epochs, config] = await Promise.all([settle(chain()), settle(api.epochs(MAX_EPOCHS)), siteConfig()]);
  if (info instanceof Error) {
    replace(view, h('h1', {}, 'Auditor'), errorBox('The deployment (/api/v1/chain) is unavailable', info));
    return;
  }
  const results = h('div', { 'data-testid': 'audit-results' });
  const rpcInput = h('input', {
    name: 'rpc',
    value: config.rpcUrl,
    placeholder: 'https://… (a JSON-RPC endpoint of the chain)',
    'aria-label': 'RPC URL',
    spellcheck: 'false',
    'data-testid': 'audit-rpc',
  });
  const run = async (reader: Reader | null) => {
    if (!reader) {
      replace(results, h('div', { class: 'status warn', 'data-testid': 'audit-summary', 'data-state': 'no-source' }, 'Enter an RPC URL or connect a wallet to read the contract.'));
      return;
    }
    if (epochs instanceof Error) {
      replace(results, errorBox('The epochs are unavailable', epochs, 'audit-summary'));
      return;
    }
    replace(results, h('p', { class: 'muted' }, 'Reading the contract…'));
    try {
      replace(results, ...(await compare(reader, info, epochs.items, config)));
    } catch (e) {
      replace(
        results,
        h('div', { class: 'status bad', 'data-testid': 'audit-summary', 'data-state': 'error' }, `Could not read the contract: ${describe(e)}`),
      );
    }
  };
  const viemChain = chainFor(info.chainId, config);
  const origin = window.location.origin;
  const command = h('pre', { 'data-testid': 'audit-command' });
  const showCommand = (rpc: string) => {
    command.textContent = `proofpool audit --api-url ${origin} \\\n  --rpc-url ${rpc || '<L2 RPC URL>'} \\\n  --distributor ${info.distributor}`;
  };
  showCommand(config.rpcUrl);
  const form = h(
    'form',
    {
      class: 'source',
      onsubmit: (e: Event) => {
        e.preventDefault();
        const url = rpcInput.value.trim();
        setRpcOverride(url);
        showCommand(url);
        void run(url ? rpcReader({ ...config, rpcUrl: url }, viemChain) : null);
      },
    },
    rpcInput,
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'audit-run' }, 'Compare with the chain'),
  );
  const walletButton = h('button', { type: 'button', hidden: true, 'data-testid': 'audit-wallet' }, 'Read through my wallet');
  void discoverWallets().then((ws) => {
    const w = ws[0];
    if (!w) return;
    walletButton.hidden = false;
    walletButton.textContent = `Read through ${w.info.name}`;
    walletButton.onclick = () => void run(walletReader(w.provider, viemChain));
  });
  replace(
    view,
    h('h1', {}, 'Auditor'),
    deploymentLine(info, config),
    h(
      'p',
      {},
      'Each settled epoch is committed to the distributor contract: the roots of its share and reward trees, the total owed, and hashes of the paid blocks, the PPLNS parameters, the epoch file and the previous epoch. Below, what this pool\'s API says next to what the contract recorded (its EpochCommitted events, checked against the stored epoch hash).',
    ),
    section('Compare with the chain', form, walletButton, results),
    section(
      'Run the full audit',
      h(
        'p',
        {},
        'This page only checks that the API and the chain agree. ',
        h('code', {}, 'proofpool audit'),
        ' recomputes everything from the published epoch files: every share\'s header and proof-of-work, the share tree, PPLNS over the whole share history, the rewards, both roots and the blocks hash, and compares them with the chain\'s commits and hash chain. It exits non-zero on any mismatch.',
      ),
      command,
      h(
        'p',
        { class: 'muted' },
        'Add --btc-rpc-url URL --btc-cookie FILE to also check every paid block and its coinbase value against your own bitcoind, and --from N / --to N to limit the report. Epoch files download from ',
        h('code', {}, `${origin}/api/v1/epochs/<N>/file`),
        '; their keccak256 is the committed dataHash.',
      ),
    ),
  );
  if (config.rpcUrl) void run(rpcReader(config, viemChain));
};

async function compare(reader: Reader, info: ChainInfo, epochs: Epoch[], config: SiteConfig): Promise<HTMLElement[]> {
  const chainId = await reader.getChainId();
  if (chainId !== info.chainId) {
    return [
      h(
        'div',
        { class: 'status bad', 'data-testid': 'audit-summary', 'data-state': 'error' },
        `That endpoint is on chain ${chainId}, but the pool pays on chain ${info.chainId}.`,
      ),
    ];
  }
  const address = info.distributor as `0x${string}`;
  const read = <T>(functionName: string, args: unknown[] = []) =>
    reader.readContract({ address, abi: distributorAbi, functionName, args }) as Promise<T>;
  const [lastCommitted, lastFinalized, finalizedRoot, logs] = await Promise.all([
    read<bigint>('lastCommittedEpoch'),
    read<bigint>('lastFinalizedEpoch'),
    read<Hex>('finalizedRewardRoot'),
    reader.getLogs({ address, event: committedEvent, fromBlock: BigInt(config.fromBlock), toBlock: 'latest' }),
  ]);
  // A vetoed epoch number is committed again later: the newest event wins,
  // and it must hash to what the contract stores.
  const byEpoch = new Map<number, { args: CommitArgs; tx: Hex | null }>();
  for (const l of logs) {
    const args = (l as unknown as { args: CommitArgs }).args;
    byEpoch.set(Number(args.epoch), { args, tx: l.transactionHash });
  }
  const rows: Row[] = [];
  const onChain = await Promise.all(
    epochs.map(async (e) => {
      if (!byEpoch.has(e.epoch)) return { stored: null, status: 0 };
      const [stored, status] = await Promise.all([read<Hex>('epochHash', [BigInt(e.epoch)]), read<number>('epochStatus', [BigInt(e.epoch)])]);
      return { stored, status: Number(status) };
    }),
  );
  const eq = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  epochs.forEach((e, i) => {
    const log = byEpoch.get(e.epoch);
    const { stored, status } = onChain[i];
    const chainStatus = STATUS[status] ?? `unknown (${status})`;
    if (!log) {
      // A closed epoch is settled but not yet sent: that is expected.
      rows.push({ epoch: e.epoch, field: 'status', api: e.status, chain: 'not committed', ok: e.status === 'closed' });
      return;
    }
    const c = log.args.commit;
    rows.push({ epoch: e.epoch, field: 'status', api: e.status, chain: chainStatus, ok: e.status === chainStatus });
    rows.push({
      epoch: e.epoch,
      field: 'epoch hash',
      api: '(stored by the contract)',
      chain: `${log.args.epochHash}${stored && !eq(stored, log.args.epochHash) ? ` ≠ stored ${stored}` : ''}`,
      ok: stored !== null && eq(stored, log.args.epochHash),
    });
    const fields: [string, string, string][] = [
      ['share root', e.shareRoot, c.shareRoot],
      ['reward root', e.rewardRoot, c.rewardRoot],
      ['total owed', e.totalCumulative, c.totalCumulative.toString()],
      ['blocks hash', e.blocksHash, c.blocksHash],
      ['params hash', e.paramsHash, c.paramsHash],
      ['data hash', e.dataHash, c.dataHash],
      ['prev epoch hash', e.prevEpochHash, c.prevEpochHash],
    ];
    for (const [field, a, b] of fields) rows.push({ epoch: e.epoch, field, api: a, chain: b, ok: eq(a, b) });
    if (e.commitTx && log.tx) rows.push({ epoch: e.epoch, field: 'commit tx', api: e.commitTx, chain: log.tx, ok: eq(e.commitTx, log.tx) });
  });
  const apiFinal = epochs.find((e) => e.status === 'finalized');
  const heads: Row[] = [
    {
      epoch: 0,
      field: 'newest finalized epoch',
      api: apiFinal ? String(apiFinal.epoch) : 'none',
      chain: String(lastFinalized),
      ok: BigInt(apiFinal?.epoch ?? 0) === lastFinalized,
    },
    {
      epoch: 0,
      field: 'finalizedRewardRoot()',
      api: apiFinal?.rewardRoot ?? 'none',
      chain: finalizedRoot,
      ok: apiFinal ? eq(apiFinal.rewardRoot, finalizedRoot) : /^0x0+$/.test(finalizedRoot),
    },
  ];
  const bad = [...heads, ...rows].filter((r) => !r.ok);
  const committedCount = epochs.filter((e) => byEpoch.has(e.epoch)).length;
  const summary = h(
    'div',
    {
      class: `status ${bad.length ? 'bad' : 'ok'}`,
      'data-testid': 'audit-summary',
      'data-state': bad.length ? 'mismatch' : 'match',
    },
    bad.length
      ? `${bad.length} of ${heads.length + rows.length} values differ between the API and the chain (marked ✗ below).`
      : `All ${heads.length + rows.length} values agree: ${committedCount} committed epochs (newest committed on-chain: #${lastCommitted}) match their EpochCommitted events and stored hashes, and the finalized root is the API's epoch #${lastFinalized}.`,
  );
  const mark = (ok: boolean) => h('span', { class: ok ? 'ok-mark' : 'bad-mark' }, ok ? '✓' : '✗');
  const row = (r: Row, first: boolean, span: number) =>
    h(
      'tr',
      { class: r.ok ? '' : 'mismatch', 'data-match': r.ok ? 'yes' : 'no' },
      first ? h('td', { rowspan: span }, r.epoch ? `#${r.epoch}` : 'heads') : null,
      h('td', {}, r.field),
      h('td', {}, h('code', {}, r.api)),
      h('td', {}, h('code', {}, r.chain)),
      h('td', {}, mark(r.ok)),
    );
  const groups = new Map<number, Row[]>();
  for (const r of [...heads, ...rows]) groups.set(r.epoch, [...(groups.get(r.epoch) ?? []), r]);
  const body = [...groups.values()].flatMap((g) => g.map((r, i) => row(r, i === 0, g.length)));
  return [
    summary,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'audit', 'data-testid': 'audit-table' },
        h('thead', {}, h('tr', {}, ['Epoch', 'Field', 'API', 'Contract', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, body),
      ),
    ),
  ];
}
