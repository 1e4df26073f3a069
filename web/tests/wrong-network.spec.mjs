// The wrong-network state in real Chromium, with a legacy `window.ethereum`
// wallet (no EIP-6963) on chain 1: the panel says so; a refused switch (4001)
// and a chain the wallet does not know (4902, with no RPC URL configured to
// add it) each keep it there with a clear note; an accepted switch leads to
// the claimable amount.

import { claimState, env, expectText, injectWallet, run } from './lib.mjs';

const miner = env('MINER');
const chainId = Number(env('CHAIN_ID'));

await run('wrong-network', 120_000, async ({ newPage, step, shot, base }) => {
  const page = await newPage();
  await injectWallet(page, { account: miner, chainId: '0x1', eip6963: false });

  await step('a wallet on another chain is told so', async () => {
    await page.goto(`${base}/miner/${miner}`);
    await claimState(page, 'connect');
    const button = page.getByTestId('connect-wallet');
    expectText(await button.innerText(), 'Browser wallet');
    await button.click();
    const text = await claimState(page, 'wrong-network');
    expectText(text, `Wrong network: Browser wallet is on chain 1, but the pool pays on chain ${chainId}`);
    if ((await page.getByTestId('claim-button').count()) !== 0) throw new Error('a claim button on the wrong network');
    await shot(page, 'wrong-network-01.png');
  });

  await step('a refused switch keeps the wrong-network state', async () => {
    await page.getByTestId('switch-network').click();
    await page.getByTestId('claim-note').filter({ hasText: 'You declined the network switch' }).waitFor();
    await claimState(page, 'wrong-network');
    await shot(page, 'wrong-network-02-refused.png');
  });

  await step('an unknown chain without an RPC URL to add it', async () => {
    await page.evaluate(() => {
      window.__wallet.switchAnswer = 'unknown';
    });
    await page.getByTestId('switch-network').click();
    await page.getByTestId('claim-note').filter({ hasText: `does not know chain ${chainId}` }).waitFor();
    await claimState(page, 'wrong-network');
    const calls = await page.evaluate(() => window.__wallet.calls);
    if (calls.includes('wallet_addEthereumChain')) throw new Error('tried to add the chain without an RPC URL');
    await shot(page, 'wrong-network-03-unknown-chain.png');
  });

  await step('an accepted switch shows the claimable amount', async () => {
    await page.evaluate(() => {
      window.__wallet.switchAnswer = 'accept';
    });
    await page.getByTestId('switch-network').click();
    const text = await claimState(page, 'ready');
    expectText(text, 'claimable now');
    await shot(page, 'wrong-network-04-switched.png');
  });
});
