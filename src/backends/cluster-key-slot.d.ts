/** Types of `cluster-key-slot` (the slot function ioredis itself uses; the package ships none). */
declare module 'cluster-key-slot' {
  /** Redis Cluster's hash slot (0..16383) of a key or channel: CRC16 of its `{hash tag}` (or of all of it) mod 16384. */
  function calculateSlot(key: string | Buffer): number;
  namespace calculateSlot {
    /** The common slot of `keys`, or -1 when they differ. */
    function generateMulti(keys: Array<string | Buffer>): number;
  }
  export = calculateSlot;
}
