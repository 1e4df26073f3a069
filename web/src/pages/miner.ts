// A miner's page: workers, hashrate chart, pending and claimable credits,
// what the contract has paid (with the claim transactions), the claim panel
// and "verify my shares" (inclusion proofs checked in the browser).

import { getAddress, isAddress, type AbiEvent } from 'viem';
import { api, ApiError, chain, type ChainInfo, type MinerDetail } from '../api';
import { hashrateChart } from '../chart';
import { chainFor, describe, distributorAbi, rpcReader, type Reader } from '../chain';
import { ClaimPanel } from '../claim';
import { siteConfig, type SiteConfig } from '../config';
import { h, replace, section, stat, table } from '../dom';
import { ago, btc, hashrate, time, tokenAmount } from '../format';
import { deploymentLine, errorBox, settle, txCell, type Page } from '../page';
import { verifyPanel } from '../verify';

const claimedEvent = distributorAbi.find((x) => x.type === 'event' && x.name === 'Claimed') as AbiEvent;

export const miner: Page = async (view, [raw], ctx) => {
  const input = decodeURIComponent(raw ?? '');
  if (!isAddress(input, { strict: false })) {
    replace(view, h('h1', {}, 'Miner'), h('div', { class: 'status bad' }, `"${input}" is not an EVM address (0x followed by 40 hex digits).`));
    return;
  }
  const account = getAddress(input);
  replace(view, h('p', { class: 'muted' }, `Loading ${account}…`));
  const [detail, series, info, config] = await Promise.all([
    settle(api.miner(account)),
    settle(api.hashrate(account)),
    settle(chain()),
    siteConfig(),
  ]);
  const title = h('h1', {}, 'Miner ', h('code', { 'data-testid': 'miner-address' }, account));
  if (detail instanceof ApiError && detail.status === 404) {
    replace(view, title, h('div', { class: 'status info', 'data-testid': 'miner-unknown' }, detail.message));
    return;
  }
  if (detail instanceof Error) {
    replace(view, title, errorBox('The miner is unavailable', detail));
    return;
  }
  if (info instanceof Error) {
    replace(view, title, errorBox('The deployment (/api/v1/chain) is unavailable, so nothing can be claimed', info));
    return;
  }
  const token = info.token;
  const history = h('div', { 'data-testid': 'claim-history' });
  let current = detail;
  const refresh = async () => {
    const fresh = await settle(api.miner(account));
    if (fresh instanceof Error) return;
    current = fresh;
    replace(stats, ...statCards(fresh, info));
  };
  let reader: Reader | null = rpcReader(config, chainFor(info.chainId, config));
  const drawHistory = () => void claimHistory(history, reader, account, info, config, current);
  const panel = new ClaimPanel({
    account,
    info,
    config,
    onClaimed: () => void refresh().then(drawHistory),
    onReader: (r) => {
      if (!config.rpcUrl) {
        reader = r;
        drawHistory();
      }
    },
  });
  ctx.onDispose(() => panel.dispose());
  const stats = h('div', { class: 'stats' }, ...statCards(detail, info));
  drawHistory();

  replace(
    view,
    title,
    h(
      'p',
      { class: 'muted' },
      `First seen ${time(detail.firstSeenMs)} · last seen ${ago(detail.lastSeenMs)}`,
    ),
    stats,
    panel.el,
    section('Hashrate', series instanceof Error ? errorBox('The hashrate series is unavailable', series) : hashrateChart(series, 'miner-chart')),
    section(
      `Workers (${detail.workerCount})`,
      table(
        ['Worker', 'Hashrate', 'Shares (window)', 'Last share', 'Last seen'],
        detail.workers.map((w) => [
          w.name || h('em', {}, '(no name)'),
          hashrate(w.hashrate),
          String(w.hashrate.shares),
          ago(w.lastShareMs),
          ago(w.lastSeenMs),
        ]),
        'No worker has authorized with this address.',
        'workers-table',
      ),
    ),
    section(
      'Credits per epoch',
      h(
        'p',
        { class: 'muted' },
        'Under PPLNS a found block credits its window in the first epoch settled after it matures; under PPS and FPPS each epoch credits the expected value of your shares when it closes, block or no block. Credits are pending until their epoch is finalized on-chain, then claimable.',
      ),
      table(
        ['Epoch', 'Credit', 'Amount', 'State'],
        detail.credits.perEpoch.map((c) => [
          `#${c.epoch}`,
          btc(c.sats),
          tokenAmount(c.amount, token),
          h('span', { class: `badge ${c.claimable ? 'finalized' : 'committed'}` }, c.claimable ? 'claimable' : 'pending'),
        ]),
        'No credits yet.',
        'credits-table',
      ),
    ),
    section('Claim history', history),
    section(
      'Verify my shares',
      verifyPanel(
        account,
        info,
        config,
        detail.sharesPerEpoch.map((e) => e.epoch).sort((a, b) => b - a),
        () => reader,
      ),
    ),
    section(
      'Shares per epoch',
      table(
        ['Epoch', 'Shares', 'Work'],
        detail.sharesPerEpoch.map((e) => [`#${e.epoch}`, String(e.shares), e.work]),
        'No shares in recent epochs.',
      ),
    ),
    deploymentLine(info, config),
  );
};

function statCards(d: MinerDetail, info: ChainInfo): HTMLElement[] {
  const token = info.token;
  const c = d.credits;
  return [
    stat('Hashrate', hashrate(d.hashrate), `last ${d.hashrate.windowSecs / 60} min`, 'miner-hashrate'),
    stat('Workers', String(d.workerCount), `${d.workers.filter((w) => w.lastShareMs).length} active now`),
    stat('Pending', tokenAmount(c.pendingAmount, token), `${btc(c.pendingSats)} in epochs not yet finalized`, 'credits-pending'),
    stat(
      'Claimable total',
      tokenAmount(c.claimableAmount, token),
      c.claimableEpoch ? `cumulative at finalized epoch #${c.claimableEpoch}` : 'no epoch finalized yet',
      'credits-claimable',
    ),
    d.onChain
      ? stat('Claimed on-chain', tokenAmount(d.onChain.claimed, token), `${tokenAmount(d.onChain.unclaimed, token)} left to claim`, 'claimed-onchain')
      : stat('Claimed on-chain', '—', d.onChainError ?? 'the API does not read the chain; connect a wallet below', 'claimed-onchain'),
  ];
}

/** The `Claimed` events of `account`, read from the chain when a reader is available. */
async function claimHistory(
  el: HTMLElement,
  reader: Reader | null,
  account: `0x${string}`,
  info: ChainInfo,
  config: SiteConfig,
  detail: MinerDetail,
): Promise<void> {
  const total = detail.onChain ? `The contract has paid ${tokenAmount(detail.onChain.claimed, info.token)} to this address so far. ` : '';
  if (!reader) {
    replace(
      el,
      h('p', { class: 'muted' }, `${total}Connect a wallet (or set "rpcUrl" in config.json) to list the claim transactions.`),
    );
    return;
  }
  replace(el, h('p', { class: 'muted' }, 'Reading claims from the chain…'));
  try {
    const logs = await reader.getLogs({
      address: info.distributor as `0x${string}`,
      event: claimedEvent,
      args: { account },
      fromBlock: BigInt(config.fromBlock),
      toBlock: 'latest',
    });
    const rows = logs
      .slice()
      .reverse()
      .map((l) => {
        const args = (l as unknown as { args: { amount: bigint; cumulativeAmount: bigint } }).args;
        return [
          String(l.blockNumber),
          tokenAmount(args.amount, info.token),
          tokenAmount(args.cumulativeAmount, info.token),
          txCell(config, l.transactionHash),
        ];
      });
    replace(
      el,
      h('p', { class: 'muted' }, total),
      table(['Block', 'Paid', 'Claimed total after', 'Transaction'], rows, 'No claims yet.', 'claims-table'),
    );
  } catch (e) {
    replace(el, h('p', { class: 'muted' }, `${total}The claim transactions could not be read: ${describe(e)}`));
  }
}
