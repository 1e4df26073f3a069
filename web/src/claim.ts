// The claim panel on a miner page: find a wallet, connect, get onto the right
// chain, show what is claimable (the cumulative amount at the newest
// finalized epoch minus what the contract says is already claimed), send
// `claim(account, cumulativeAmount, proof)` with the API's proof, and follow
// it to its receipt. Every state it can be in is on its root element as
// `data-state`, for people (the text) and for the browser test (the attribute).

import { erc20Abi, type Chain, type Hex } from 'viem';
import { api, ApiError, type ChainInfo, type Proof } from './api';
import {
  chainFor,
  describe,
  distributorAbi,
  errorCode,
  explainRevert,
  isUserRejection,
  revertOf,
  sendFromWallet,
  walletReader,
  type Reader,
} from './chain';
import type { SiteConfig } from './config';
import { extLink, h, replace } from './dom';
import { short, tokenAmount } from './format';
import {
  authorisedAccounts,
  discoverWallets,
  lastWallet,
  rememberWallet,
  requestAccounts,
  switchChain,
  SwitchError,
  walletChainId,
  type Wallet,
} from './wallet';
import { txUrl } from './config';

type Address = `0x${string}`;

interface Claimable {
  proof: Proof;
  cumulative: bigint;
  claimed: bigint;
  amount: bigint;
}

type State =
  | { kind: 'loading'; text: string }
  | { kind: 'no-wallet' }
  | { kind: 'connect'; note?: string }
  | { kind: 'wrong-network'; walletChain: number; note?: string }
  | { kind: 'nothing'; text: string }
  | { kind: 'already'; cumulative: bigint; claimed: bigint; epoch: number }
  | { kind: 'stale'; text: string }
  | { kind: 'ready'; claim: Claimable }
  | { kind: 'confirm'; claim: Claimable; text: string }
  | { kind: 'mining'; claim: Claimable; hash: Hex }
  | { kind: 'success'; claim: Claimable; hash: Hex; block: bigint; balance: bigint | null }
  | { kind: 'rejected'; claim: Claimable }
  | { kind: 'reverted'; text: string; hash?: Hex }
  | { kind: 'error'; text: string };

/** What the panel needs from its page. */
export interface ClaimOptions {
  /** The miner, who is paid whoever sends the claim. */
  account: Address;
  info: ChainInfo;
  config: SiteConfig;
  /** Called after a claim is mined. */
  onClaimed: () => void;
  /** Hands the page a chain reader through the wallet once on the right chain. */
  onReader: (reader: Reader) => void;
}

const RECEIPT_TIMEOUT_MS = 300_000;

/** The claim panel; `el` is its root. */
export class ClaimPanel {
  readonly el: HTMLElement;
  private state: State = { kind: 'loading', text: 'Looking for a browser wallet…' };
  private wallets: Wallet[] = [];
  private wallet: Wallet | null = null;
  private sender: Address | null = null;
  private reader: Reader | null = null;
  private readonly chain: Chain;
  private busy = false;
  private disposed = false;
  private readonly listeners: (() => void)[] = [];

  constructor(private readonly opts: ClaimOptions) {
    this.chain = chainFor(opts.info.chainId, opts.config);
    this.el = h('section', { class: 'panel claim', 'data-testid': 'claim' });
    this.render();
    void this.start();
  }

  /** Stops listening to the wallet (the page is being left). */
  dispose(): void {
    this.disposed = true;
    for (const off of this.listeners.splice(0)) off();
  }

  private set(state: State): void {
    if (this.disposed) return;
    this.state = state;
    this.render();
  }

  private fmt = (units: bigint): string => tokenAmount(units, this.opts.info.token);

  private async start(): Promise<void> {
    this.wallets = await discoverWallets();
    if (this.wallets.length === 0) return this.set({ kind: 'no-wallet' });
    // Reconnect silently to the wallet used last time if it still trusts this site.
    const last = lastWallet();
    const previous = this.wallets.find((w) => w.info.rdns === last);
    if (previous) {
      const accounts = await authorisedAccounts(previous);
      if (accounts.length > 0) return this.connected(previous, accounts);
    }
    this.set({ kind: 'connect' });
  }

  private async connect(w: Wallet): Promise<void> {
    this.set({ kind: 'loading', text: `Waiting for ${w.info.name} to connect…` });
    try {
      const accounts = await requestAccounts(w);
      if (accounts.length === 0) throw new Error(`${w.info.name} gave no account`);
      await this.connected(w, accounts);
    } catch (e) {
      const note = isUserRejection(e)
        ? `You declined the connection request in ${w.info.name}.`
        : `Could not connect ${w.info.name}: ${describe(e)}`;
      this.set({ kind: 'connect', note });
    }
  }

  private async connected(w: Wallet, accounts: string[]): Promise<void> {
    for (const off of this.listeners.splice(0)) off();
    this.wallet = w;
    this.sender = accounts[0] as Address;
    rememberWallet(w.info.rdns);
    const onChain = () => void this.evaluate();
    const onAccounts = (accs: string[]) => {
      if (accs.length === 0) {
        this.wallet = null;
        this.sender = null;
        rememberWallet(null);
        this.set({ kind: 'connect', note: 'The wallet disconnected.' });
      } else {
        this.sender = accs[0] as Address;
        void this.evaluate();
      }
    };
    const p = w.provider;
    if (typeof p.on === 'function') {
      p.on('chainChanged', onChain);
      p.on('accountsChanged', onAccounts);
      this.listeners.push(() => {
        p.removeListener?.('chainChanged', onChain);
        p.removeListener?.('accountsChanged', onAccounts);
      });
    }
    await this.evaluate();
  }

  /** Works out the state from the wallet's chain, the API's proof and the contract. */
  private async evaluate(): Promise<void> {
    const w = this.wallet;
    if (!w || this.busy) return;
    const { account, info } = this.opts;
    try {
      const walletChain = await walletChainId(w);
      if (walletChain !== info.chainId) return this.set({ kind: 'wrong-network', walletChain });
      this.set({ kind: 'loading', text: 'Reading the claim from the pool and the contract…' });
      const reader = walletReader(w.provider, this.chain);
      this.reader = reader;
      this.opts.onReader(reader);
      let proof: Proof;
      try {
        proof = await api.latestProof(account);
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) {
          const text =
            e.parameter === 'epoch'
              ? 'Nothing to claim yet: no epoch has been finalized on-chain. Credits become claimable once their epoch is finalized.'
              : `Nothing to claim yet: ${account} has no credits in the newest finalized epoch. Pending credits become claimable once their epoch is finalized.`;
          return this.set({ kind: 'nothing', text });
        }
        throw e;
      }
      if (proof.chainId !== info.chainId || proof.distributor.toLowerCase() !== info.distributor.toLowerCase()) {
        return this.set({
          kind: 'error',
          text: `The API's proof is for chain ${proof.chainId} and distributor ${proof.distributor}, not this deployment.`,
        });
      }
      const distributor = info.distributor as Address;
      const [claimed, root] = await Promise.all([
        reader.readContract({ address: distributor, abi: distributorAbi, functionName: 'claimed', args: [account] }) as Promise<bigint>,
        reader.readContract({ address: distributor, abi: distributorAbi, functionName: 'finalizedRewardRoot' }) as Promise<Hex>,
      ]);
      const cumulative = BigInt(proof.cumulativeAmount);
      if (claimed >= cumulative && cumulative > 0n) {
        return this.set({ kind: 'already', cumulative, claimed, epoch: proof.epoch });
      }
      if (cumulative === 0n) {
        return this.set({ kind: 'nothing', text: `Nothing to claim yet: ${account} has no credits in a finalized epoch.` });
      }
      if (root.toLowerCase() !== proof.rewardRoot.toLowerCase()) {
        return this.set({
          kind: 'stale',
          text: `The pool's API and the contract disagree on the newest finalized reward root (API epoch ${proof.epoch}: ${short(proof.rewardRoot)}, contract: ${short(root)}). The API has probably not caught up with the chain yet: reload in a minute.`,
        });
      }
      this.set({ kind: 'ready', claim: { proof, cumulative, claimed, amount: cumulative - claimed } });
    } catch (e) {
      this.set({ kind: 'error', text: `Could not read the claim: ${describe(e)}` });
    }
  }

  private async switchNetwork(): Promise<void> {
    const w = this.wallet;
    if (!w) return;
    const chainId = this.opts.info.chainId;
    this.set({ kind: 'loading', text: `Asking ${w.info.name} to switch to chain ${chainId}…` });
    try {
      await switchChain(w, chainId, this.opts.config);
      await this.evaluate();
    } catch (e) {
      const walletChain = await walletChainId(w).catch(() => 0);
      const note = isUserRejection(e)
        ? `You declined the network switch in ${w.info.name}. The claim has to be sent on chain ${chainId}.`
        : e instanceof SwitchError
          ? e.message
          : `${w.info.name} could not switch to chain ${chainId}: ${describe(e)}`;
      this.set({ kind: 'wrong-network', walletChain, note });
    }
  }

  private async claim(c: Claimable): Promise<void> {
    const w = this.wallet;
    const sender = this.sender;
    const reader = this.reader;
    if (!w || !sender || !reader || this.busy) return;
    const { account, info } = this.opts;
    const distributor = info.distributor as Address;
    const call = {
      address: distributor,
      abi: distributorAbi,
      functionName: 'claim',
      args: [account, c.cumulative, c.proof.proof as Hex[]],
    } as const;
    this.busy = true;
    try {
      this.set({ kind: 'confirm', claim: c, text: 'Checking the claim against the contract…' });
      try {
        await reader.simulateContract({ ...call, account: sender });
      } catch (e) {
        if (revertOf(e)) return this.set({ kind: 'reverted', text: `The contract would revert this claim, so nothing was sent. ${explainRevert(e, this.fmt)}` });
        throw e;
      }
      this.set({ kind: 'confirm', claim: c, text: `Confirm the claim in ${w.info.name}…` });
      let hash: Hex;
      try {
        hash = await sendFromWallet(w.provider, this.chain, sender, call);
      } catch (e) {
        if (isUserRejection(e)) return this.set({ kind: 'rejected', claim: c });
        if (revertOf(e)) return this.set({ kind: 'reverted', text: `The contract would revert this claim, so nothing was sent. ${explainRevert(e, this.fmt)}` });
        throw e;
      }
      this.set({ kind: 'mining', claim: c, hash });
      const receipt = await reader.waitForTransactionReceipt({ hash, timeout: RECEIPT_TIMEOUT_MS, pollingInterval: 1_000 });
      if (receipt.status !== 'success') {
        // Replay the call at that block to learn which error it reverted with.
        let why = 'the contract reverted it';
        try {
          await reader.simulateContract({ ...call, account: sender, blockNumber: receipt.blockNumber });
        } catch (e) {
          why = explainRevert(e, this.fmt);
        }
        return this.set({ kind: 'reverted', hash, text: `Transaction ${hash} was mined but reverted: ${why}` });
      }
      const token = (info.token?.address ??
        (await reader.readContract({ address: distributor, abi: distributorAbi, functionName: 'token' }))) as Address;
      const balance = (await reader
        .readContract({ address: token, abi: erc20Abi, functionName: 'balanceOf', args: [account] })
        .catch(() => null)) as bigint | null;
      this.set({ kind: 'success', claim: c, hash, block: receipt.blockNumber, balance });
      this.opts.onClaimed();
    } catch (e) {
      const code = errorCode(e);
      this.set({ kind: 'error', text: `The claim failed: ${describe(e)}${code ? ` (code ${code})` : ''}` });
    } finally {
      this.busy = false;
    }
  }

  private txLink(hash: string): HTMLElement {
    const url = txUrl(this.opts.config, hash);
    const text = h('code', { 'data-testid': 'claim-tx' }, hash);
    return url ? extLink(url, text) : text;
  }

  private render(): void {
    const s = this.state;
    const { account, info } = this.opts;
    const w = this.wallet;
    const button = (label: string, testid: string, onClick: () => void, primary = true) =>
      h('button', { class: primary ? 'primary' : '', 'data-testid': testid, onclick: onClick }, label);
    const status = (tone: string, ...body: (Node | string | null)[]) =>
      h('div', { class: `status ${tone}`, 'data-testid': 'claim-status', 'data-state': s.kind, role: 'status' }, ...body);
    const breakdown = (c: Claimable) =>
      h(
        'p',
        { class: 'muted' },
        `Cumulative ${this.fmt(c.cumulative)} at epoch ${c.proof.epoch} minus ${this.fmt(c.claimed)} already claimed on-chain.`,
      );

    let body: Node[];
    switch (s.kind) {
      case 'loading':
        body = [status('info', h('span', { class: 'spinner' }), s.text)];
        break;
      case 'no-wallet':
        body = [
          status(
            'warn',
            'No browser wallet found. Install a wallet extension (any EIP-6963 wallet: MetaMask, Rabby, Frame, …) and reload this page. ',
            'Without one, any tool can still send the claim: the arguments are at ',
            h('a', { href: `/api/v1/epochs/latest/proof/${account}` }, `/api/v1/epochs/latest/proof/${short(account)}`),
            '.',
          ),
        ];
        break;
      case 'connect':
        body = [
          status(s.note ? 'warn' : 'info', s.note ?? 'Connect a wallet to claim. Anyone may send the claim; the tokens always go to the miner.'),
          h(
            'div',
            { class: 'wallets' },
            this.wallets.map((x) =>
              h(
                'button',
                { class: 'primary', 'data-testid': 'connect-wallet', 'data-wallet': x.info.rdns, onclick: () => void this.connect(x) },
                x.info.icon.startsWith('data:image/') ? h('img', { src: x.info.icon, alt: '', width: 18, height: 18 }) : null,
                `Connect ${x.info.name}`,
              ),
            ),
          ),
        ];
        break;
      case 'wrong-network':
        body = [
          status(
            'warn',
            `Wrong network: ${w?.info.name ?? 'the wallet'} is on chain ${s.walletChain}, but the pool pays on chain ${info.chainId}${this.opts.config.chainName ? ` (${this.opts.config.chainName})` : ''}.`,
            s.note ? h('span', { class: 'note', 'data-testid': 'claim-note' }, ` ${s.note}`) : null,
          ),
          button(`Switch to chain ${info.chainId}`, 'switch-network', () => void this.switchNetwork()),
        ];
        break;
      case 'nothing':
        body = [status('info', s.text)];
        break;
      case 'stale':
        body = [status('warn', s.text), button('Check again', 'claim-retry', () => void this.evaluate(), false)];
        break;
      case 'already':
        body = [
          status(
            'ok',
            `Already claimed: the contract has paid ${account} ${this.fmt(s.claimed)}, all of its cumulative ${this.fmt(s.cumulative)} up to epoch ${s.epoch}. New credits become claimable as later epochs are finalized.`,
          ),
        ];
        break;
      case 'ready':
        body = [
          status('info', h('strong', { 'data-testid': 'claimable-amount' }, this.fmt(s.claim.amount)), ' claimable now.'),
          breakdown(s.claim),
          button(`Claim ${this.fmt(s.claim.amount)}`, 'claim-button', () => void this.claim(s.claim)),
        ];
        break;
      case 'confirm':
        body = [status('info', h('span', { class: 'spinner' }), s.text), breakdown(s.claim)];
        break;
      case 'mining':
        body = [status('info', h('span', { class: 'spinner' }), 'Sent. Waiting for transaction ', this.txLink(s.hash), ' to be mined…')];
        break;
      case 'success':
        body = [
          status(
            'ok',
            `Claimed ${this.fmt(s.claim.amount)} for ${account} in transaction `,
            this.txLink(s.hash),
            ` (block ${s.block}).`,
            s.balance !== null ? ` The account now holds ${this.fmt(s.balance)}.` : '',
          ),
        ];
        break;
      case 'rejected':
        body = [
          status('warn', 'You rejected the transaction in your wallet. Nothing was sent; you can claim again whenever you like.'),
          breakdown(s.claim),
          button(`Claim ${this.fmt(s.claim.amount)}`, 'claim-button', () => void this.claim(s.claim)),
        ];
        break;
      case 'reverted':
        body = [
          status('bad', s.text),
          button('Check again', 'claim-retry', () => void this.evaluate(), false),
        ];
        break;
      case 'error':
        body = [status('bad', s.text), button('Try again', 'claim-retry', () => void this.evaluate(), false)];
        break;
    }
    const who =
      w && this.sender
        ? h(
            'p',
            { class: 'muted wallet-line', 'data-testid': 'wallet-line' },
            `${w.info.name}: ${short(this.sender)}`,
            this.sender.toLowerCase() !== account.toLowerCase()
              ? ` — you send the transaction; the tokens go to the miner, ${short(account)}.`
              : '',
          )
        : null;
    replace(this.el, h('h2', {}, 'Claim'), who, ...body);
  }
}
