/**
 * The page sizes of ListJobs, which both programs need: the server to bound
 * a page, jobctl to ask for no more than it will print.
 */

/** Jobs per page when the client asks for none. TODO(configuration system). */
export const DEFAULT_PAGE_SIZE = 500;
/** Most jobs per page. */
export const MAX_PAGE_SIZE = 1000;
