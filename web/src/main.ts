// proofpool's web app: a dashboard, a page per miner with the claim wallet,
// and an auditor page. Plain TypeScript with a tiny history-API router; the
// API serves index.html for every unknown path, so routes are real URLs.

import './style.css';
import { h, replace } from './dom';
import { auditor } from './pages/auditor';
import { dashboard } from './pages/dashboard';
import { miner } from './pages/miner';
import type { Page } from './page';

const routes: [RegExp, Page][] = [
  [/^\/$/, dashboard],
  [/^\/miner\/([^/]+)\/?$/, miner],
  [/^\/auditor\/?$/, auditor],
];

const notFound: Page = async (view) => {
  replace(view, h('h1', {}, 'Not found'), h('p', {}, 'No page here. ', h('a', { href: '/', 'data-link': true }, 'Back to the dashboard'), '.'));
};

const root = document.getElementById('app') as HTMLElement;
let disposers: (() => void)[] = [];

async function show(): Promise<void> {
  for (const d of disposers.splice(0)) d();
  const path = window.location.pathname;
  let page = notFound;
  let params: string[] = [];
  for (const [pattern, p] of routes) {
    const m = pattern.exec(path);
    if (m) {
      page = p;
      params = m.slice(1);
      break;
    }
  }
  for (const a of document.querySelectorAll<HTMLAnchorElement>('header nav a')) {
    const here = a.getAttribute('href') === path;
    a.classList.toggle('active', here);
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // A fresh element per visit: a slow page that finishes after the user has
  // moved on writes into a detached element, never over the new page.
  const view = h('div', { class: 'view' });
  replace(root, view);
  const mine: (() => void)[] = [];
  disposers = mine;
  try {
    await page(view, params, { onDispose: (fn) => (disposers === mine ? mine.push(fn) : fn()) });
  } catch (e) {
    replace(view, h('div', { class: 'status bad' }, `This page failed: ${e instanceof Error ? e.message : String(e)}`));
  }
}

function navigate(to: string): void {
  if (to !== window.location.pathname) window.history.pushState(null, '', to);
  window.scrollTo(0, 0);
  void show();
}

document.addEventListener('click', (e) => {
  const a = (e.target as Element | null)?.closest?.('a[data-link]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href') ?? '/');
});
window.addEventListener('popstate', () => void show());
document.getElementById('lookup')?.addEventListener('submit', (e) => {
  e.preventDefault();
  const input = (e.target as HTMLFormElement).elements.namedItem('address') as HTMLInputElement;
  const value = input.value.trim();
  if (value) navigate(`/miner/${encodeURIComponent(value)}`);
});

void show();
