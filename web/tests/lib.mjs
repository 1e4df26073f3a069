// Shared pieces of the browser tests: Debian's Chromium through
// playwright-core, an EIP-1193 wallet injected into the page that forwards to
// anvil (where the miner's account is unlocked), screenshots, and time limits.
//
// The Rust side (tests/tests/web_chromium.rs; cli/tests/end_to_end.rs on a
// running `proofpool devnet`) starts anvil, the contracts, a settled and
// finalized epoch and the API serving web/dist, and passes:
//   WEB_URL      the API's base URL (it serves the app)
//   ANVIL_URL    anvil's JSON-RPC URL
//   MINER        the miner's address (an unlocked anvil account)
//   CHAIN_ID     the deployment's chain id
//   ARTIFACTS    where screenshots go

import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

/** A required environment variable. */
export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run this through tests/tests/web_chromium.rs or cli/tests/end_to_end.rs)`);
  return v;
}

/** Chromium's flags on this machine: no sandbox as root, no network beyond loopback. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/**
 * Runs `body(ctx)` with a fresh Chromium profile, prints one line per step
 * and a closing `N passed, N failed` line, and exits non-zero on failure or
 * after `limitMs`. The browser is always closed and its profile removed.
 */
export async function run(name, limitMs, body) {
  const started = Date.now();
  const artifacts = env('ARTIFACTS');
  await mkdir(artifacts, { recursive: true });
  const profile = await mkdtemp(join(tmpdir(), 'proofpool-chromium-'));
  let context = null;
  let passed = 0;
  const pageErrors = [];
  // The API sends a Content-Security-Policy; anything the app needs that
  // it forbids shows up here, and fails the run.
  const cspViolations = [];
  const killer = setTimeout(() => {
    console.error(`${name}: gave up after ${limitMs} ms`);
    process.exit(2);
  }, limitMs);
  const step = async (label, fn) => {
    const t = Date.now();
    await fn();
    passed += 1;
    console.log(`${name}: ok ${label} (${Date.now() - t} ms)`);
  };
  try {
    // Chromium now and then dies at launch on a loaded CI machine (seen
    // once: SIGSEGV before the first page); a launch is tried three times,
    // each failure logged, before the run fails.
    for (let attempt = 1; context === null; attempt += 1) {
      try {
        context = await chromium.launchPersistentContext(profile, {
          executablePath: '/usr/bin/chromium',
          headless: true,
          args: FLAGS,
          timeout: 60_000,
          viewport: { width: 1280, height: 900 },
        });
      } catch (e) {
        if (attempt >= 3) throw e;
        console.log(`${name}: Chromium failed to launch (attempt ${attempt}): ${String(e).split('\n')[0]}`);
      }
    }
    context.setDefaultTimeout(20_000);
    const newPage = async () => {
      const page = await context.newPage();
      page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error') console.log(`${name}: [browser console] ${m.text()}`);
        if (m.text().includes('Content Security Policy')) cspViolations.push(`${page.url()}: ${m.text()}`);
      });
      page.on('response', (r) => {
        if (r.request().resourceType() === 'document' && r.ok() && !r.headers()['content-security-policy'])
          pageErrors.push(`${r.url()}: served without a Content-Security-Policy`);
      });
      return page;
    };
    const shot = async (page, file) => {
      await page.screenshot({ path: join(artifacts, file), fullPage: true });
    };
    await body({ context, newPage, step, shot, base: env('WEB_URL') });
    if (pageErrors.length) throw new Error(`uncaught errors in the page:\n${pageErrors.join('\n')}`);
    if (cspViolations.length) throw new Error(`the Content-Security-Policy blocked:\n${cspViolations.join('\n')}`);
    console.log(`${name}: done in ${Date.now() - started} ms`);
    console.log(`${passed} passed, 0 failed`);
  } catch (e) {
    console.error(`${name}: FAILED after ${passed} steps: ${e?.stack ?? e}`);
    console.log(`${passed} passed, 1 failed`);
    process.exitCode = 1;
  } finally {
    clearTimeout(killer);
    await context?.close().catch(() => {});
    await rm(profile, { recursive: true, force: true }).catch(() => {});
  }
}

/** One JSON-RPC call to anvil. */
export async function rpc(method, params = []) {
  const r = await fetch(env('ANVIL_URL'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal: AbortSignal.timeout(15_000),
  });
  return r.json();
}

/**
 * Injects a wallet into `page` before any of its scripts run. It answers
 * accounts and chain id itself and forwards everything else (reads,
 * eth_sendTransaction from the unlocked miner account) to anvil through a
 * binding to this Node process. `window.__wallet` steers it from the test:
 * `rejectNextSend` makes the next eth_sendTransaction fail with 4001, and
 * `switchAnswer` ('accept' | 'reject' | 'unknown') decides
 * wallet_switchEthereumChain.
 *
 * `eip6963: true` announces it by EIP-6963 only; otherwise it is only
 * `window.ethereum` (the legacy fallback).
 */
export async function injectWallet(page, { account, chainId, eip6963 }) {
  await page.exposeFunction('__proofpoolRpc', async (method, params) => {
    const answer = await rpc(method, params);
    return answer.error ? { error: answer.error } : { result: answer.result };
  });
  await page.addInitScript(
    ({ account, chainId, eip6963 }) => {
      const listeners = {};
      const emit = (event, arg) => (listeners[event] ?? []).forEach((f) => f(arg));
      const control = { rejectNextSend: false, switchAnswer: 'reject', chainId, calls: [] };
      window.__wallet = control;
      const fail = (code, message, data) => Object.assign(new Error(message), { code, data });
      const provider = {
        async request({ method, params }) {
          control.calls.push(method);
          switch (method) {
            case 'eth_requestAccounts':
            case 'eth_accounts':
              return [account];
            case 'eth_chainId':
              return control.chainId;
            case 'net_version':
              return String(Number.parseInt(control.chainId, 16));
            case 'wallet_switchEthereumChain':
              if (control.switchAnswer === 'reject') throw fail(4001, 'User rejected the request.');
              if (control.switchAnswer === 'unknown') throw fail(4902, 'Unrecognized chain ID.');
              control.chainId = params[0].chainId;
              setTimeout(() => emit('chainChanged', control.chainId), 0);
              return null;
            case 'wallet_addEthereumChain':
              throw fail(4001, 'User rejected the request.');
            case 'eth_sendTransaction':
              if (control.rejectNextSend) {
                control.rejectNextSend = false;
                throw fail(4001, 'User rejected the request.');
              }
              break;
            default:
              break;
          }
          const answer = await window.__proofpoolRpc(method, params ?? []);
          if (answer.error) throw fail(answer.error.code, answer.error.message, answer.error.data);
          return answer.result;
        },
        on(event, f) {
          (listeners[event] ??= []).push(f);
        },
        removeListener(event, f) {
          listeners[event] = (listeners[event] ?? []).filter((x) => x !== f);
        },
      };
      if (eip6963) {
        const info = Object.freeze({
          uuid: '5e1f1c1e-0000-4000-8000-000000000001',
          name: 'Test Wallet',
          icon: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 10 10'%3E%3Ccircle cx='5' cy='5' r='5' fill='%23f7931a'/%3E%3C/svg%3E",
          rdns: 'dev.proofpool.testwallet',
        });
        const announce = () =>
          window.dispatchEvent(new CustomEvent('eip6963:announceProvider', { detail: Object.freeze({ info, provider }) }));
        window.addEventListener('eip6963:requestProvider', announce);
        announce();
      } else {
        window.ethereum = provider;
      }
    },
    { account, chainId, eip6963 },
  );
}

/** Waits for the claim panel to reach `state` and returns its text. */
export async function claimState(page, state, timeout = 30_000) {
  const status = page.locator(`[data-testid="claim-status"][data-state="${state}"]`);
  try {
    await status.waitFor({ timeout });
  } catch (e) {
    const now = await page
      .locator('[data-testid="claim-status"]')
      .evaluate((el) => `${el.dataset.state}: ${el.textContent}`)
      .catch(() => 'no claim panel');
    throw new Error(`the claim panel did not reach "${state}" (it shows ${now})`, { cause: e });
  }
  return status.innerText();
}

/** Throws unless `text` contains `part`. */
export function expectText(text, part) {
  if (!text.includes(part)) throw new Error(`expected ${JSON.stringify(part)} in ${JSON.stringify(text)}`);
}
