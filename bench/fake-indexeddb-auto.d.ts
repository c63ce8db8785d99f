// `fake-indexeddb/auto` only installs IndexedDB globals; it exports nothing.
declare module 'fake-indexeddb/auto';
