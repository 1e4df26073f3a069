// The dashboard: pool hashrate, miners, blocks with explorer links, epochs
// with their on-chain transactions. Refreshes every 30 seconds.

import { api, chain } from '../api';
import { hashrateChart } from '../chart';
import { siteConfig } from '../config';
import { extLink, h, link, replace, section, stat, table } from '../dom';
import { ago, btc, duration, hashrate, short, time, tokenAmount } from '../format';
import { badge, deploymentLine, errorBox, settle, txCell, type Page } from '../page';

const REFRESH_MS = 30_000;

export const dashboard: Page = async (view, _params, ctx) => {
  replace(view, h('p', { class: 'muted' }, 'Loading the pool…'));
  const draw = async () => {
    const [summary, series, blocks, epochs, miners, info, config] = await Promise.all([
      settle(api.summary()),
      settle(api.hashrate()),
      settle(api.blocks()),
      settle(api.epochs()),
      settle(api.miners()),
      settle(chain()),
      siteConfig(),
    ]);
    const token = info instanceof Error ? null : info.token;
    const nowS = Math.floor(Date.now() / 1000);

    const stats =
      summary instanceof Error
        ? errorBox('The pool summary is unavailable', summary)
        : h(
            'div',
            { class: 'stats' },
            stat('Pool hashrate', hashrate(summary.hashrate), `last ${summary.hashrate.windowSecs / 60} min`, 'pool-hashrate'),
            stat('Miners', String(summary.miners), `${summary.activeMiners} active now`, 'miners-count'),
            stat('Workers', String(summary.workers), `${summary.activeWorkers} active now`),
            stat(
              'Current epoch',
              summary.currentEpoch ? `#${summary.currentEpoch.number}` : '—',
              summary.currentEpoch
                ? `${summary.currentEpoch.shares} shares · ends in ${duration(Math.max(0, summary.currentEpoch.endUnix - nowS))}`
                : 'the pool has not started',
            ),
            stat(
              'Epochs',
              summary.lastFinalizedEpoch ? `#${summary.lastFinalizedEpoch}` : '—',
              `finalized · #${summary.lastCommittedEpoch ?? '—'} committed · #${summary.lastSettledEpoch ?? '—'} settled`,
            ),
            stat('Blocks found', String(summary.blocksFound), summary.lastBlock ? `last at height ${summary.lastBlock.height}` : 'none yet'),
            stat(
              'Payout',
              summary.scheme ? summary.scheme.toUpperCase() : '—',
              summary.nextCreditUnix
                ? `next credit when epoch #${summary.currentEpoch?.number ?? '—'} ends, in ${duration(Math.max(0, summary.nextCreditUnix - nowS))}`
                : summary.scheme === 'pplns'
                  ? 'blocks pay their PPLNS window once mature'
                  : 'no epoch settled yet',
              'pool-scheme',
            ),
            stat(
              'Luck',
              summary.luck?.percent != null ? `${summary.luck.percent}%` : '—',
              summary.luck
                ? `${summary.luck.blocksFound} found · ${summary.luck.expectedBlocks} expected · epochs #${summary.luck.firstEpoch}–#${summary.luck.lastEpoch}`
                : 'no epoch settled yet',
              'pool-luck',
            ),
            stat(
              'Network',
              summary.network?.height ? `height ${summary.network.height}` : '—',
              summary.network ? `difficulty ${summary.network.difficulty}` : '',
            ),
          );

    const chart = series instanceof Error ? errorBox('The hashrate series is unavailable', series) : hashrateChart(series, 'pool-chart');

    const blockTable =
      blocks instanceof Error
        ? errorBox('The blocks are unavailable', blocks)
        : table(
            ['Height', 'Hash', 'Status', 'Confirmations', 'Reward', 'Finder', 'Found', 'Paid in epoch'],
            blocks.items.map((b) => [
              extLink(b.explorerUrl, String(b.height)),
              extLink(b.explorerUrl, h('code', { title: b.hash }, short(b.hash, 8))),
              b.status === 'rejected' && b.rejectReason ? h('span', { title: b.rejectReason }, badge(b.status)) : badge(b.status),
              String(b.confirmations),
              btc(b.rewardSats),
              h('span', {}, link(`/miner/${b.finder}`, short(b.finder)), b.worker ? ` · ${b.worker}` : ''),
              h('span', { title: time(b.foundMs) }, ago(b.foundMs)),
              b.paidEpoch ? `#${b.paidEpoch}` : '—',
            ]),
            'No blocks found yet.',
            'blocks-table',
          );

    const epochTable =
      epochs instanceof Error
        ? errorBox('The epochs are unavailable', epochs)
        : table(
            ['Epoch', 'Status', 'Shares', 'Total owed', 'Reward root', 'Commit tx', 'Finalize tx', 'File'],
            epochs.items.map((e) => [
              `#${e.epoch}`,
              badge(e.status),
              String(e.shareCount),
              tokenAmount(e.totalCumulative, token),
              h('code', { title: e.rewardRoot }, short(e.rewardRoot, 8)),
              txCell(config, e.commitTx),
              txCell(config, e.finalizeTx),
              h('a', { href: e.fileUrl, download: `epoch-${e.epoch}.json` }, 'JSON'),
            ]),
            'No epoch has been settled yet.',
            'epochs-table',
          );

    const minerTable =
      miners instanceof Error
        ? errorBox('The miners are unavailable', miners)
        : table(
            ['Miner', 'Workers', 'Hashrate', 'Last seen'],
            miners.items.map((m) => [
              link(`/miner/${m.address}`, h('code', {}, m.address)),
              String(m.workers),
              hashrate(m.hashrate),
              ago(m.lastSeenMs),
            ]),
            'No miner has connected yet.',
            'miners-table',
          );

    replace(
      view,
      h('h1', {}, 'Pool'),
      info instanceof Error ? null : deploymentLine(info, config),
      stats,
      section('Hashrate', chart),
      section('Blocks', blockTable),
      section('Epochs', epochTable),
      section('Miners', minerTable),
    );
  };
  await draw();
  const timer = setInterval(() => void draw(), REFRESH_MS);
  ctx.onDispose(() => clearInterval(timer));
};
