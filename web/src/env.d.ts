/// <reference types="vite/client" />

declare module 'virtual:distributor-abi' {
  /** The distributor's ABI (functions, events, custom errors), from core/chain/artifacts/Distributor.json. */
  const abi: import('viem').Abi;
  export default abi;
}
