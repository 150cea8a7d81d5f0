/** Opens every item with at most `lanes` openings under way, so the handshake burst does not look like an attack. */
export async function openInWaves<T>(items: T[], open: (item: T) => Promise<void>, lanes = 20): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < items.length) await open(items[next++])
    }),
  )
}
