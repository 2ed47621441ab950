/**
 * Watches the credentials directory and hands every new, consistent set to `onChange`. A set
 * that does not load (written halfway, broken) is kept out: the previous one stays in use and
 * the next event or poll tries again. Directory events (inotify) give the quick path; a poll
 * catches file systems that deliver none.
 */
import { watch, type FSWatcher } from 'node:fs';
import { loadCredentials, type MeshCredentials } from './credentials.js';

export interface WatcherOptions {
  dir: string;
  current: MeshCredentials;
  onChange: (next: MeshCredentials, previous: MeshCredentials) => void;
  onError: (message: string) => void;
  /** Wait this long after the last event before reading (the Initializer writes four files). */
  debounceMs?: number;
  pollMs?: number;
}

export interface WatcherState {
  reloads: number;
  lastReloadAt?: Date;
  /** The reason the files on disk are not in use, while they are not. */
  pendingError?: string;
}

export class CredentialWatcher {
  readonly state: WatcherState = { reloads: 0 };
  private current: MeshCredentials;
  private watcher?: FSWatcher;
  private debounce?: NodeJS.Timeout;
  private poll?: NodeJS.Timeout;

  constructor(private readonly opts: WatcherOptions) {
    this.current = opts.current;
  }

  start(): void {
    try {
      this.watcher = watch(this.opts.dir, { persistent: false }, () => this.schedule());
      this.watcher.on('error', () => {
        /* the poll keeps working */
      });
    } catch {
      // No inotify for this directory: the poll alone.
    }
    this.poll = setInterval(() => this.check(), this.opts.pollMs ?? 10_000);
    this.poll.unref();
  }

  stop(): void {
    this.watcher?.close();
    clearTimeout(this.debounce);
    clearInterval(this.poll);
  }

  private schedule(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.check(), this.opts.debounceMs ?? 300);
    this.debounce.unref();
  }

  /** Read the files now; switch if they form a new consistent set. */
  check(): void {
    let next: MeshCredentials;
    try {
      next = loadCredentials(this.opts.dir);
    } catch (err) {
      const message = (err as Error).message;
      if (this.state.pendingError !== message) this.opts.onError(`the credentials on disk are not used: ${message}`);
      this.state.pendingError = message;
      return;
    }
    delete this.state.pendingError;
    if (next.contentHash === this.current.contentHash) return;
    const previous = this.current;
    this.current = next;
    this.state.reloads++;
    this.state.lastReloadAt = new Date();
    this.opts.onChange(next, previous);
  }
}
