import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

/**
 * `virtual:distributor-abi`: the distributor's ABI from the Foundry artifact
 * the Rust bindings are generated from, without the artifact's bytecode
 * (importing the JSON directly would bundle all of it).
 */
function distributorAbi(): Plugin {
  const id = 'virtual:distributor-abi';
  const artifact = fileURLToPath(new URL('../core/chain/artifacts/Distributor.json', import.meta.url));
  return {
    name: 'proofpool-distributor-abi',
    resolveId: (source) => (source === id ? `\0${id}` : null),
    load(source) {
      if (source !== `\0${id}`) return null;
      this.addWatchFile(artifact);
      const { abi } = JSON.parse(readFileSync(artifact, 'utf8')) as { abi: unknown };
      return `export default ${JSON.stringify(abi)};`;
    },
  };
}

// The app is served by `proofpool api` from web/dist at the site root; every
// unknown path falls back to index.html, so routes are plain paths.
export default defineConfig({
  base: '/',
  plugins: [distributorAbi()],
  build: {
    outDir: 'dist',
    target: 'es2022',
    sourcemap: false,
  },
  server: {
    // `npm run dev` against a local `proofpool api` (the devnet serves it on 8080).
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
});
