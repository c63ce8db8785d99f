/**
 * Cursor paging as async iteration: `for await (const v of collection.list())` fetches the next page only
 * when the loop reaches it, so a `break` stops the requests.
 */

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Items of every page from `cursor` on; `fetchPage` gets the cursor of the page to fetch. */
export async function* paginate<T>(
  fetchPage: (cursor: string | undefined) => Promise<Page<T>>,
  cursor?: string,
): AsyncGenerator<T, void, undefined> {
  let next: string | undefined = cursor;
  for (;;) {
    const page = await fetchPage(next);
    yield* page.items;
    // An empty cursor would restart from the beginning: treat it like the end.
    if (!page.nextCursor) return;
    next = page.nextCursor;
  }
}
