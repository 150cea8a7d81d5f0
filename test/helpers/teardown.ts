/** What test fixtures need of a tap test: somewhere to register cleanup. */
export interface Teardown {
  teardown(fn: () => unknown): void
}
