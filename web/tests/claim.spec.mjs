// Claiming from the miner page in real Chromium, with an injected EIP-6963
// wallet whose account is the miner's (unlocked on anvil):
//   no wallet → a reverted claim (a tampered proof, decoded into words) →
//   the user rejects the transaction → the claim goes through, its receipt is
//   checked and the token balance rises by exactly the claimable amount →
//   after a reload, "already claimed"; "verify my shares" (good, foreign,
//   unknown and forged shares). Then the dashboard and the auditor page (API
//   roots next to the contract's) are checked and photographed.

import { createPublicClient, encodeAbiParameters, erc20Abi, formatUnits, http, keccak256 } from 'viem';
import { claimState, env, expectText, injectWallet, run } from './lib.mjs';

const miner = env('MINER');
const chainId = `0x${Number(env('CHAIN_ID')).toString(16)}`;
const anvil = createPublicClient({ transport: http(env('ANVIL_URL'), { timeout: 15_000 }) });

await run('claim', 240_000, async ({ newPage, step, shot, base }) => {
  const info = await (await fetch(`${base}/api/v1/chain`)).json();
  const token = info.token;
  if (!token) throw new Error(`the API has no token info: ${JSON.stringify(info)}`);
  const proof = await (await fetch(`${base}/api/v1/epochs/latest/proof/${miner}`)).json();
  const cumulative = BigInt(proof.cumulativeAmount);
  const shown = (units) => `${formatUnits(units, token.decimals)} ${token.symbol}`;
  const balance = () =>
    anvil.readContract({ address: token.address, abi: erc20Abi, functionName: 'balanceOf', args: [miner] });

  await step('no wallet', async () => {
    const page = await newPage();
    await page.goto(`${base}/miner/${miner}`);
    const text = await claimState(page, 'no-wallet');
    expectText(text, 'No browser wallet found');
    await shot(page, 'claim-01-no-wallet.png');
    await page.close();
  });

  const page = await newPage();
  await injectWallet(page, { account: miner, chainId, eip6963: true });

  await step('a tampered proof reverts, decoded into words', async () => {
    const tamper = async (route) => {
      const r = await route.fetch();
      const body = await r.json();
      body.cumulativeAmount = (BigInt(body.cumulativeAmount) + 1n).toString();
      await route.fulfill({ response: r, json: body });
    };
    await page.route('**/api/v1/epochs/latest/proof/**', tamper);
    await page.goto(`${base}/miner/${miner}`);
    await claimState(page, 'connect');
    await page.getByTestId('connect-wallet').click();
    const ready = await claimState(page, 'ready');
    expectText(ready, shown(cumulative + 1n));
    await page.getByTestId('claim-button').click();
    const text = await claimState(page, 'reverted');
    expectText(text, 'proof does not verify');
    await shot(page, 'claim-02-reverted.png');
    await page.unroute('**/api/v1/epochs/latest/proof/**', tamper);
  });

  await step('the user rejects the transaction', async () => {
    await page.getByTestId('claim-retry').click();
    const ready = await claimState(page, 'ready');
    expectText(ready, `${shown(cumulative)} claimable now`);
    await page.evaluate(() => {
      window.__wallet.rejectNextSend = true;
    });
    await page.getByTestId('claim-button').click();
    const text = await claimState(page, 'rejected');
    expectText(text, 'You rejected the transaction');
    await shot(page, 'claim-03-rejected.png');
  });

  await step('the claim is mined and pays the claimable amount', async () => {
    const before = await balance();
    await page.getByTestId('claim-button').click();
    const text = await claimState(page, 'success', 60_000);
    const hash = await page.getByTestId('claim-tx').innerText();
    const receipt = await anvil.getTransactionReceipt({ hash });
    if (receipt.status !== 'success') throw new Error(`claim transaction ${hash} reverted`);
    if (receipt.from.toLowerCase() !== miner.toLowerCase()) throw new Error(`sent from ${receipt.from}, not the miner`);
    const after = await balance();
    if (after - before !== cumulative) {
      throw new Error(`the balance rose by ${after - before}, expected ${cumulative}`);
    }
    expectText(text, `Claimed ${shown(cumulative)}`);
    expectText(text, hash);
    expectText(text, `now holds ${shown(after)}`);
    await shot(page, 'claim-04-claimed.png');
    console.log(`claim: tx ${hash}, balance ${before} → ${after}`);
  });

  await step('after a reload: already claimed, with the claim in the history', async () => {
    await page.reload();
    // The wallet used last time reconnects without a prompt.
    const text = await claimState(page, 'already');
    expectText(text, 'Already claimed');
    expectText(text, shown(cumulative));
    await page.getByTestId('claims-table').waitFor();
    const history = await page.getByTestId('claims-table').innerText();
    expectText(history, shown(cumulative));
    await page.getByTestId('claimed-onchain').filter({ hasText: shown(cumulative) }).waitFor();
    await shot(page, 'claim-05-already-claimed.png');
  });

  await step('verify my shares: proofs checked in the browser against the committed roots', async () => {
    // tests/tests/web_chromium.rs stores share i with hash i + 1: i % 3 == 0
    // is the other miner's; shares 0..19 fall in epoch 1, 20..29 in epoch 2.
    const hashOf = (i) => `0x${(i + 1).toString(16).padStart(64, '0')}`;
    const verify = async (text, state) => {
      await page.getByTestId('verify-input').fill(text);
      await page.getByTestId('verify-button').click();
      const summary = page.locator(`[data-testid="verify-summary"][data-state="${state}"]`);
      await summary.waitFor({ timeout: 30_000 });
      return [await summary.innerText(), await page.getByTestId('verify-table').innerText()];
    };
    const rows = async (ok) => page.locator(`[data-testid="verify-table"] [data-ok="${ok}"]`).count();

    // One line as `proofpool watch list` prints it (with its epoch), one
    // bare hash (searched for in the miner's epochs), the other miner's
    // share and a hash nobody mined.
    const unknown = `0x${'ab'.repeat(32)}`;
    let [summary, table] = await verify(
      `${hashOf(1)} epoch 1 included rig1\n${hashOf(23)}\n${hashOf(0)} epoch 1\n${unknown}`,
      'bad',
    );
    expectText(summary, '2 of 4 shares do not verify');
    expectText(table, 'credited to 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC');
    expectText(table, "in none of this miner's");
    if ((await rows(true)) !== 2 || (await rows(false)) !== 2) throw new Error(`verdicts:\n${table}`);
    expectText(table, '#2');
    await shot(page, 'verify-01-mixed.png');

    [summary, table] = await verify(`${hashOf(1)} epoch 1\n${hashOf(23)} epoch 2`, 'ok');
    expectText(summary, 'All 2 shares are in their epochs');
    expectText(summary, 'under the roots the contract committed');

    // A lying API: a share tree of its own (this one leaf alone), leaf,
    // proof and root consistent with each other. Only the contract's
    // committed root shows the lie.
    const forge = async (route) => {
      const r = await route.fetch();
      const body = await r.json();
      const leaf = keccak256(
        keccak256(
          encodeAbiParameters(
            [{ type: 'uint64' }, { type: 'uint64' }, { type: 'address' }, { type: 'uint256' }, { type: 'bytes32' }],
            [BigInt(body.epoch), BigInt(body.seq), body.miner, BigInt(body.work) + 1n, body.shareHash],
          ),
        ),
      );
      await route.fulfill({ response: r, json: { ...body, work: (BigInt(body.work) + 1n).toString(), leaf, proof: [], shareRoot: leaf } });
    };
    await page.route('**/api/v1/epochs/*/shares/*/proof', forge);
    [summary, table] = await verify(`${hashOf(1)} epoch 1`, 'bad');
    expectText(table, 'the contract committed');
    await shot(page, 'verify-02-forged.png');
    await page.unroute('**/api/v1/epochs/*/shares/*/proof', forge);
  });

  await step('dashboard: hashrate chart, miners, blocks with explorer links, epochs', async () => {
    await page.goto(`${base}/`);
    await page.getByTestId('blocks-table').waitFor();
    await page.getByTestId('epochs-table').waitFor();
    await page.getByTestId('pool-chart').locator('svg').waitFor();
    const links = await page.locator('[data-testid="blocks-table"] a[href^="https://mempool.space/block/"]').count();
    if (links < 1) throw new Error('no block links to the explorer');
    expectText(await page.getByTestId('miners-count').innerText(), '2');
    expectText(await page.getByTestId('pool-scheme').innerText(), 'PPLNS');
    expectText(await page.getByTestId('pool-luck').innerText(), 'expected');
    expectText(await page.getByTestId('epochs-table').innerText(), 'finalized');
    await shot(page, 'dashboard.png');
  });

  await step('auditor: the API roots match the contract', async () => {
    await page.goto(`${base}/auditor`);
    await page.getByTestId('audit-rpc').fill(env('ANVIL_URL'));
    await page.getByTestId('audit-run').click();
    const summary = page.locator('[data-testid="audit-summary"][data-state="match"]');
    await summary.waitFor();
    const rows = await page.locator('[data-testid="audit-table"] tr[data-match="yes"]').count();
    const bad = await page.locator('[data-testid="audit-table"] tr[data-match="no"]').count();
    if (bad !== 0 || rows < 10) throw new Error(`audit rows: ${rows} matching, ${bad} not`);
    const command = await page.getByTestId('audit-command').innerText();
    expectText(command, `proofpool audit --api-url ${base}`);
    expectText(command, `--rpc-url ${env('ANVIL_URL')}`);
    await shot(page, 'auditor.png');
  });
});
