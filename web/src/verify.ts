// "Verify my shares": the miner pastes the share hashes its own log holds
// (`proofpool watch list`), and the page checks each one's inclusion proof
// in the browser, trusting the pool's API for nothing: the leaf is rebuilt
// from the share's fields and must name this miner and this hash, the proof
// must fold to the share root, and that root must be the one the
// distributor committed for the epoch (its newest `EpochCommitted` event,
// whose hash the contract still stores).

import { concat, encodeAbiParameters, getAddress, keccak256, type AbiEvent, type Hex } from 'viem';
import { api, ApiError, type ChainInfo, type ShareProof } from './api';
import { describe, distributorAbi, type Reader } from './chain';
import type { SiteConfig } from './config';
import { h, replace, table } from './dom';

/** Hashes checked per run: each costs a request (or several, without an epoch). */
export const MAX_HASHES = 50;
/** Epochs tried, newest first, for a hash given without its epoch. */
const MAX_EPOCHS_TRIED = 24;

const committedEvent = distributorAbi.find((x) => x.type === 'event' && x.name === 'EpochCommitted') as AbiEvent;

/** One hash to check, with its epoch if the pasted line named one. */
export interface Wanted {
  hash: Hex;
  epoch: number | null;
}

/**
 * The hashes in `text`: every `0x` followed by 64 hex digits, once each, in
 * order. A line that also says `epoch N` (as `proofpool watch list` prints)
 * gives that hash's epoch.
 */
export function parseHashes(text: string): Wanted[] {
  const seen = new Set<string>();
  const out: Wanted[] = [];
  for (const line of text.split(/\r?\n/)) {
    const epoch = /\bepoch\s+#?(\d+)\b/i.exec(line);
    for (const m of line.matchAll(/0x[0-9a-fA-F]{64}(?![0-9a-fA-F])/g)) {
      const hash = m[0].toLowerCase() as Hex;
      if (seen.has(hash)) continue;
      seen.add(hash);
      out.push({ hash, epoch: epoch ? Number(epoch[1]) : null });
    }
  }
  return out;
}

/** The share-tree leaf: keccak256 of keccak256 of the ABI encoding (DESIGN.md, "Merkle trees"). */
export function shareLeaf(p: ShareProof): Hex {
  const encoded = encodeAbiParameters(
    [{ type: 'uint64' }, { type: 'uint64' }, { type: 'address' }, { type: 'uint256' }, { type: 'bytes32' }],
    [BigInt(p.epoch), BigInt(p.seq), getAddress(p.miner), BigInt(p.work), p.shareHash as Hex],
  );
  return keccak256(keccak256(encoded));
}

/** Folds `proof` onto `leaf`, hashing each pair in sorted order (OpenZeppelin's `MerkleProof`). */
export function foldProof(leaf: Hex, proof: Hex[]): Hex {
  let node = leaf;
  for (const sibling of proof) {
    node = BigInt(node) <= BigInt(sibling) ? keccak256(concat([node, sibling])) : keccak256(concat([sibling, node]));
  }
  return node;
}

/** What one hash came to. */
interface Verdict {
  hash: Hex;
  epoch: number | null;
  seq: number | null;
  work: string;
  ok: boolean;
  what: string;
}

/** The share root the distributor holds for `epoch`, or why there is none. */
type CommittedRoot = { root: Hex } | { error: string };

/**
 * The "Verify my shares" section for `account`: a text box, a button and a
 * table of verdicts. `epochs` are the miner's epochs (newest first), tried
 * for a hash pasted without one; `reader` gives the chain, when there is one.
 */
export function verifyPanel(
  account: `0x${string}`,
  info: ChainInfo,
  config: SiteConfig,
  epochs: number[],
  reader: () => Reader | null,
): HTMLElement {
  const input = h('textarea', {
    rows: 5,
    placeholder: 'Paste share hashes, one per line (proofpool watch list --log watch.db prints them with their epochs)',
    'aria-label': 'Share hashes',
    spellcheck: 'false',
    'data-testid': 'verify-input',
  }) as HTMLTextAreaElement;
  const results = h('div', { 'data-testid': 'verify-results' });
  const button = h('button', { type: 'submit', 'data-testid': 'verify-button' }, 'Verify');
  const form = h(
    'form',
    { class: 'verify' },
    h(
      'p',
      { class: 'muted' },
      'Each share is checked here in your browser: its leaf is rebuilt from the share and must name this address and that hash, its proof must lead to the epoch\'s share root, and that root must be the one the contract committed. The pool\'s API is trusted for nothing.',
    ),
    input,
    h('p', {}, button),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const wanted = parseHashes(input.value);
    if (wanted.length === 0) {
      replace(results, h('div', { class: 'status warn', 'data-testid': 'verify-summary', 'data-state': 'empty' }, 'No share hash found: paste 0x followed by 64 hex digits per share.'));
      return;
    }
    if (wanted.length > MAX_HASHES) {
      replace(results, h('div', { class: 'status warn', 'data-testid': 'verify-summary', 'data-state': 'too-many' }, `${wanted.length} hashes: check at most ${MAX_HASHES} at a time.`));
      return;
    }
    button.setAttribute('disabled', '');
    replace(results, h('p', { class: 'muted' }, `Checking ${wanted.length} shares…`));
    void check(account, info, config, epochs, reader(), wanted)
      .then((verdicts) => show(results, verdicts, reader() !== null))
      .catch((err: unknown) => replace(results, h('div', { class: 'status bad', 'data-testid': 'verify-summary', 'data-state': 'error' }, `The check failed: ${describe(err)}`)))
      .finally(() => button.removeAttribute('disabled'));
  });
  return h('div', {}, form, results);
}

async function check(
  account: `0x${string}`,
  info: ChainInfo,
  config: SiteConfig,
  epochs: number[],
  reader: Reader | null,
  wanted: Wanted[],
): Promise<Verdict[]> {
  const roots = new Map<number, Promise<CommittedRoot>>();
  const committed = (epoch: number) => {
    let r = roots.get(epoch);
    if (!r) {
      r = reader ? committedRoot(reader, info, config, epoch) : Promise.resolve({ error: '' });
      roots.set(epoch, r);
    }
    return r;
  };
  const verdicts: Verdict[] = [];
  for (const w of wanted) {
    const tries = w.epoch !== null ? [w.epoch] : epochs.slice(0, MAX_EPOCHS_TRIED);
    let proof: ShareProof | null = null;
    for (const epoch of tries) {
      try {
        proof = await api.shareProof(epoch, w.hash);
        break;
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) throw e;
      }
    }
    if (!proof) {
      verdicts.push({
        hash: w.hash,
        epoch: w.epoch,
        seq: null,
        work: '',
        ok: false,
        what: w.epoch !== null ? `not in epoch #${w.epoch}'s share tree` : `in none of this miner's ${tries.length} newest settled epochs`,
      });
      continue;
    }
    verdicts.push(await judge(account, w.hash, proof, committed));
  }
  return verdicts;
}

async function judge(
  account: `0x${string}`,
  hash: Hex,
  p: ShareProof,
  committed: (epoch: number) => Promise<CommittedRoot>,
): Promise<Verdict> {
  const base = { hash, epoch: p.epoch, seq: p.seq, work: p.work };
  const bad = (what: string): Verdict => ({ ...base, ok: false, what });
  if (p.shareHash.toLowerCase() !== hash) return bad(`the API answered for another share (${p.shareHash})`);
  if (getAddress(p.miner) !== account) return bad(`credited to ${getAddress(p.miner)}, not to this address`);
  let leaf: Hex;
  try {
    leaf = shareLeaf(p);
  } catch (e) {
    return bad(`the API's share fields do not encode: ${describe(e)}`);
  }
  if (leaf.toLowerCase() !== p.leaf.toLowerCase()) return bad(`the leaf the API sent is not the one its fields encode (${leaf})`);
  const root = foldProof(leaf, p.proof as Hex[]);
  if (root.toLowerCase() !== p.shareRoot.toLowerCase()) return bad(`the proof leads to ${root}, not to the share root ${p.shareRoot}`);
  const onChain = await committed(p.epoch);
  if ('error' in onChain) {
    return onChain.error
      ? bad(onChain.error)
      : { ...base, ok: true, what: `in epoch #${p.epoch}'s share tree (root not checked against the chain: connect a wallet or set rpcUrl)` };
  }
  if (onChain.root.toLowerCase() !== root.toLowerCase()) return bad(`the proof leads to ${root}; the contract committed ${onChain.root} for epoch #${p.epoch}`);
  return { ...base, ok: true, what: `in epoch #${p.epoch}'s share tree, whose root the contract committed` };
}

interface CommitArgs {
  epoch: bigint;
  epochHash: Hex;
  commit: { shareRoot: Hex };
}

/** The share root of `epoch`'s newest `EpochCommitted` event, if the contract still stores its hash. */
async function committedRoot(reader: Reader, info: ChainInfo, config: SiteConfig, epoch: number): Promise<CommittedRoot> {
  try {
    const chainId = await reader.getChainId();
    if (chainId !== info.chainId) return { error: `the chain read is ${chainId}, but the pool pays on chain ${info.chainId}` };
    const address = info.distributor as `0x${string}`;
    const [logs, stored] = await Promise.all([
      reader.getLogs({ address, event: committedEvent, args: { epoch: BigInt(epoch) }, fromBlock: BigInt(config.fromBlock), toBlock: 'latest' }),
      reader.readContract({ address, abi: distributorAbi, functionName: 'epochHash', args: [BigInt(epoch)] }) as Promise<Hex>,
    ]);
    const last = logs.at(-1) as unknown as { args: CommitArgs } | undefined;
    if (!last || BigInt(stored) === 0n) return { error: `epoch #${epoch} is not committed on the contract` };
    if (last.args.epochHash.toLowerCase() !== stored.toLowerCase()) return { error: `epoch #${epoch}'s newest commit is not the one the contract stores` };
    return { root: last.args.commit.shareRoot };
  } catch (e) {
    return { error: `the contract could not be read: ${describe(e)}` };
  }
}

function show(el: HTMLElement, verdicts: Verdict[], chainRead: boolean): void {
  const good = verdicts.filter((v) => v.ok).length;
  const state = good === verdicts.length ? 'ok' : 'bad';
  replace(
    el,
    h(
      'div',
      { class: `status ${state === 'ok' ? 'ok' : 'bad'}`, 'data-testid': 'verify-summary', 'data-state': state },
      state === 'ok'
        ? `All ${verdicts.length} shares are in their epochs' share trees${chainRead ? ', under the roots the contract committed' : ''}.`
        : `${verdicts.length - good} of ${verdicts.length} shares do not verify: keep their evidence (proofpool watch check writes it).`,
    ),
    table(
      ['Share', 'Epoch', 'Seq', 'Work', 'Verdict'],
      verdicts.map((v) => [
        h('code', { title: v.hash }, `${v.hash.slice(0, 10)}…${v.hash.slice(-6)}`),
        v.epoch !== null ? `#${v.epoch}` : '—',
        v.seq !== null ? String(v.seq) : '—',
        v.work || '—',
        h('span', { class: `badge ${v.ok ? 'finalized' : 'orphaned'}`, 'data-ok': String(v.ok) }, v.what),
      ]),
      '',
      'verify-table',
    ),
  );
}
