/**
 * Per-key flat combining (Hendler, Incze, Shavit, Tzafrir: "Flat Combining
 * and the Synchronization-Parallelism Tradeoff", SPAA 2010): while one batch
 * of a key is being committed, later submissions for that key queue up and are
 * handed to the next commit together, in arrival order. N concurrent writers
 * of one key therefore cost O(1) commits per batch instead of a
 * read-and-retry storm; different keys never wait for each other.
 */

/** One submission waiting for its batch's commit; the committer settles it. */
export interface Pending<I, R> {
  readonly item: I;
  resolve(result: R): void;
  reject(error: unknown): void;
}

/**
 * Queues items per key and commits them in batches, one batch per key at a time.
 * @typeParam I what is submitted (e.g. a change function).
 * @typeParam R what each submitter gets back.
 */
export class FlatCombiner<I, R> {
  /** Items waiting for the next commit of their key, in arrival order. */
  private readonly queued = new Map<string, Pending<I, R>[]>();
  /** Keys with a commit in flight. */
  private readonly committing = new Set<string>();

  /**
   * @param commitBatch commits a batch and settles each of its submissions (its own result or error). If it
   *   throws or rejects instead, every submission of the batch is rejected with that error.
   */
  constructor(private readonly commitBatch: (key: string, batch: readonly Pending<I, R>[]) => Promise<void>) {}

  /** Submits an item for the key's next commit. @returns what the committer settles it with. */
  submit(key: string, item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let queue = this.queued.get(key);
      if (!queue) this.queued.set(key, (queue = []));
      queue.push({ item, resolve, reject });
      if (!this.committing.has(key)) void this.drain(key);
    });
  }

  /** Commits the key's queued items, batch after batch, until none is left. Never rejects. */
  private async drain(key: string): Promise<void> {
    this.committing.add(key);
    try {
      for (let batch = this.queued.get(key); batch && batch.length > 0; batch = this.queued.get(key)) {
        this.queued.delete(key);
        try {
          await this.commitBatch(key, batch);
        } catch (error) {
          for (const pending of batch) pending.reject(error);
        }
      }
    } finally {
      this.committing.delete(key);
    }
  }
}
