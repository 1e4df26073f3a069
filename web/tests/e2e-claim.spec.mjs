// The browser step of the end-to-end test (cli/tests/end_to_end.rs), on the
// web app that `proofpool devnet` serves: miner A opens its page, connects an
// injected EIP-6963 wallet (its account is unlocked on anvil), claims, and
// the page reports success; the transaction was sent from the miner, and the
// token balance rose by exactly the claimable amount the API's proof gives.

import { createPublicClient, erc20Abi, formatUnits, http } from 'viem';
import { claimState, env, expectText, injectWallet, run } from './lib.mjs';

const miner = env('MINER');
const chainId = `0x${Number(env('CHAIN_ID')).toString(16)}`;
const anvil = createPublicClient({ transport: http(env('ANVIL_URL'), { timeout: 15_000 }) });

await run('e2e-claim', 120_000, async ({ newPage, step, shot, base }) => {
  const info = await (await fetch(`${base}/api/v1/chain`)).json();
  const token = info.token;
  if (!token) throw new Error(`the API has no token info: ${JSON.stringify(info)}`);
  const proof = await (await fetch(`${base}/api/v1/epochs/latest/proof/${miner}`)).json();
  const cumulative = BigInt(proof.cumulativeAmount);
  const shown = (units) => `${formatUnits(units, token.decimals)} ${token.symbol}`;
  const balance = () =>
    anvil.readContract({ address: token.address, abi: erc20Abi, functionName: 'balanceOf', args: [miner] });

  const page = await newPage();
  await injectWallet(page, { account: miner, chainId, eip6963: true });

  await step('the miner page offers the claimable amount once the wallet is connected', async () => {
    await page.goto(`${base}/miner/${miner}`);
    await claimState(page, 'connect');
    await page.getByTestId('connect-wallet').click();
    const ready = await claimState(page, 'ready');
    expectText(ready, `${shown(cumulative)} claimable now`);
    await shot(page, 'e2e-01-ready.png');
  });

  await step('the claim is mined and pays exactly the claimable amount', async () => {
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
    await shot(page, 'e2e-02-claimed.png');
    console.log(`e2e-claim: epoch ${proof.epoch}, tx ${hash}, balance ${before} → ${after}`);
  });
});
